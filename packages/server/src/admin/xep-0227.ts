// XEP-0227 (Portable Import/Export Format, v1.1): reading (streamed, one <user/> in memory at a
// time, XInclude of relative files) into MigratedUser records, and writing Natter's accounts out.
import { createReadStream, createWriteStream, fchmodSync, openSync, type WriteStream } from 'node:fs';
import { realpath, stat } from 'node:fs/promises';
import { dirname, isAbsolute, relative, resolve } from 'node:path';
import { once } from 'node:events';
import { DocumentReader, Element, parseElement, serialize, xml } from '@natter/xml';
import { fromBase64, toBase64, type ScramCredentials, type ScramHash } from '@natter/protocol';
import { parseJid, tryParseJid } from '@natter/jid';
import type { ImportedKeys } from '../accounts/account-store.js';
import {
  emptyUser,
  isPubsubAffiliation,
  rosterItem,
  type ArchivedStanza,
  type MigratedPepNode,
  type MigratedUser,
} from './migration-writer.js';
import { configSubmitForm, readForeignConfig, type NodeConfig } from '../modules/pubsub/node-config.js';

/** The namespace of v1.1 (urn:xmpp:pie:0) and the one before it, which ejabberd still writes. */
export const NS_PIE = 'urn:xmpp:pie:0';
export const NS_PIE_OLD = 'http://www.xmpp.org/extensions/xep-0227.html#ns';
export const NS_PIE_SCRAM = 'urn:xmpp:pie:0#scram';
const NS_XINCLUDE = 'http://www.w3.org/2001/XInclude';
const NS_ROSTER = 'jabber:iq:roster';
const NS_PRIVATE = 'jabber:iq:private';
const NS_VCARD = 'vcard-temp';
const NS_CLIENT = 'jabber:client';
const NS_DELAY = 'urn:xmpp:delay';
const NS_LEGACY_DELAY = 'jabber:x:delay';
const NS_PUBSUB = 'http://jabber.org/protocol/pubsub';
const NS_PUBSUB_OWNER = 'http://jabber.org/protocol/pubsub#owner';
/** XEP-0227 v1.1 §4.8: a user's archive, as XEP-0313 results. */
export const NS_PIE_MAM = 'urn:xmpp:pie:0#mam';
const NS_MAM = ['urn:xmpp:mam:2', 'urn:xmpp:mam:1', 'urn:xmpp:mam:0'];
const NS_FORWARD = 'urn:xmpp:forward:0';
const NS_DATA = 'jabber:x:data';

const isPie = (ns: string) => ns === NS_PIE || ns === NS_PIE_OLD;

export class Xep227Error extends Error {
  readonly code = 'XEP227_INVALID';
}

export interface ReadOptions {
  /** Only users of this host (others are skipped, counted in `skippedHosts`). */
  host?: string;
  /** Largest <user/> element, in characters (default 64 MiB). */
  maxUserChars?: number;
  /** Told the bytes read so far of the main file and its size. */
  progress?: (read: number, total: number) => void;
}

/** SCRAM key lengths per hash (RFC 5802/7677): a key of another length is refused. */
const KEY_BYTES: Record<ScramHash, number> = { 'SHA-1': 20, 'SHA-256': 32 };

/** Decodes base64 strictly; undefined when it is not. */
function b64(text: string | undefined): Uint8Array | undefined {
  const t = (text ?? '').replace(/\s+/g, '');
  if (t === '' || t.length % 4 !== 0 || !/^[A-Za-z0-9+/]+={0,2}$/.test(t)) return undefined;
  return fromBase64(t);
}

/**
 * SCRAM values as base64 text. ejabberd (23.01 at least) keeps its keys base64-encoded and encodes
 * them once more on export, in `<scram-credentials/>` as in its `scram:` passwords: the key lengths
 * tell one layer from two, and the salt is read like the keys.
 */
