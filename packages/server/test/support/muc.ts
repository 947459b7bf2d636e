// Helpers shared by the MUC tests (not a test file itself).
import assert from 'node:assert/strict';
import { xml, type Element } from '@natter/xml';
import { NS } from '@natter/protocol';
import { TestClient } from './test-client.js';
import type { TestServer } from './test-server.js';

export const PW = 'muc-test-password';
export const SERVICE = 'conference.localhost';

export async function users(server: TestServer, ...names: string[]): Promise<void> {
  for (const n of names) await server.addUser(n, PW);
}

export function login(server: TestServer, user: string, resource = 'r'): Promise<TestClient> {
  return TestClient.login(server, user, PW, { resource, presence: true });
}

export function codes(el: Element): number[] {
  const x = el.getChild('x', NS.mucUser);
  return (x?.getChildren('status') ?? []).map((s) => Number(s.attrs.code)).sort((a, b) => a - b);
}

export function item(el: Element): Element | undefined {
  return el.getChild('x', NS.mucUser)?.getChild('item');
}

export function errorCondition(el: Element): string | undefined {
  return el
    .getChild('error')
    ?.elements()
    .find((c) => c.xmlns === NS.stanzas && c.name !== 'text')?.name;
}

export const isPresenceFrom = (from: string, type?: string) => (e: Element) =>
  e.name === 'presence' &&
  e.attrs.from === from &&
  (type === undefined ? e.attrs.type === undefined : e.attrs.type === type);

export const isSelfPresence = (from: string) => (e: Element) =>
  e.name === 'presence' && e.attrs.from === from && codes(e).includes(110);

export const isSubject = (room: string) => (e: Element) =>
  e.name === 'message' &&
  e.getChild('subject') !== undefined &&
  e.getChild('body') === undefined &&
  (e.attrs.from ?? '').startsWith(room);

/** Sends a join presence; resolves with the self-presence or the error presence. */
export async function join(
  c: TestClient,
  room: string,
  nick: string,
  opts: { password?: string; history?: Record<string, string>; mucX?: boolean } = {},
): Promise<Element> {
  const occ = `${room}/${nick}`;
  const x =
    opts.mucX === false
      ? null
      : xml(
          'x',
          { xmlns: NS.muc },
          opts.password !== undefined && xml('password', null, opts.password),
          opts.history && xml('history', opts.history),
        );
  const res = c.receive(
    (e) =>
      e.name === 'presence' && e.attrs.from === occ && (codes(e).includes(110) || e.attrs.type === 'error'),
  );
  c.send(xml('presence', { to: occ }, x));
  return res;
}

/** Joins and waits for the subject (the end of the join sequence). */
export async function enter(
  c: TestClient,
  room: string,
  nick: string,
  opts: { password?: string; history?: Record<string, string> } = {},
): Promise<Element> {
  const self = await join(c, room, nick, opts);
  assert.notEqual(self.attrs.type, 'error', `join failed: ${self.toString()}`);
  await c.receive(isSubject(room));
  return self;
}

export function submitForm(fields: Record<string, string | string[]>): Element {
  return xml(
    'x',
    { xmlns: NS.dataForms, type: 'submit' },
    xml('field', { var: 'FORM_TYPE' }, xml('value', null, 'http://jabber.org/protocol/muc#roomconfig')),
    Object.entries(fields).map(([k, v]) =>
      xml(
        'field',
        { var: k },
        (Array.isArray(v) ? v : [v]).map((s) => xml('value', null, s)),
      ),
    ),
  );
}

export function ownerSet(c: TestClient, room: string, payload: Element): Promise<Element> {
  return c.iq(xml('iq', { type: 'set', to: room }, xml('query', { xmlns: NS.mucOwner }, payload)));
}

/** Creates a room owned by `c` and configures it (empty form: instant room). */
export async function createRoom(
  c: TestClient,
  room: string,
  nick: string,
  fields: Record<string, string | string[]> = {},
): Promise<void> {
  const self = await join(c, room, nick);
  assert.deepEqual(codes(self), [110, 201], self.toString());
  await c.receive(isSubject(room));
  const res = await ownerSet(
    c,
    room,
    Object.keys(fields).length === 0 ? xml('x', { xmlns: NS.dataForms, type: 'submit' }) : submitForm(fields),
  );
  assert.equal(res.attrs.type, 'result', res.toString());
}

export function adminItems(
  c: TestClient,
  room: string,
  type: 'get' | 'set',
  items: Element[],
): Promise<Element> {
  return c.iq(xml('iq', { type, to: room }, xml('query', { xmlns: NS.mucAdmin }, items)));
}

export function groupchat(c: TestClient, room: string, body: string): void {
  c.send(xml('message', { to: room, type: 'groupchat' }, xml('body', null, body)));
}

export const isGroupchat = (from: string, body?: string) => (e: Element) =>
  e.name === 'message' &&
  e.attrs.type === 'groupchat' &&
  e.attrs.from === from &&
  (body === undefined || e.getChildText('body') === body);

let qn = 0;
/** A XEP-0313 query on a room's archive: the archived messages (from the room) and the `<fin/>`. */
export async function roomArchive(
  c: TestClient,
  room: string,
  fields: Record<string, string> = {},
  max = 100,
): Promise<{ iq: Element; results: { id: string; message: Element; from: string }[] }> {
  const queryid = `q${++qn}`;
  const form = xml(
    'x',
    { xmlns: NS.dataForms, type: 'submit' },
    xml('field', { var: 'FORM_TYPE', type: 'hidden' }, xml('value', null, NS.mam)),
    Object.entries(fields).map(([k, v]) => xml('field', { var: k }, xml('value', null, v))),
  );
  const iq = await c.iq(
    xml(
      'iq',
      { type: 'set', to: room },
      xml(
        'query',
        { xmlns: NS.mam, queryid },
        form,
        xml('set', { xmlns: NS.rsm }, xml('max', null, String(max))),
      ),
    ),
  );
  const results: { id: string; message: Element; from: string }[] = [];
  for (let i = 0; i < c.received.length;) {
    const e = c.received[i]!;
    const r = e.name === 'message' ? e.getChild('result', NS.mam) : undefined;
    if (r && r.attrs.queryid === queryid) {
      c.received.splice(i, 1);
      const message = r.getChild('forwarded', NS.forward)!.getChild('message')!;
      results.push({ id: r.attrs.id!, message, from: e.attrs.from! });
    } else i++;
  }
  return { iq, results };
}

export const stanzaIdOf = (m: Element, room: string) =>
  m.getChildren('stanza-id', NS.sid).find((s) => s.attrs.by === room)?.attrs.id;
export const occupantIdOf = (e: Element) => e.getChild('occupant-id', 'urn:xmpp:occupant-id:0')?.attrs.id;
