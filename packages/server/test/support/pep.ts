// Helpers for the PEP tests (not a test file itself): roster friendships and XEP-0115 caps.
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { xml, type Element } from '@natter/xml';
import { NS } from '@natter/protocol';
import type { TestClient } from './test-client.js';
import { capsVer } from '../../src/modules/pep/xep-0115-caps.js';

let unique = 0;

/**
 * Sends available presence with XEP-0115 caps for `features` (plus, unless `marker: false`, a
 * unique feature so the server has to ask), answers the server's disco#info query (unless
 * `expectQuery: false`), and waits until the server processed it.
 */
export async function presenceWithCaps(
  c: TestClient,
  features: string[],
  opts: { priority?: number; marker?: boolean; expectQuery?: boolean } = {},
): Promise<string> {
  const all = opts.marker === false ? features : [...features, `urn:natter:test:marker:${++unique}`];
  const query = xml(
    'query',
    { xmlns: NS.discoInfo },
    xml('identity', { category: 'client', type: 'pc', name: 'Natter tests' }),
    all.map((v) => xml('feature', { var: v })),
  );
  const ver = capsVer(query, 'sha-1')!;
  const asked =
    opts.expectQuery === false
      ? undefined
      : c.receive((e) => e.name === 'iq' && e.attrs.type === 'get' && !!e.getChild('query', NS.discoInfo));
  c.send(
    xml(
      'presence',
      null,
      opts.priority !== undefined && xml('priority', null, String(opts.priority)),
      xml('c', { xmlns: NS.caps, hash: 'sha-1', node: 'https://natter.example/tests', ver }),
    ),
  );
  if (asked) {
    const iq = await asked;
    assert.equal(iq.getChild('query', NS.discoInfo)!.attrs.node, `https://natter.example/tests#${ver}`);
    const answer = query.clone();
    answer.attrs.node = iq.getChild('query', NS.discoInfo)!.attrs.node!;
    c.send(xml('iq', { type: 'result', id: iq.attrs.id, to: iq.attrs.from }, answer));
  }
  await settle(c);
  return ver;
}

/** A round trip plus a short pause: lets the server finish work started by earlier stanzas. */
export async function settle(c: TestClient): Promise<void> {
  await c.iq(xml('iq', { type: 'get', to: 'localhost' }, xml('ping', { xmlns: NS.ping })));
  await sleep(60);
}

/** `contact` subscribes to `owner`'s presence and `owner` approves (owner's roster: from). */
export async function subscribeTo(contact: TestClient, owner: TestClient): Promise<void> {
  const ownerBare = owner.jid.split('/')[0]!;
  const contactBare = contact.jid.split('/')[0]!;
  contact.send(xml('presence', { type: 'subscribe', to: ownerBare }));
  await owner.receive(
    (e) => e.name === 'presence' && e.attrs.type === 'subscribe' && e.attrs.from === contactBare,
  );
  owner.send(xml('presence', { type: 'subscribed', to: contactBare }));
  await contact.receive((e) => e.name === 'presence' && e.attrs.type === 'subscribed');
  await settle(owner);
}

/** Puts `contact` in `owner`'s roster groups. */
export async function setGroups(owner: TestClient, contact: string, groups: string[]): Promise<void> {
  const res = await owner.iq(
    xml(
      'iq',
      { type: 'set' },
      xml(
        'query',
        { xmlns: NS.roster },
        xml(
          'item',
          { jid: contact },
          groups.map((g) => xml('group', null, g)),
        ),
      ),
    ),
  );
  assert.equal(res.attrs.type, 'result', res.toString());
}

/** The single payload of the first item of an event. */
export function itemPayload(ev: Element): Element | undefined {
  return ev.getChild('items')?.getChild('item')?.firstElement();
}