function scramValues(
  hash: ScramHash,
  text: { storedKey?: string; serverKey?: string; salt?: string; iterations?: string },
): ScramCredentials | undefined {
  const iterations = Number(text.iterations?.trim());
  if (!Number.isInteger(iterations) || iterations < 1 || iterations > 10_000_000) return undefined;
  const layers = (t: string | undefined, n: number): Uint8Array | undefined => {
    let v = b64(t);
    for (let i = 1; i < n && v; i++) v = b64(Buffer.from(v).toString('latin1'));
    return v;
  };
  for (const n of [1, 2]) {
    const storedKey = layers(text.storedKey, n);
    const serverKey = layers(text.serverKey, n);
    const salt = layers(text.salt, n);
    if (
      storedKey?.length === KEY_BYTES[hash] &&
      serverKey?.length === KEY_BYTES[hash] &&
      salt &&
      salt.length > 0 &&
      salt.length <= 1024
    )
      return { salt, iterations, storedKey, serverKey };
  }
  return undefined;
}

/** `<scram-credentials/>` (XEP-0227 §4.2 v1.1) as keys; undefined (with a note) when unusable. */
export function readScramCredentials(
  el: Element,
  notes: string[],
): { hash: ScramHash; keys: ScramCredentials } | undefined {
  const mechanism = el.attrs.mechanism ?? '';
  const hash: ScramHash | undefined =
    mechanism === 'SCRAM-SHA-1' ? 'SHA-1' : mechanism === 'SCRAM-SHA-256' ? 'SHA-256' : undefined;
  if (!hash) {
    notes.push(`SCRAM credentials for ${mechanism || 'no mechanism'} (only SCRAM-SHA-1 and SCRAM-SHA-256)`);
    return undefined;
  }
  const keys = scramValues(hash, {
    iterations: el.getChildText('iter-count', el.xmlns),
    salt: el.getChildText('salt', el.xmlns),
    storedKey: el.getChildText('stored-key', el.xmlns),
    serverKey: el.getChildText('server-key', el.xmlns),
  });
  if (!keys) {
    notes.push(`malformed ${mechanism} credentials`);
    return undefined;
  }
  return { hash, keys };
}

/**
 * Older ejabberd versions write SCRAM keys into the password attribute:
 * `scram:STORED,SERVER,SALT,ITERATIONS` (later with the hash first, `scram:sha256:…`).
 */
export function ejabberdScramPassword(
  password: string,
  notes: string[],
): { hash: ScramHash; keys: ScramCredentials } | 'unusable' | undefined {
  const m = /^scram:(?:([a-z0-9]+):)?([^,]+),([^,]+),([^,]+),([0-9]+)$/.exec(password);
  if (!m) return undefined;
  const hash: ScramHash | undefined =
    m[1] === undefined || m[1] === 'sha' ? 'SHA-1' : m[1] === 'sha256' ? 'SHA-256' : undefined;
  if (!hash) {
    notes.push(`SCRAM keys for ${m[1]} (only SHA-1 and SHA-256)`);
    return 'unusable';
  }
  const keys = scramValues(hash, { storedKey: m[2], serverKey: m[3], salt: m[4], iterations: m[5] });
  if (keys) return { hash, keys };
  notes.push('malformed SCRAM keys in the password attribute');
  return 'unusable';
}

/** A copy of `el` with the elements in namespace `from` (inherited from the file) moved to `to`. */
function renamespace(el: Element, from: string, to: string): Element {
  const copy = new Element(el.name, el.xmlns === from ? to : el.xmlns, { ...el.attrs });
  copy.inheritsNs = false;
  for (const c of el.children) copy.children.push(typeof c === 'string' ? c : renamespace(c, from, to));
  return copy;
}

