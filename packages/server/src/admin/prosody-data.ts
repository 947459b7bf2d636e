// Reads a Prosody data directory (storage = "internal", Prosody 0.11/0.12): one folder per host,
// its name escaped (every byte that is not a letter or digit as %xx: example%2ecom), one folder per
// store, one file per user (accounts/USER.dat, roster/USER.dat, vcard/USER.dat, private/USER.dat,
// offline/USER.list). Values are Lua literals (lua-data.ts). Nothing is written there.
import { createReadStream } from 'node:fs';
import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { Element } from '@natter/xml';
import { parseJid, tryParseJid } from '@natter/jid';
import { buildForm, type FormField, type ScramCredentials, type ScramHash } from '@natter/protocol';
import type { ImportedKeys } from '../accounts/account-store.js';
import { LuaTable, parseLuaDat, parseLuaList, type LuaValue } from './lua-data.js';
import {
  emptyUser,
  isPubsubAffiliation,
  rosterItem,
  type ArchivedStanza,
  type MigratedPepNode,
  type MigratedRoom,
  type MigratedUser,
} from './migration-writer.js';
import { readForeignConfig } from '../modules/pubsub/node-config.js';
import type { RoomConfig } from '../modules/muc/room-config.js';

/** Prosody's datamanager encoding of host and user names (util/datamanager.lua `encode`). */
export function prosodyDecode(name: string): string {
  return Buffer.from(
    name.replace(/%([0-9a-fA-F]{2})/g, (_, h: string) => String.fromCharCode(parseInt(h, 16))),
    'latin1',
  ).toString('utf8');
}

export function prosodyEncode(name: string): string {
  return [...Buffer.from(name, 'utf8')]
    .map((b) =>
      /[A-Za-z0-9]/.test(String.fromCharCode(b))
        ? String.fromCharCode(b)
        : `%${b.toString(16).padStart(2, '0')}`,
    )
    .join('');
}

export class ProsodyDataError extends Error {
  readonly code = 'PROSODY_DATA_INVALID';
}

/** Largest store file read (a roster, a vCard with a photo, an offline list). */
const MAX_FILE_BYTES = 64 * 1024 * 1024;
const XML_LANG = 'http://www.w3.org/XML/1998/namespace';
/** As deep as the XMPP parser lets a stanza be (@natter/xml DEFAULT_LIMITS). */
const MAX_ELEMENT_DEPTH = 32;

async function readSmall(path: string): Promise<string | undefined> {
  let size: number;
  try {
    const s = await stat(path);
    if (!s.isFile()) return undefined;
    size = s.size;
  } catch {
    return undefined;
  }
  if (size > MAX_FILE_BYTES) throw new ProsodyDataError(`${path} is larger than ${MAX_FILE_BYTES} bytes`);
  return readFile(path, 'utf8');
}

/** A stanza as util/stanza's `preserialize` stores it: { name, attr = {…}, [1] = child or text, … }. */
export function elementFromLua(v: LuaValue, parentNs = '', depth = 0): Element {
  if (!(v instanceof LuaTable)) throw new ProsodyDataError('a stored element is not a table');
  if (depth > MAX_ELEMENT_DEPTH) throw new ProsodyDataError('a stored element is nested too deep');
  const name = v.str('name');
  if (name === undefined || !/^[A-Za-z_][A-Za-z0-9_.-]*$/.test(name))
    throw new ProsodyDataError(`a stored element has no valid name (${String(name)})`);
  const attrTable = v.table('attr');
  const xmlns = attrTable?.str('xmlns') ?? parentNs;
  const attrs: Record<string, string> = {};
  for (const [k, val] of attrTable?.entries ?? []) {
    if (typeof k !== 'string' || typeof val !== 'string' || k === 'xmlns') continue;
    // Namespaced attributes are stored as "ns\1name" (or "ns|name"): only xml:lang is kept.
    const sep = k.includes('\u0001') ? '\u0001' : k.includes('|') ? '|' : undefined;
    if (sep === undefined) attrs[k] = val;
    else if (k === `${XML_LANG}${sep}lang`) attrs['xml:lang'] = val;
  }
  const el = new Element(name, xmlns, attrs);
  el.inheritsNs = false;
  for (const c of v.array()) {
    if (typeof c === 'string') el.children.push(c);
    else if (c instanceof LuaTable) el.children.push(elementFromLua(c, xmlns, depth + 1));
  }
  return el;
}

