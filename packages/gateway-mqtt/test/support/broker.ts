// The real Mosquitto broker on 127.0.0.1:1883 (started on these machines before tests run).
import { randomBytes } from 'node:crypto';
import mqtt, { type MqttClient } from 'mqtt';

export const BROKER_URL = process.env.NATTER_TEST_MQTT_URL ?? 'mqtt://127.0.0.1:1883';

/** A topic prefix no other test run uses. */
export function uniquePrefix(): string {
  return `natter-test/${randomBytes(6).toString('hex')}`;
}

export async function connectBroker(): Promise<MqttClient> {
  return mqtt.connectAsync(BROKER_URL, { protocolVersion: 5, reconnectPeriod: 0, connectTimeout: 10_000 });
}

/** A subscriber that collects what arrives on a filter. */
export async function subscriber(filter: string): Promise<{
  client: MqttClient;
  next: (timeoutMs?: number) => Promise<{ topic: string; payload: string }>;
  /** MQTT 5 correlation data of the last message received. */
  lastCorrelation: () => Buffer | undefined;
}> {
  const client = await connectBroker();
  const queue: { topic: string; payload: string }[] = [];
  const waiting: ((m: { topic: string; payload: string }) => void)[] = [];
  let correlation: Buffer | undefined;
  client.on('message', (topic, payload, packet) => {
    correlation = packet.properties?.correlationData;
    const m = { topic, payload: payload.toString('utf8') };
    const w = waiting.shift();
    if (w) w(m);
    else queue.push(m);
  });
  await client.subscribeAsync(filter, { qos: 1 });
  return {
    client,
    lastCorrelation: () => correlation,
    next: (timeoutMs = 10_000) => {
      const m = queue.shift();
      if (m) return Promise.resolve(m);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(
          () => reject(new Error(`nothing published on ${filter} within ${timeoutMs} ms`)),
          timeoutMs,
        );
        waiting.push((msg) => {
          clearTimeout(timer);
          resolve(msg);
        });
      });
    },
  };
}