/** The ejabberd offline delay (or another server's) says when the message was stored. */
function offlineMessage(original: Element, host: string): { stanza: Element; storedAt?: number } {
  // A message written without xmlns='jabber:client' is in the file's namespace: it means a stanza.
  const m = isPie(original.xmlns) ? renamespace(original, original.xmlns, NS_CLIENT) : original;
  let storedAt: number | undefined;
  const kept = m.children.filter((c) => {
    if (typeof c === 'string') return true;
    const isDelay =
      (c.name === 'delay' && c.xmlns === NS_DELAY) || (c.name === 'x' && c.xmlns === NS_LEGACY_DELAY);
    if (!isDelay) return true;
    // The old server's own offline stamp: Natter adds its own when it delivers the message.
    const own = (c.attrs.from ?? host) === host;
    if (own && c.xmlns === NS_DELAY) {
      const t = Date.parse(c.attrs.stamp ?? '');
      if (Number.isFinite(t)) storedAt ??= t;
    }
    return !own;
  });
  const stanza = new Element(m.name, NS_CLIENT, { ...m.attrs }, kept);
  return storedAt === undefined ? { stanza } : { stanza, storedAt };
}

/** A `<user/>` element of host `host` as a MigratedUser. */
export function readUser(el: Element, host: string): MigratedUser {
  const user = emptyUser(host, el.attrs.name ?? '');
  const notes = user.notImported;
  const keys: ImportedKeys = {};
  const pep = new Map<string, MigratedPepNode>();
  const archive: ArchivedStanza[] = [];
  user.archive = archive;
  for (const c of el.elements()) {
    if (c.name === 'scram-credentials' && c.xmlns === NS_PIE_SCRAM) {
      const k = readScramCredentials(c, notes);
      if (k) keys[k.hash] = k.keys;
    } else if (c.name === 'query' && c.xmlns === NS_ROSTER) {
      for (const item of c.getChildren('item', NS_ROSTER)) {
        const groups = item.getChildren('group', NS_ROSTER).map((g) => g.text());
        const r = rosterItem(item.attrs, groups, notes);
        if (r) user.roster.push(r);
      }
    } else if (
      c.name === 'presence' &&
      (c.xmlns === NS_CLIENT || isPie(c.xmlns)) &&
      c.attrs.type === 'subscribe'
    ) {
      try {
        const contact = parseJid(c.attrs.from ?? '').toBareString();
        const p = renamespace(c, c.xmlns, NS_CLIENT);
        const stanza = new Element('presence', NS_CLIENT, { from: contact, type: 'subscribe' }, [
          ...p.elements().filter((s) => (s.name === 'status' && s.xmlns === NS_CLIENT) || s.name === 'nick'),
        ]);
        user.pending.push({ contact, stanza });
      } catch {
        notes.push(`subscription request from an invalid JID "${c.attrs.from ?? ''}"`);
      }
    } else if (c.name === 'vCard' && c.xmlns === NS_VCARD) {
      if (c.children.length > 0) user.vcard = c;
    } else if (c.name === 'query' && c.xmlns === NS_PRIVATE) {
      user.private.push(...c.elements());
    } else if (c.name === 'offline-messages' && isPie(c.xmlns)) {
      for (const m of c.elements()) {
        if (m.name === 'message') user.offline.push(offlineMessage(m, host));
        else notes.push(`<${m.name}/> among offline messages`);
      }
    } else if (c.name === 'query' && c.xmlns === 'jabber:iq:privacy') {
      if (c.elements().length > 0) notes.push('privacy lists (XEP-0016; Natter has blocking, XEP-0191)');
    } else if (c.name === 'pubsub' && c.xmlns === NS_PUBSUB) {
      readPepItems(c, pep, notes);
    } else if (c.name === 'pubsub' && c.xmlns === NS_PUBSUB_OWNER) {
      readPepOwner(c, pep, notes);
    } else if (c.name === 'archive' && c.xmlns === NS_PIE_MAM) {
      readArchive(c, archive, notes);
    } else {
      notes.push(`<${c.name} xmlns='${c.xmlns}'/>`);
    }
  }
  let password = el.attrs.password;
  const ejabberd = password !== undefined ? ejabberdScramPassword(password, notes) : undefined;
  if (ejabberd) {
    // SCRAM keys, never a password: the attribute's text is not used as one.
    password = undefined;
    if (ejabberd !== 'unusable') keys[ejabberd.hash] ??= ejabberd.keys;
  }
  if (keys['SHA-1'] || keys['SHA-256']) user.credentials = { keys };
  else if (password !== undefined && password !== '') user.credentials = { password };
  user.pep = [...pep.values()];
  return user;
}