/** Prosody's internal_hashed keys: hex keys (40 digits: SHA-1, 64: SHA-256), a raw salt. */
function accountCredentials(t: LuaTable, notes: string[]): MigratedUser['credentials'] {
  const stored = t.str('stored_key');
  const server = t.str('server_key');
  const salt = t.str('salt');
  const iterations = t.num('iteration_count');
  if (stored !== undefined && server !== undefined && salt !== undefined && iterations !== undefined) {
    const hash: ScramHash | undefined =
      /^[0-9a-fA-F]{40}$/.test(stored) && /^[0-9a-fA-F]{40}$/.test(server)
        ? 'SHA-1'
        : /^[0-9a-fA-F]{64}$/.test(stored) && /^[0-9a-fA-F]{64}$/.test(server)
          ? 'SHA-256'
          : undefined;
    if (!hash || !Number.isInteger(iterations) || iterations < 1 || iterations > 10_000_000 || salt === '') {
      notes.push('malformed hashed password');
      return undefined;
    }
    const keys: ScramCredentials = {
      salt: new Uint8Array(Buffer.from(salt, 'utf8')),
      iterations,
      storedKey: new Uint8Array(Buffer.from(stored, 'hex')),
      serverKey: new Uint8Array(Buffer.from(server, 'hex')),
    };
    const imported: ImportedKeys = {};
    imported[hash] = keys;
    return { keys: imported };
  }
  const password = t.str('password');
  if (password !== undefined && password !== '') return { password };
  return undefined;
}

/** Stores Natter reads; other stores found for a user are named in the report. */
const READ_STORES = new Set([
  'accounts',
  'roster',
  'vcard',
  'private',
  'offline',
  'pep',
  'archive',
  'archive2',
]);
/** Stores that hold nothing a user would miss (caches, server bookkeeping). */
const QUIET_STORES = new Set([
  'account_details',
  'account_roles',
  'cron',
  'lastlog',
  'lastlog2',
  'smacks_h',
  'tokens',
]);

