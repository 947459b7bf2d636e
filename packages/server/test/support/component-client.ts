import { NS } from '@natter/protocol';
import { RawClient } from '../conformance/raw-client.js';
import { handshakeDigest } from '../../src/core/stream/steps/handshake.js';

/** A server started with `components` (startTestServer) exposes its component port. */
export interface ComponentTarget {
  port(kind: 'component'): number;
}

/** The header an XEP-0114 component sends (`to` its domain), attributes overridable. */
export function componentHeader(domain: string, attrs: Record<string, string | undefined> = {}): string {
  return RawClient.header({ xmlns: NS.component, version: undefined, to: domain, ...attrs });
}

/**
 * A raw socket to the server's component port (XEP-0114), the stream not yet opened: the test
 * writes the bytes it wants.
 */
export function connectComponentSocket(server: ComponentTarget, domain: string): Promise<RawClient> {
  const port = server.port('component');
  return RawClient.connect({ domain, port: () => port }, 'c2s');
}

/**
 * Opens a component stream for `domain` and completes the handshake with `secret`; resolves with
 * the raw client once the server answered `<handshake/>` (or rejects with what it answered).
 */
export async function connectComponent(
  server: ComponentTarget,
  domain: string,
  secret: string,
): Promise<RawClient> {
  const c = await connectComponentSocket(server, domain);
  c.write(componentHeader(domain));
  await c.waitHeader();
  const id = c.header?.attrs.id ?? '';
  const done = c.receive((e) => e.name === 'handshake' || (e.name === 'error' && e.xmlns === NS.stream));
  c.write(`<handshake>${handshakeDigest(id, secret)}</handshake>`);
  const answer = await done;
  if (answer.name !== 'handshake') {
    c.received.push(answer);
    throw new Error(`handshake refused: ${c.streamError() ?? answer.toString()}`);
  }
  return c;
}
