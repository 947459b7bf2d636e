import { xml } from '@natter/xml';
import { NS } from '@natter/protocol';
import type { TestClient } from './test-client.js';

/**
 * `a` and `b` subscribe to each other's presence (RFC 6121 §3): resolves once both rosters say
 * `both` (each client asks for its roster first, so that it receives the pushes).
 */
export async function befriend(a: TestClient, b: TestClient): Promise<void> {
  const bare = (c: TestClient) => c.jid.split('/')[0]!;
  for (const c of [a, b]) await c.iq(xml('iq', { type: 'get' }, xml('query', { xmlns: NS.roster })));
  const both = (c: TestClient, contact: string) =>
    c.receive(
      (e) =>
        e.name === 'iq' &&
        e.attrs.type === 'set' &&
        e.getChild('query', NS.roster)?.getChild('item')?.attrs.jid === contact &&
        e.getChild('query', NS.roster)?.getChild('item')?.attrs.subscription === 'both',
    );
  const aBoth = both(a, bare(b));
  const bBoth = both(b, bare(a));
  for (const [x, y] of [
    [a, b],
    [b, a],
  ] as const) {
    x.send(xml('presence', { type: 'subscribe', to: bare(y) }));
    await y.receive((e) => e.name === 'presence' && e.attrs.type === 'subscribe' && e.attrs.from === bare(x));
    y.send(xml('presence', { type: 'subscribed', to: bare(x) }));
    await x.receive(
      (e) => e.name === 'presence' && e.attrs.type === 'subscribed' && e.attrs.from === bare(y),
    );
  }
  await Promise.all([aBoth, bBoth]);
}