async function readUser(base: string, host: string, file: string, stores: string[]): Promise<MigratedUser> {
  const encoded = file.slice(0, -'.dat'.length);
  const user = emptyUser(host, prosodyDecode(encoded));
  const notes = user.notImported;
  const dat = async (store: string): Promise<LuaValue | undefined> => {
    const text = await readSmall(join(base, store, `${encoded}.dat`));
    if (text === undefined) return undefined;
    try {
      return parseLuaDat(text);
    } catch (err) {
      notes.push(`${store}: ${(err as Error).message}`);
      return undefined;
    }
  };
  const account = await dat('accounts');
  if (account instanceof LuaTable) user.credentials = accountCredentials(account, notes);

  const roster = await dat('roster');
  if (roster instanceof LuaTable) {
    for (const [contact, v] of roster.entries) {
      if (contact === false && v instanceof LuaTable) {
        for (const [from, yes] of v.table('pending')?.entries ?? []) {
          if (typeof from !== 'string' || yes === false) continue;
          try {
            const bare = parseJid(from).toBareString();
            user.pending.push({
              contact: bare,
              stanza: new Element('presence', 'jabber:client', { from: bare, type: 'subscribe' }),
            });
          } catch {
            notes.push(`subscription request from an invalid JID "${from}"`);
          }
        }
        continue;
      }
      if (typeof contact !== 'string' || !(v instanceof LuaTable)) continue;
      const groups = [...(v.table('groups')?.entries ?? [])].flatMap(([g, on]) =>
        typeof g === 'string' && on !== false ? [g] : [],
      );
      const item = rosterItem(
        {
          jid: contact,
          ...(v.str('subscription') !== undefined ? { subscription: v.str('subscription') } : {}),
          ...(v.str('ask') !== undefined ? { ask: v.str('ask') } : {}),
          ...(v.str('name') !== undefined ? { name: v.str('name') } : {}),
        },
        groups,
        notes,
      );
      if (item) user.roster.push(item);
    }
  }

  const vcard = await dat('vcard');
  if (vcard !== undefined) {
    try {
      const el = elementFromLua(vcard);
      if (el.name === 'vCard' && el.xmlns === 'vcard-temp') user.vcard = el;
      else notes.push(`vcard: <${el.name} xmlns='${el.xmlns}'/> is not a vCard`);
    } catch (err) {
      notes.push(`vcard: ${(err as Error).message}`);
    }
  }

  const priv = await dat('private');
  if (priv instanceof LuaTable) {
    for (const [, v] of priv.entries) {
      try {
        user.private.push(elementFromLua(v));
      } catch (err) {
        notes.push(`private: ${(err as Error).message}`);
      }
    }
  }

  const offline = await readSmall(join(base, 'offline', `${encoded}.list`));
  if (offline !== undefined) {
    try {
      for (const item of parseLuaList(offline)) {
        const el = elementFromLua(item, 'jabber:client');
        if (el.name !== 'message') continue;
        const when = item instanceof LuaTable ? item.num('when') : undefined;
        const stamp = Date.parse(el.attrs.stamp ?? '');
        // Prosody keeps its storage time as a `stamp` attribute of the stanza: not a stanza's.
        delete el.attrs.stamp;
        const storedAt =
          when !== undefined ? Math.round(when * 1000) : Number.isFinite(stamp) ? stamp : undefined;
        user.offline.push(storedAt === undefined ? { stanza: el } : { stanza: el, storedAt });
      }
    } catch (err) {
      notes.push(`offline: ${(err as Error).message}`);
    }
  }

  user.pep = await readPep(base, encoded, stores, notes);
  // Prosody 0.11 and later write `archive`; 0.10 wrote `archive2` (older, so read first; a server
  // upgraded from 0.10 may have both).
  const lists = ['archive2', 'archive']
    .filter((store) => stores.includes(store))
    .map((store) => join(base, store, `${encoded}.list`));
  if (lists.length > 0)
    user.archive = (async function* () {
      for (const path of lists) yield* archivedStanzas(path, 'jabber:client', notes);
    })();

  for (const store of stores) {
    if (READ_STORES.has(store) || QUIET_STORES.has(store) || store.startsWith('pep_')) continue;
    const has =
      (await stat(join(base, store, `${encoded}.dat`)).catch(() => undefined)) ??
      (await stat(join(base, store, `${encoded}.list`)).catch(() => undefined));
    if (has)
      notes.push(
        store === 'archive'
          ? 'message archive (XEP-0313)'
          : store.startsWith('pep')
            ? `PEP data (${prosodyDecode(store)})`
            : `Prosody store "${prosodyDecode(store)}"`,
      );
  }
  return user;
}

/**
 * The entries of a `.list` file, read as a stream: an entry starts on a line of its own with
 * `item(` (util/serialization writes no line break inside a string), so one entry at a time is
 * in memory, whatever the file's size.
 */
export async function* listEntries(path: string, maxEntryChars = 16 * 1024 * 1024): AsyncGenerator<LuaValue> {
  const s = await stat(path).catch(() => undefined);
  if (!s?.isFile()) return;
  const lines = createInterface({ input: createReadStream(path, { encoding: 'utf8' }), crlfDelay: Infinity });
  let entry = '';
  for await (const line of lines) {
    if (line.startsWith('item(') && entry.trim() !== '') {
      let parsed: LuaValue[] | undefined;
      try {
        parsed = parseLuaList(entry);
      } catch {
        // not a whole entry yet: read on
      }
      if (parsed) {
        yield* parsed;
        entry = '';
      }
    }
    entry += line + '\n';
    if (entry.length > maxEntryChars)
      throw new ProsodyDataError(`${path}: an entry is larger than ${maxEntryChars} characters`);
  }
  if (entry.trim() !== '') yield* parseLuaList(entry);
}

/** Prosody's archive fields on a stored stanza (mod_storage_internal): not the stanza's. */
function storedStanza(item: LuaValue, ns: string): { el: Element; at: number | undefined } {
  const el = elementFromLua(item, ns);
  const when = item instanceof LuaTable ? item.num('when') : undefined;
  const stamp = Date.parse(el.attrs.stamp ?? '');
  delete el.attrs.stamp;
  delete el.attrs.stamp_legacy;
  return {
    el,
    at: when !== undefined ? Math.round(when * 1000) : Number.isFinite(stamp) ? stamp : undefined,
  };
}

