// Starts the whole gateway from a configuration: the MQTT client, the component, the bridge.
import { randomBytes } from 'node:crypto';
import type { Component } from '@natter/component';
import mqtt, { type MqttClient } from 'mqtt';
import type { GatewayConfig } from './config.js';
import { MqttGateway, type Log } from './gateway.js';

export interface RunningGateway {
  gateway: MqttGateway;
  component: Component;
  mqtt: MqttClient;
  /** Disconnects from the XMPP server and the broker, after saving subscriptions. */
  stop(): Promise<void>;
}

export interface StartOptions {
  log?: Log;
  /** Passed to createComponent (e.g. `reconnect: false` in tests). */
  reconnect?: boolean;
}

/**
 * Connects to the broker (MQTT 5, waiting for it when it is not up yet), renews saved
 * subscriptions, then connects the component; resolves when both are connected.
 */
export async function startGateway(config: GatewayConfig, opts: StartOptions = {}): Promise<RunningGateway> {
  const log = opts.log ?? (() => {});
  const client = await mqtt.connectAsync(config.mqtt.url, {
    protocolVersion: 5,
    clean: true,
    clientId:
      config.mqtt.clientId ?? `natter-gw-${config.component.domain}-${randomBytes(4).toString('hex')}`,
    username: config.mqtt.username,
    password: config.mqtt.password,
    reconnectPeriod: 2000,
    connectTimeout: 10_000,
    // The gateway renews its subscriptions itself (with their subscription identifiers).
    resubscribe: false,
  });
  client.on('error', (err) => log('warn', 'MQTT error', { err: String(err) }));
  client.on('offline', () => log('warn', 'MQTT broker unreachable; reconnecting'));
  const gateway = new MqttGateway({ config, mqtt: client, log, reconnect: opts.reconnect });
  try {
    await gateway.start();
  } catch (err) {
    await gateway.stop().catch(() => {});
    await client.endAsync().catch(() => {});
    throw err;
  }
  log('info', 'gateway online', { domain: config.component.domain, broker: config.mqtt.url });
  return {
    gateway,
    component: gateway.component,
    mqtt: client,
    async stop() {
      await gateway.stop();
      await client.endAsync();
    },
  };
}