/** The node named by `el`'s `node` attribute, created on first mention; undefined without a name. */
function pepNode(
  el: Element,
  pep: Map<string, MigratedPepNode>,
  notes: string[],
): MigratedPepNode | undefined {
  const name = el.attrs.node ?? '';
  if (name === '' || name.length > 1023) {
    notes.push(`a PEP <${el.name}/> without a usable node name`);
    return undefined;
  }
  let n = pep.get(name);
  if (!n) pep.set(name, (n = { node: name, config: {}, items: [], affiliations: [], subscribers: [] }));
  return n;
}

/** `<pubsub xmlns='…pubsub'>`: `<items node=…>` with the node's items, oldest first. */
function readPepItems(el: Element, pep: Map<string, MigratedPepNode>, notes: string[]): void {
  for (const items of el.elements()) {
    if (items.name !== 'items') {
      notes.push(`<${items.name}/> in PEP items`);
      continue;
    }
    const node = pepNode(items, pep, notes);
    if (!node) continue;
    for (const item of items.getChildren('item', items.xmlns)) {
      const id = item.attrs.id ?? '';
      if (id === '' || id.length > 1023) {
        notes.push(`an item of PEP node ${node.node} without a usable id`);
        continue;
      }
      const payload = item.elements()[0];
      const publisher = tryParseJid(item.attrs.publisher ?? '')?.toBareString();
      node.items.push({ id, payload, ...(publisher ? { publisher } : {}) });
    }
  }
}

/** `<pubsub xmlns='…pubsub#owner'>`: `<configure/>`, `<affiliations/>`, `<subscriptions/>` per node. */
function readPepOwner(el: Element, pep: Map<string, MigratedPepNode>, notes: string[]): void {
  for (const c of el.elements()) {
    if (!['configure', 'affiliations', 'subscriptions'].includes(c.name)) {
      notes.push(`<${c.name}/> in PEP node settings`);
      continue;
    }
    const node = pepNode(c, pep, notes);
    if (!node) continue;
    if (c.name === 'configure') {
      const form = c.getChild('x', NS_DATA);
      if (!form) continue;
      const { values, rejected } = readForeignConfig(form, Number.MAX_SAFE_INTEGER);
      Object.assign(node.config, values);
      for (const r of rejected) notes.push(`PEP node ${node.node}: setting ${r} (the default is kept)`);
    } else if (c.name === 'affiliations') {
      for (const a of c.getChildren('affiliation', c.xmlns)) {
        let jid: string;
        try {
          jid = parseJid(a.attrs.jid ?? '').toBareString();
        } catch {
          notes.push(`PEP node ${node.node}: an affiliation of an invalid JID "${a.attrs.jid ?? ''}"`);
          continue;
        }
        const affiliation = a.attrs.affiliation;
        if (isPubsubAffiliation(affiliation)) node.affiliations.push({ jid, affiliation });
        else notes.push(`PEP node ${node.node}: affiliation "${affiliation ?? ''}" of ${jid}`);
      }
    } else {
      for (const sub of c.getChildren('subscription', c.xmlns)) {
        // Prosody (0.12) writes the state as subscribed='subscribed'.
        const state = sub.attrs.subscription ?? sub.attrs.subscribed ?? 'subscribed';
        if (state !== 'subscribed') continue;
        try {
          node.subscribers.push(parseJid(sub.attrs.jid ?? '').toString());
        } catch {
          notes.push(`PEP node ${node.node}: a subscription of an invalid JID "${sub.attrs.jid ?? ''}"`);
        }
      }
    }
  }
}