/**
 * The messages of an archive list (a user's `archive`, a room's `muc_log`), oldest first, read as
 * they are written; what cannot be read is counted in `notes` once the list is done.
 */
async function* archivedStanzas(
  path: string,
  ns: string,
  notes: string[],
  keep: (el: Element) => Element = (el) => el,
): AsyncGenerator<ArchivedStanza> {
  let skipped = 0;
  let n = 0;
  try {
    for await (const item of listEntries(path)) {
      try {
        const { el, at } = storedStanza(item, ns);
        if (el.name !== 'message' || at === undefined) {
          skipped++;
          continue;
        }
        n++;
        yield { at, stanza: keep(el) };
      } catch {
        skipped++;
      }
    }
  } catch (err) {
    notes.push(`archive: read up to message ${n}, then: ${(err as Error).message}`);
  }
  if (skipped > 0) notes.push(`archive: ${skipped} entries that are not messages with a time`);
}

/** Longest PEP node name or item id kept (the storage's column). */
const MAX_NAME = 1023;

/** A Lua node configuration (mod_pep: only what was set) as `pubsub#…` form fields. */
function pepConfigForm(config: LuaTable): Element {
  const fields: FormField[] = [];
  for (const [k, v] of config.entries) {
    if (typeof k !== 'string') continue;
    const values =
      v instanceof LuaTable
        ? v.array().filter((x): x is string => typeof x === 'string')
        : typeof v === 'boolean'
          ? [v ? '1' : '0']
          : typeof v === 'number' || typeof v === 'string'
            ? [String(v)]
            : [];
    fields.push({ var: `pubsub#${k}`, values });
  }
  return buildForm({ type: 'submit', fields });
}

/**
 * PEP (mod_pep): `pep/USER.dat` maps each node to its configuration (only what was set),
 * affiliations and subscribers; `pep_<node>/USER.list` holds its items, oldest first, each stored
 * as its payload with the item id as `key` and the publisher as `with`.
 */
async function readPep(
  base: string,
  encoded: string,
  stores: string[],
  notes: string[],
): Promise<MigratedPepNode[]> {
  const nodes = new Map<string, MigratedPepNode>();
  const node = (name: string) => {
    let n = nodes.get(name);
    if (!n) nodes.set(name, (n = { node: name, config: {}, items: [], affiliations: [], subscribers: [] }));
    return n;
  };
  const text = await readSmall(join(base, 'pep', `${encoded}.dat`)).catch((err: unknown) => {
    notes.push(`pep: ${(err as Error).message}`);
    return undefined;
  });
  if (text !== undefined) {
    let map: LuaValue | undefined;
    try {
      map = parseLuaDat(text);
    } catch (err) {
      notes.push(`pep: ${(err as Error).message}`);
    }
    for (const [name, v] of map instanceof LuaTable ? map.entries : []) {
      if (typeof name !== 'string' || name === '' || v === false) continue;
      if (name.length > MAX_NAME) {
        notes.push(`a PEP node with a name longer than ${MAX_NAME} characters`);
        continue;
      }
      const n = node(name);
      if (!(v instanceof LuaTable)) continue; // `true`: an old node with the defaults
      const config = v.table('config');
      if (config) {
        const { values, rejected } = readForeignConfig(pepConfigForm(config), Number.MAX_SAFE_INTEGER);
        n.config = values;
        for (const r of rejected) notes.push(`PEP node ${name}: setting ${r} (the default is kept)`);
      }
      for (const [jid, aff] of v.table('affiliations')?.entries ?? []) {
        if (typeof jid !== 'string') continue;
        if (typeof aff === 'string' && isPubsubAffiliation(aff)) {
          try {
            n.affiliations.push({ jid: parseJid(jid).toBareString(), affiliation: aff });
            continue;
          } catch {
            // reported below
          }
        }
        notes.push(`PEP node ${name}: affiliation ${String(aff)} of "${jid}"`);
      }
      for (const [jid, yes] of v.table('subscribers')?.entries ?? []) {
        if (typeof jid !== 'string' || yes === false) continue;
        try {
          n.subscribers.push(parseJid(jid).toString());
        } catch {
          notes.push(`PEP node ${name}: a subscription of an invalid JID "${jid}"`);
        }
      }
    }
  }
  for (const store of stores) {
    if (!store.startsWith('pep_')) continue;
    const name = prosodyDecode(store.slice('pep_'.length));
    if (name === '' || name.length > MAX_NAME) continue;
    const list = await readSmall(join(base, store, `${encoded}.list`)).catch((err: unknown) => {
      notes.push(`PEP node ${name}: ${(err as Error).message}`);
      return undefined;
    });
    if (list === undefined) continue;
    const n = node(name);
    try {
      for (const item of parseLuaList(list)) {
        const id = item instanceof LuaTable ? item.str('key') : undefined;
        if (id === undefined || id === '' || id.length > MAX_NAME) {
          notes.push(`PEP node ${name}: an item without a usable id`);
          continue;
        }
        const withJid = item instanceof LuaTable ? item.str('with') : undefined;
        const publisher =
          withJid !== undefined ? (tryParseJid(withJid)?.toBareString() ?? undefined) : undefined;
        const payload = storedStanza(item, '').el;
        // Republishing an id replaces the item: the last one stands.
        n.items = n.items.filter((i) => i.id !== id);
        n.items.push({ id, payload, ...(publisher ? { publisher } : {}) });
      }
    } catch (err) {
      notes.push(`PEP node ${name}: ${(err as Error).message}`);
    }
  }
  return [...nodes.values()];
}

