// A TCP relay to a local port (a component's server, an MQTT broker …), so that a test can cut the
// connection the way a network failure would, and count how many connections were attempted.
import net from 'node:net';

export interface Relay {
  /** The relay's own port on 127.0.0.1. */
  port: number;
  /** The relay as an XMPP component service (`xmpp://127.0.0.1:port`). */
  service: string;
  /** Connections accepted so far. */
  readonly accepted: number;
  /** Called with every chunk the relay's client side sends. */
  onClientData?: (chunk: Buffer) => void;
  /** Destroys every open connection (both sides). */
  cut(): void;
  close(): Promise<void>;
}

export async function startRelay(targetPort: number): Promise<Relay> {
  const open = new Set<net.Socket>();
  let accepted = 0;
  let onClientData: ((chunk: Buffer) => void) | undefined;
  const server = net.createServer((client) => {
    accepted++;
    const upstream = net.connect(targetPort, '127.0.0.1');
    open.add(client);
    open.add(upstream);
    client.on('data', (chunk: Buffer) => onClientData?.(chunk));
    client.pipe(upstream);
    upstream.pipe(client);
    const end = () => {
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
  const cut = () => {
    for (const s of open) s.destroy();
    open.clear();
  };
  return {
    port,
    service: `xmpp://127.0.0.1:${port}`,
    get accepted() {
      return accepted;
    },
    cut,
    async close() {
      cut();
      await new Promise<void>((r) => server.close(() => r()));
    },
    set onClientData(cb: ((chunk: Buffer) => void) | undefined) {
      onClientData = cb;
    },
  };
}