/** `<archive xmlns='urn:xmpp:pie:0#mam'>`: XEP-0313 `<result/>`s, each a forwarded message with its time. */
function readArchive(el: Element, out: ArchivedStanza[], notes: string[]): void {
  let unreadable = 0;
  for (const r of el.elements()) {
    const forwarded =
      r.name === 'result' && NS_MAM.includes(r.xmlns) ? r.getChild('forwarded', NS_FORWARD) : undefined;
    const stamp = forwarded?.getChild('delay', NS_DELAY)?.attrs.stamp;
    const at = Date.parse(stamp ?? '');
    const original = forwarded?.elements().find((m) => m.name === 'message');
    if (!original || !Number.isFinite(at)) {
      unreadable++;
      continue;
    }
    // A message written without xmlns='jabber:client' is in the namespace around it: a stanza.
    const stanza = original.xmlns === NS_CLIENT ? original : renamespace(original, original.xmlns, NS_CLIENT);
    out.push({ at, stanza });
  }
  // Oldest first, as the archive is written (ties keep the file's order).
  out.sort((a, b) => a.at - b.at);
  if (unreadable > 0) notes.push(`${unreadable} archive entries without a forwarded message and its time`);
}

/** An included file must stay inside the directory of the file that names it (or below). */
async function includedPath(base: string, href: string): Promise<string> {
  if (href === '' || isAbsolute(href) || /^[a-z][a-z0-9+.-]*:/i.test(href))
    throw new Xep227Error(`xi:include href="${href}": only relative file names are supported`);
  const dir = await realpath(dirname(base));
  const target = await realpath(resolve(dirname(base), decodeURIComponent(href))).catch(() => {
    throw new Xep227Error(`xi:include href="${href}": no such file next to ${base}`);
  });
  const rel = relative(dir, target);
  if (rel.startsWith('..') || isAbsolute(rel))
    throw new Xep227Error(`xi:include href="${href}" leaves the directory of ${base}`);
  return target;
}

type Queued = { kind: 'user'; el: Element; host: string } | { kind: 'include'; href: string; host?: string };

const MAX_INCLUDE_DEPTH = 4;

/**
 * Reads a XEP-0227 file (and the files it includes), calling `onUser` for each account, in order,
 * one at a time. Accounts of other hosts than `opts.host` are skipped (counted in the result).
 */
export async function readXep227(
  file: string,
  onUser: (user: MigratedUser) => Promise<void>,
  opts: ReadOptions = {},
  state: { depth: number; host?: string; skipped: Map<string, number> } = { depth: 0, skipped: new Map() },
): Promise<{ skippedHosts: Map<string, number> }> {
  if (state.depth > MAX_INCLUDE_DEPTH)
    throw new Xep227Error(`xi:include nested deeper than ${MAX_INCLUDE_DEPTH}`);
  const queue: Queued[] = [];
  const hostOf = (ancestors: readonly Element[]): string | undefined => {
    for (let i = ancestors.length - 1; i >= 0; i--) {
      const a = ancestors[i]!;
      if (a.name === 'host' && isPie(a.xmlns)) return a.attrs.jid;
    }
    return state.host;
  };
  let rootSeen = false;
  const reader = new DocumentReader(
    {
      collect: ({ name, xmlns, ancestors }) => {
        if (ancestors.length === 0) {
          rootSeen = true;
          if (!isPie(xmlns) || !['server-data', 'host', 'user'].includes(name))
            throw new Xep227Error(
              `${file}: the root element is <${name} xmlns='${xmlns}'/>, not XEP-0227 data`,
            );
          return name === 'user';
        }
        return (name === 'user' && isPie(xmlns)) || (name === 'include' && xmlns === NS_XINCLUDE);
      },
      element: (el, ancestors) => {
        const host = hostOf(ancestors);
        if (el.name === 'include') {
          if (el.attrs.parse !== undefined && el.attrs.parse !== 'xml')
            throw new Xep227Error(`xi:include parse="${el.attrs.parse}" is not supported`);
          if (el.attrs.xpointer !== undefined)
            throw new Xep227Error('xi:include with xpointer is not supported');
          queue.push({ kind: 'include', href: el.attrs.href ?? '', ...(host !== undefined ? { host } : {}) });
          return;
        }
        if (host === undefined) throw new Xep227Error(`${file}: a <user/> outside any <host/>`);
        queue.push({ kind: 'user', el, host });
      },
    },
    { maxElementChars: opts.maxUserChars ?? 64 * 1024 * 1024 },
  );
  const drain = async () => {
    while (queue.length > 0) {
      const q = queue.shift()!;
      if (q.kind === 'include') {
        const target = await includedPath(file, q.href);
        await readXep227(
          target,
          onUser,
          { ...opts, progress: undefined },
          {
            depth: state.depth + 1,
            ...(q.host !== undefined ? { host: q.host } : {}),
            skipped: state.skipped,
          },
        );
        continue;
      }
      const host = q.host.toLowerCase();
      if (opts.host !== undefined && host !== opts.host) {
        state.skipped.set(host, (state.skipped.get(host) ?? 0) + 1);
        continue;
      }
      await onUser(readUser(q.el, host));
    }
  };
  const input = createReadStream(file, { highWaterMark: 64 * 1024 });
  const total = (await stat(file).catch(() => undefined))?.size ?? 0;
  let read = 0;
  for await (const chunk of input as AsyncIterable<Buffer>) {
    try {
      reader.write(chunk);
    } catch (err) {
      if (/exceeds \d+ characters/.test((err as Error).message))
        throw new Xep227Error(
          `${file}: an account's element (with its archive) is larger than ${Math.round((opts.maxUserChars ?? 64 * 1024 * 1024) / 1048576)} MiB; import with a larger --max-user-mib`,
        );
      throw err;
    }
    read += chunk.length;
    opts.progress?.(read, total);
    await drain();
  }
  reader.end();
  if (!rootSeen) throw new Xep227Error(`${file} is empty`);
  await drain();
  return { skippedHosts: state.skipped };
}