/** The hosts of a data directory: folders whose name decodes to a domain with an accounts folder. */
export async function prosodyHosts(dataDir: string): Promise<string[]> {
  let names: string[];
  try {
    names = await readdir(dataDir);
  } catch (err) {
    throw new ProsodyDataError(`cannot read ${dataDir}: ${(err as Error).message}`);
  }
  const hosts: string[] = [];
  for (const n of names.sort()) {
    if (n === '_global') continue;
    const s = await stat(join(dataDir, n, 'accounts')).catch(() => undefined);
    if (s?.isDirectory()) hosts.push(prosodyDecode(n));
  }
  return hosts;
}

/** Reads every account of `host` in `dataDir`, calling `onUser` for each, in name order. */
export async function readProsodyHost(
  dataDir: string,
  host: string,
  onUser: (u: MigratedUser) => Promise<void>,
  progress?: (done: number, total: number) => void,
): Promise<number> {
  const base = join(dataDir, prosodyEncode(host));
  const stores = (await readdir(base).catch(() => [] as string[])).sort();
  const files = (await readdir(join(base, 'accounts')).catch(() => [] as string[]))
    .filter((f) => f.endsWith('.dat'))
    .sort();
  let done = 0;
  for (const f of files) {
    await onUser(await readUser(base, host, f, stores));
    progress?.(++done, files.length);
  }
  return files.length;
}

/** The MUC services of a data directory: host folders with a `persistent.dat` (mod_muc's list of rooms). */
export async function prosodyRoomServices(dataDir: string): Promise<string[]> {
  const names = await readdir(dataDir).catch(() => [] as string[]);
  const out: string[] = [];
  for (const n of names.sort()) {
    const s = await stat(join(dataDir, n, 'persistent.dat')).catch(() => undefined);
    if (s?.isFile()) out.push(prosodyDecode(n));
  }
  return out;
}

/** mod_muc's room settings (`_data` of config/ROOM.dat) this server has, by Prosody's name. */
const ROOM_SETTINGS: Record<string, (v: LuaValue, c: Partial<RoomConfig>) => boolean> = {
  name: (v, c) => typeof v === 'string' && ((c.name = v), true),
  description: (v, c) => typeof v === 'string' && ((c.description = v), true),
  persistent: (v) => typeof v === 'boolean',
  hidden: (v, c) => typeof v === 'boolean' && ((c.public = !v), true),
  members_only: (v, c) => typeof v === 'boolean' && ((c.membersOnly = v), true),
  moderated: (v, c) => typeof v === 'boolean' && ((c.moderated = v), true),
  password: (v, c) => typeof v === 'string' && ((c.password = v), true),
  whois: (v, c) => (v === 'anyone' || v === 'moderators') && ((c.whois = v), true),
  history_length: (v, c) =>
    typeof v === 'number' && Number.isInteger(v) && v >= 0 && ((c.historyLength = v), true),
  changesubject: (v, c) => typeof v === 'boolean' && ((c.changeSubject = v), true),
  allow_member_invites: (v, c) => typeof v === 'boolean' && ((c.allowInvites = v), true),
  allow_pm: (v, c) => {
    const pm = v === 'everyone' ? 'anyone' : v;
    if (pm !== 'anyone' && pm !== 'participants' && pm !== 'moderators' && pm !== 'none') return false;
    c.allowPm = pm;
    return true;
  },
  logging: (v, c) => typeof v === 'boolean' && ((c.enableLogging = v), true),
  archiving: (v, c) => typeof v === 'boolean' && ((c.archive = v), true),
  language: (v, c) => typeof v === 'string' && ((c.lang = v), true),
  // Read elsewhere, or Prosody's own bookkeeping:
  subject: () => true,
  subject_from: () => true,
  subject_time: () => true,
  occupant_id_salt: () => true,
  locked: () => true,
};

