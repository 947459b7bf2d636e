// Reads a Prosody data directory (storage = "internal", Prosody 0.11/0.12): one folder per host,
// its name escaped (every byte that is not a letter or digit as %xx: example%2ecom), one folder per
// store, one file per user (accounts/USER.dat, roster/USER.dat, vcard/USER.dat, private/USER.dat,
// offline/USER.list). Values are Lua literals (lua-data.ts). Nothing is written there.
import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { Element } from '@natter/xml';
import { parseJid } from '@natter/jid';
import type { ScramCredentials, ScramHash } from '@natter/protocol';
import type { ImportedKeys } from '../accounts/account-store.js';
import { LuaTable, parseLuaDat, parseLuaList, type LuaValue } from './lua-data.js';
import { emptyUser, rosterItem, type MigratedUser } from './migration-writer.js';

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
const READ_STORES = new Set(['accounts', 'roster', 'vcard', 'private', 'offline']);
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

  for (const store of stores) {
    if (READ_STORES.has(store) || QUIET_STORES.has(store)) continue;
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