/** What `natter export` reads of one account. */
export interface ExportedUser {
  username: string;
  keys: ImportedKeys;
  roster: Element | undefined;
  pending: Element[];
  vcard: Element | undefined;
  private: Element[];
  offline: { stanza: Element; storedAt: number }[];
  /** PEP nodes: `<pubsub xmlns='…#owner'/>` (settings) and `<pubsub xmlns='…pubsub'/>` (items). */
  pep: Element[];
  /** The message archive, oldest first, read while it is written. */
  archive?: AsyncIterable<{ id: string; at: number; stanza: string }>;
}

/** PEP nodes as XEP-0227 v1.1 carries them (as Prosody's mod_storage_xep0227 writes them). */
export function pepElements(
  nodes: {
    node: string;
    config: NodeConfig;
    items: { id: string; payload: string; publisher: string }[];
    affiliations: { jid: string; affiliation: string }[];
    subscribers: string[];
  }[],
): Element[] {
  if (nodes.length === 0) return [];
  const owner = xml('pubsub', { xmlns: NS_PUBSUB_OWNER });
  const items = xml('pubsub', { xmlns: NS_PUBSUB });
  for (const n of nodes) {
    owner.append(xml('configure', { node: n.node }, configSubmitForm(n.config)));
    if (n.affiliations.length > 0)
      owner.append(
        xml(
          'affiliations',
          { node: n.node },
          n.affiliations.map((a) => xml('affiliation', { jid: a.jid, affiliation: a.affiliation })),
        ),
      );
    if (n.subscribers.length > 0)
      owner.append(
        xml(
          'subscriptions',
          { node: n.node },
          n.subscribers.map((jid) => xml('subscription', { jid, subscription: 'subscribed' })),
        ),
      );
    if (n.items.length > 0)
      items.append(
        xml(
          'items',
          { node: n.node },
          n.items.map((i) =>
            xml(
              'item',
              { id: i.id, publisher: i.publisher },
              i.payload === '' ? undefined : parseElement(i.payload),
            ),
          ),
        ),
      );
  }
  return items.children.length > 0 ? [owner, items] : [owner];
}