const ROOM_AFFILIATIONS = new Set(['owner', 'admin', 'member', 'outcast']);

/** One room: `config/ROOM.dat` (settings in `_data`, affiliations as `[jid] = affiliation`). */
async function readRoom(base: string, service: string, jid: string): Promise<MigratedRoom | undefined> {
  const node = jid.slice(0, jid.lastIndexOf('@'));
  const notes: string[] = [];
  const room: MigratedRoom = {
    service,
    jid,
    config: {},
    subject: '',
    subjectFrom: '',
    affiliations: [],
    archive: archivedStanzas(join(base, 'muc_log', `${prosodyEncode(node)}.list`), 'jabber:client', notes),
    notImported: notes,
  };
  const text = await readSmall(join(base, 'config', `${prosodyEncode(node)}.dat`));
  if (text === undefined) {
    notes.push('no config/ file: only its archive');
    return room;
  }
  const t = parseLuaDat(text);
  if (!(t instanceof LuaTable)) throw new ProsodyDataError(`config of ${jid} is not a table`);
  const data = t.table('_data');
  for (const [k, v] of data?.entries ?? []) {
    if (typeof k !== 'string') continue;
    const apply = ROOM_SETTINGS[k];
    if (!apply || !apply(v, room.config))
      notes.push(`setting ${k} = ${typeof v === 'object' ? 'a table' : String(v)}`);
  }
  room.subject = data?.str('subject') ?? '';
  room.subjectFrom = data?.str('subject_from') ?? '';
  for (const [k, v] of t.entries) {
    if (typeof k !== 'string' || k.startsWith('_')) continue;
    if (typeof v === 'string' && ROOM_AFFILIATIONS.has(v)) {
      try {
        room.affiliations.push({
          jid: parseJid(k).toBareString(),
          affiliation: v as MigratedRoom['affiliations'][number]['affiliation'],
        });
        continue;
      } catch {
        // reported below
      }
    }
    notes.push(`affiliation ${String(v)} of "${k}"`);
  }
  const reserved = [...(t.table('_affiliation_data')?.entries ?? [])].filter(
    ([, d]) => d instanceof LuaTable && d.str('reserved_nickname') !== undefined,
  ).length;
  if (reserved > 0) notes.push(`${reserved} reserved nicknames (members join with the nickname they choose)`);
  return room;
}

/**
 * The persistent rooms of MUC service `service` (`persistent.dat`), in name order, each with its
 * settings, affiliations, subject and archive (`muc_log`, read as it is written).
 */
export async function readProsodyRooms(
  dataDir: string,
  service: string,
  onRoom: (room: MigratedRoom) => Promise<void>,
  onError: (jid: string, err: Error) => void,
): Promise<void> {
  const base = join(dataDir, prosodyEncode(service));
  let list: LuaValue | undefined;
  try {
    const text = await readSmall(join(base, 'persistent.dat'));
    list = text === undefined ? undefined : parseLuaDat(text);
  } catch (err) {
    onError(`${service}/persistent.dat`, err as Error);
    return;
  }
  const jids = [...(list instanceof LuaTable ? list.entries : [])]
    .flatMap(([jid, yes]) => (typeof jid === 'string' && yes !== false ? [jid] : []))
    .sort();
  for (const jid of jids) {
    let room: MigratedRoom | undefined;
    try {
      room = await readRoom(base, service, jid);
    } catch (err) {
      onError(jid, err as Error);
      continue;
    }
    if (room) await onRoom(room);
  }
}
