// A TCP relay to a local port, so that a test can cut a connection the way a network failure would.
import net from 'node:net';

export interface Relay {
  /** The relay as an MQTT URL and as an XMPP component service. */
  url: string;
  xmpp: string;
  /** Connections accepted so far. */
  readonly accepted: number;
  /** Destroys every open connection (both sides). */
  cut(): void;
  close(): Promise<void>;
}

export async function startRelay(targetPort: number): Promise<Relay> {
  const open = new Set<net.Socket>();
  let accepted = 0;
  const server = net.createServer((client) => {
    accepted++;
    const upstream = net.connect(targetPort, '127.0.0.1');
    open.add(client);
    open.add(upstream);
    client.pipe(upstream);
    upstream.pipe(client);
    const end = (): void => {
      client.destroy();
      upstream.destroy();
      open.delete(client);
      open.delete(upstream);
    };
    client.on('error', end).on('close', end);
    upstream.on('error', end).on('close', end);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as net.AddressInfo;
  const cut = (): void => {
    for (const s of open) s.destroy();
    open.clear();
  };
  return {
    url: `mqtt://127.0.0.1:${port}`,
    xmpp: `xmpp://127.0.0.1:${port}`,
    get accepted() {
      return accepted;
    },
    cut,
    async close() {
      cut();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}