/** One archived message as a `<result/>` of the archive element. */
export function archiveResult(m: { id: string; at: number; stanza: string }): Element {
  const message = parseElement(m.stanza);
  message.xmlns = NS_CLIENT;
  message.inheritsNs = false;
  return xml(
    'result',
    { xmlns: NS_MAM[0], id: m.id },
    xml(
      'forwarded',
      { xmlns: NS_FORWARD },
      xml('delay', { xmlns: NS_DELAY, stamp: new Date(m.at).toISOString() }),
      message,
    ),
  );
}

function scramElement(hash: ScramHash, k: ScramCredentials): Element {
  return xml(
    'scram-credentials',
    { xmlns: NS_PIE_SCRAM, mechanism: `SCRAM-${hash}` },
    xml('iter-count', null, String(k.iterations)),
    xml('salt', null, toBase64(k.salt)),
    xml('server-key', null, toBase64(k.serverKey)),
    xml('stored-key', null, toBase64(k.storedKey)),
  );
}

/** The `<user/>` element of an account (XEP-0227 v1.1: keys, never a password). */
export function userElement(u: ExportedUser, host: string): Element {
  const keys = (['SHA-1', 'SHA-256'] as const).flatMap((h) =>
    u.keys[h] ? [scramElement(h, u.keys[h])] : [],
  );
  const offline =
    u.offline.length > 0
      ? xml(
          'offline-messages',
          { xmlns: NS_PIE },
          u.offline.map((m) => {
            const s = m.stanza.clone();
            s.append(
              xml(
                'delay',
                { xmlns: NS_DELAY, from: host, stamp: new Date(m.storedAt).toISOString() },
                'Offline Storage',
              ),
            );
            return s;
          }),
        )
      : undefined;
  return xml(
    'user',
    { xmlns: NS_PIE, name: u.username },
    keys,
    u.roster,
    u.pending,
    u.vcard,
    u.private.length > 0 ? xml('query', { xmlns: NS_PRIVATE }, u.private) : undefined,
    offline,
    u.pep,
  );
}

/** Writes a XEP-0227 document, one user at a time, waiting when the file is slower than us. */
export class Xep227Writer {
  private readonly out: WriteStream;
  private hostOpen = false;

  constructor(file: string) {
    // The file holds password keys: readable by its owner only (XEP-0227 §6), also when it
    // replaces an existing file (whose mode the open would keep).
    const fd = openSync(file, 'w', 0o600);
    fchmodSync(fd, 0o600);
    this.out = createWriteStream(file, { fd });
  }

  private async put(text: string): Promise<void> {
    if (!this.out.write(text)) await once(this.out, 'drain');
  }

  async start(): Promise<void> {
    await this.put(`<?xml version='1.0' encoding='UTF-8'?>\n<server-data xmlns='${NS_PIE}'>\n`);
  }

  async host(jid: string): Promise<void> {
    if (this.hostOpen) await this.put('</host>\n');
    await this.put(`<host jid='${jid.replace(/[<>&'"]/g, '')}'>\n`);
    this.hostOpen = true;
  }

  /** One `<user/>`; its archive is written as it is read, a message at a time. */
  async user(u: ExportedUser, host: string): Promise<number> {
    const text = serialize(userElement(u, host), NS_PIE);
    if (!u.archive) {
      await this.put(text + '\n');
      return 0;
    }
    // Open the element again to append the archive (a user with no child closes with '/>').
    await this.put(text.endsWith('</user>') ? text.slice(0, -'</user>'.length) : text.replace(/\/>$/, '>'));
    let n = 0;
    for await (const m of u.archive) {
      if (n === 0) await this.put(`<archive xmlns="${NS_PIE_MAM}">`);
      await this.put(serialize(archiveResult(m), NS_PIE_MAM));
      n++;
    }
    await this.put(n > 0 ? '</archive></user>\n' : '</user>\n');
    return n;
  }

  async end(): Promise<void> {
    if (this.hostOpen) await this.put('</host>\n');
    await this.put('</server-data>\n');
    this.out.end();
    await once(this.out, 'finish');
  }

  destroy(): void {
    this.out.destroy();
  }
}
