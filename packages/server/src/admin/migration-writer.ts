// What `natter import` writes: one account and its data, whatever format it was read from
// (XEP-0227 files, a Prosody data directory), through each feature's own store.
import { randomUUID } from 'node:crypto';
import type { Database } from '../storage/database.js';
import {
  AccountExistsError,
  AccountStore,
  accountMigrations,
  type ImportedKeys,
} from '../accounts/account-store.js';
import { RosterStore, rosterMigrations } from '../modules/roster/roster-store.js';
import type { RosterItem, Subscription } from '../modules/roster/api.js';
import { VcardStore, vcardMigrations } from '../modules/vcard/vcard-store.js';
import { photoHash } from '../modules/vcard/xep-0153-avatar.js';
import { PrivateStore, privateMigrations } from '../modules/private/private-store.js';
import { OfflineStore, offlineMigrations } from '../modules/offline/offline-store.js';
import { PubsubStore, pubsubMigrations, type Affiliation } from '../modules/pubsub/pubsub-store.js';
import type { NodeConfig } from '../modules/pubsub/node-config.js';
import { pepNodeDefaults } from '../modules/pep/api.js';
import { mamMigrations } from '../modules/mam/migrations.js';
import {
  deleteArchive,
  importArchive,
  type ImportedArchiveMessage,
} from '../modules/mam/archive-transfer.js';
import { RoomStore, migrations as mucMigrations } from '../modules/muc/storage.js';
import type { RoomConfig } from '../modules/muc/room-config.js';
import { parseJid, tryParseJid, type Jid } from '@natter/jid';
import { Element } from '@natter/xml';

/** One account as read from another server's data, in Natter's terms. */
export interface MigratedUser {
  host: string;
  username: string;
  /** Keys as they were (Prosody internal_hashed, XEP-0227 scram-credentials) or a password. */
  credentials?: { keys: ImportedKeys } | { password: string };
  roster: RosterItem[];
  /** Inbound subscription requests: the contact's bare JID and the presence stanza. */
  pending: { contact: string; stanza: Element }[];
  vcard?: Element;
  /** Private XML fragments (XEP-0049), each the root element of one namespace. */
  private: Element[];
  /** Offline messages, oldest first, with when they were stored (epoch ms) when known. */
  offline: { stanza: Element; storedAt?: number }[];
  /** PEP nodes (XEP-0163): configuration, items and affiliations. */
  pep: MigratedPepNode[];
  /** The message archive (XEP-0313), oldest first; read as it is written when it is large. */
  archive: Iterable<ArchivedStanza> | AsyncIterable<ArchivedStanza>;
  /** What was found and is not imported (said in the report). */
  notImported: string[];
}

/** An archived message: when it was archived (ms since the epoch), and the stanza. */
export interface ArchivedStanza {
  at: number;
  stanza: Element;
}

/** A persistent group chat room (XEP-0045) as read from another server's data. */
export interface MigratedRoom {
  /** The MUC service (`conference.example.org`) and the room's bare JID. */
  service: string;
  jid: string;
  /** The settings read; the rest are the service's defaults. */
  config: Partial<RoomConfig>;
  subject: string;
  /** The occupant JID that set the subject. */
  subjectFrom: string;
  affiliations: { jid: string; affiliation: 'owner' | 'admin' | 'member' | 'outcast'; reason?: string }[];
  /** The room's archive (XEP-0313), oldest first. */
  archive: AsyncIterable<ArchivedStanza>;
  notImported: string[];
}

/** One PEP node of an account, as read from another server's data. */
export interface MigratedPepNode {
  node: string;
  /** The settings read; the rest are PEP's defaults. */
  config: Partial<NodeConfig>;
  /** Oldest first. */
  items: { id: string; payload: Element | undefined; publisher?: string }[];
  /** Affiliations other than the account's own (owner). */
  affiliations: { jid: string; affiliation: Affiliation }[];
  /** Bare or full JIDs subscribed explicitly (contacts get notifications through presence anyway). */
  subscribers: string[];
}

export function emptyUser(host: string, username: string): MigratedUser {
  return {
    host,
    username,
    roster: [],
    pending: [],
    private: [],
    offline: [],
    pep: [],
    archive: [],
    notImported: [],
  };
}

const AFFILIATIONS = new Set<Affiliation>([
  'owner',
  'publisher',
  'publish-only',
  'member',
  'none',
  'outcast',
]);
export const isPubsubAffiliation = (a: string | undefined): a is Affiliation =>
  a !== undefined && AFFILIATIONS.has(a as Affiliation);

const NS_SID = 'urn:xmpp:sid:0';
const NS_OCCUPANT_ID = 'urn:xmpp:occupant-id:0';
const NS_MUC_USER = 'http://jabber.org/protocol/muc#user';

/**
 * A room's archived message as this server keeps it: the other server's stanza and occupant ids
 * (which name its archive and its occupants, not this server's) and the real JID it added for
 * non-anonymous rooms (shown here by the room's current setting) removed.
 */
function roomStanza(el: Element): Element {
  const drop = (c: Element) =>
    (c.name === 'stanza-id' && c.xmlns === NS_SID) ||
    (c.name === 'occupant-id' && c.xmlns === NS_OCCUPANT_ID) ||
    (c.name === 'x' && c.xmlns === NS_MUC_USER);
  const attrs = { ...el.attrs };
  delete attrs.to;
  return new Element(
    el.name,
    el.xmlns,
    attrs,
    el.children.filter((c) => typeof c === 'string' || !drop(c)),
  );
}

/**
 * An archived message of `owner` as the archive stores it: the other party and the direction
 * from the addresses, the other server's stanza ids (which name its archive, not this one)
 * removed. Undefined when the addresses do not say who the other party is.
 */
export function archivedMessage(owner: Jid, m: ArchivedStanza): ImportedArchiveMessage | undefined {
  const from = tryParseJid(m.stanza.attrs.from ?? '') ?? undefined;
  const to = tryParseJid(m.stanza.attrs.to ?? '') ?? undefined;
  const outgoing = from !== undefined && from.bare.equals(owner);
  const other = outgoing ? to : from;
  if (!other || (!outgoing && to !== undefined && !to.bare.equals(owner))) return undefined;
  if (!Number.isFinite(m.at)) return undefined;
  const stanza = new Element(
    m.stanza.name,
    m.stanza.xmlns,
    { ...m.stanza.attrs },
    m.stanza.children.filter((c) => typeof c === 'string' || !(c.name === 'stanza-id' && c.xmlns === NS_SID)),
  );
  return {
    at: m.at,
    stanza: stanza.toString(),
    withBare: other.toBareString(),
    withFull: other.toString(),
    direction: outgoing ? 'out' : 'in',
  };
}

export type WriteOutcome =
  | { kind: 'imported'; keys: 'both' | 'sha1-only' | 'sha256-only'; archived: number }
  | { kind: 'exists' }
  | { kind: 'failed'; reason: string };

export interface ImportSummary {
  hosts: Set<string>;
  users: number;
  imported: number;
  existed: number;
  failed: number;
  /** Accounts imported with one hash's keys only (see docs/decisions/0015). */
  sha1Only: number;
  sha256Only: number;
  rosterItems: number;
  vcards: number;
  privateFragments: number;
  offlineMessages: number;
  pepNodes: number;
  pepItems: number;
  archivedMessages: number;
  rooms: number;
  roomsExisted: number;
  roomMessages: number;
  /** Archived messages dated in the future (stored at the import's time instead). */
  archiveFuture: number;
  /** Archived messages older than the archive's retention (`modules.mam.retentionDays`). */
  archiveExpired: number;
  /** Lines for the operator: accounts skipped, data not imported. */
  notes: string[];
}

export function emptySummary(): ImportSummary {
  return {
    hosts: new Set(),
    users: 0,
    imported: 0,
    existed: 0,
    failed: 0,
    sha1Only: 0,
    sha256Only: 0,
    rosterItems: 0,
    vcards: 0,
    privateFragments: 0,
    offlineMessages: 0,
    pepNodes: 0,
    pepItems: 0,
    archivedMessages: 0,
    rooms: 0,
    roomsExisted: 0,
    roomMessages: 0,
    archiveFuture: 0,
    archiveExpired: 0,
    notes: [],
  };
}

/** Notes kept in a summary; beyond, only counted. */
const MAX_NOTES = 200;

function note(summary: ImportSummary, line: string): void {
  if (summary.notes.length < MAX_NOTES) summary.notes.push(line);
  else if (summary.notes.length === MAX_NOTES) summary.notes.push('… (further notes left out)');
}

const SUBSCRIPTIONS = new Set<Subscription>(['none', 'to', 'from', 'both']);

/** A roster item as read, checked: undefined (with a note) when it cannot be imported. */
export function rosterItem(
  attrs: { jid?: string; subscription?: string; ask?: string; name?: string; approved?: string },
  groups: string[],
  notes: string[],
): RosterItem | undefined {
  let contact: string;
  try {
    contact = parseJid(attrs.jid ?? '').toString();
  } catch {
    notes.push(`roster item with an invalid JID "${attrs.jid ?? ''}"`);
    return undefined;
  }
  const sub = (attrs.subscription ?? 'none') as Subscription;
  if (!SUBSCRIPTIONS.has(sub)) {
    if (attrs.subscription !== 'remove')
      notes.push(`roster item ${contact}: subscription "${sub}" read as none`);
    if (attrs.subscription === 'remove') return undefined;
  }
  return {
    jid: contact,
    subscription: SUBSCRIPTIONS.has(sub) ? sub : 'none',
    ...(attrs.ask === 'subscribe' ? { ask: 'subscribe' as const } : {}),
    ...(attrs.approved === 'true' ? { approved: true } : {}),
    ...(attrs.name !== undefined && attrs.name !== '' ? { name: attrs.name } : {}),
    groups: [...new Set(groups.filter((g) => g !== ''))],
  };
}

export interface WriterOptions {
  replace: boolean;
  dryRun: boolean;
  /** PEP's limits: items a node keeps by default (pep `defaultMaxItems`) and at most (pubsub `maxItemsPerNode`). */
  pep: { defaultMaxItems: number; maxItemsPerNode: number };
  /** The muc module's discussion history length (`historyMax`). */
  muc: { historyMax: number };
  /** The mam module's retention (`retentionDays`, 0: none). */
  mam: { retentionDays: number };
}

/** Writes migrated accounts into Natter's storage, one at a time. */
export class MigrationWriter {
  readonly accounts: AccountStore;
  private readonly roster: RosterStore;
  private readonly vcards: VcardStore;
  private readonly privateStore: PrivateStore;
  private readonly offline: OfflineStore;
  private readonly pubsub: PubsubStore;
  private readonly rooms: RoomStore;
  private readonly db: Database;

  private constructor(
    db: Database,
    iterations: number,
    private readonly opts: WriterOptions,
  ) {
    this.db = db;
    this.pubsub = new PubsubStore(db.db);
    this.rooms = new RoomStore(db.db);
    this.accounts = new AccountStore(db.db, { iterations });
    this.roster = new RosterStore(db.db, { maxItems: Number.MAX_SAFE_INTEGER, versionLog: 0, cacheSize: 0 });
    this.vcards = new VcardStore(db.db);
    this.privateStore = new PrivateStore(db.db);
    this.offline = new OfflineStore(db.db);
  }

  /** Runs the stores' migrations (as `natter serve` does) and returns a writer. */
  static async open(db: Database, iterations: number, opts: WriterOptions): Promise<MigrationWriter> {
    await db.migrate('accounts', accountMigrations);
    await db.migrate('roster', rosterMigrations);
    await db.migrate('vcard', vcardMigrations);
    await db.migrate('private', privateMigrations);
    await db.migrate('offline', offlineMigrations);
    await db.migrate('pubsub', pubsubMigrations);
    await db.migrate('mam', mamMigrations);
    await db.migrate('muc', mucMigrations);
    return new MigrationWriter(db, iterations, opts);
  }

  /** Imports one account with its data (nothing in a dry run), counted in `summary`. */
  async write(user: MigratedUser, summary: ImportSummary): Promise<WriteOutcome> {
    summary.users++;
    summary.hosts.add(user.host);
    const who = `${user.username}@${user.host}`;
    const outcome = await this.writeOne(user, summary);
    // After the write: reading a large archive while writing it adds its own notes.
    for (const n of user.notImported) note(summary, `${who}: not imported: ${n}`);
    switch (outcome.kind) {
      case 'imported':
        summary.imported++;
        if (outcome.keys === 'sha1-only') summary.sha1Only++;
        if (outcome.keys === 'sha256-only') summary.sha256Only++;
        summary.rosterItems += user.roster.length;
        if (user.vcard) summary.vcards++;
        summary.privateFragments += user.private.length;
        summary.offlineMessages += user.offline.length;
        summary.pepNodes += user.pep.length;
        for (const n of user.pep) summary.pepItems += n.items.length;
        summary.archivedMessages += outcome.archived;
        break;
      case 'exists':
        summary.existed++;
        note(summary, `${who}: skipped, the account exists (--replace overwrites it)`);
        break;
      case 'failed':
        summary.failed++;
        note(summary, `${who}: not imported: ${outcome.reason}`);
        break;
    }
    return outcome;
  }

  private async writeOne(user: MigratedUser, summary: ImportSummary): Promise<WriteOutcome> {
    const creds = user.credentials;
    if (!creds) return { kind: 'failed', reason: 'no password and no SCRAM keys' };
    const keys: WriteOutcome & { kind: 'imported' } = {
      kind: 'imported',
      archived: 0,
      keys:
        'password' in creds
          ? 'both'
          : creds.keys['SHA-1'] && creds.keys['SHA-256']
            ? 'both'
            : creds.keys['SHA-1']
              ? 'sha1-only'
              : 'sha256-only',
    };
    let account: Jid;
    try {
      account = AccountStore.account(user.username, user.host);
    } catch {
      return { kind: 'failed', reason: `"${user.username}" is not a valid username` };
    }
    const owner = account.toBareString();
    let unreadable = 0;
    const source = user.archive;
    const time = (at: number) => this.archiveTime(at, summary);
    const archive = (async function* () {
      for await (const m of source) {
        const a = archivedMessage(account, m);
        if (a) yield { ...a, at: time(a.at) };
        else unreadable++;
      }
    })();
    const noteUnreadable = () => {
      if (unreadable > 0)
        user.notImported.push(`${unreadable} archived messages without a sender or recipient of their own`);
    };
    if (this.opts.dryRun) {
      const exists = await this.accounts.exists(account.local, account.domain);
      if (exists && !this.opts.replace) return { kind: 'exists' };
      for await (const _ of archive) keys.archived++;
      noteUnreadable();
      return keys;
    }
    try {
      await this.accounts.importAccount(user.username, user.host, creds, { replace: this.opts.replace });
    } catch (err) {
      if (err instanceof AccountExistsError) return { kind: 'exists' };
      return { kind: 'failed', reason: (err as Error).message };
    }
    try {
      keys.archived = await this.writeData(user, owner, archive);
      noteUnreadable();
    } catch (err) {
      // The account without its data would be skipped as existing by the next run: a new account
      // is taken back, so that importing again brings it whole (a replaced one is kept: rerun
      // with --replace).
      if (!this.opts.replace) await this.takeBack(user, owner);
      return {
        kind: 'failed',
        reason: `its data could not be written (${(err as Error).message}); ${this.opts.replace ? 'the account was replaced: import it again with --replace' : 'the account was not kept: import it again'}`,
      };
    }
    return keys;
  }

  /**
   * Removes a new account whose data could not all be written, with what was written of it, so
   * that importing again brings it whole and nobody registering the name inherits any of it.
   */
  private async takeBack(user: MigratedUser, owner: string): Promise<void> {
    const steps: (() => Promise<unknown>)[] = [
      () => deleteArchive(this.db.db, owner),
      () => this.pubsub.deleteOwner(owner),
      () => this.offline.removeAll(owner),
      () => this.privateStore.removeOwner(owner),
      () => this.vcards.remove(owner),
      () => this.roster.deleteUser(owner),
      () => this.accounts.remove(user.username, user.host),
    ];
    for (const step of steps) await step().catch(() => undefined);
  }

  /** Roster, vCard, private XML, offline messages, PEP and archive of an account just written. */
  private async writeData(
    user: MigratedUser,
    owner: string,
    archive: AsyncIterable<ImportedArchiveMessage>,
  ): Promise<number> {
    if (user.roster.length > 0 || user.pending.length > 0)
      await this.roster.import(owner, user.roster, user.pending);
    if (user.vcard) {
      let hash = '';
      try {
        hash = photoHash(user.vcard);
      } catch {
        // a PHOTO that is not base64: kept as it is, announced without a hash
      }
      await this.vcards.set(owner, user.vcard.toString(), hash);
    }
    if (user.private.length > 0) {
      const byNs = new Map<string, string>();
      for (const f of user.private) byNs.set(f.xmlns, (byNs.get(f.xmlns) ?? '') + f.toString());
      await this.privateStore.put(
        owner,
        [...byNs].map(([namespace, xml]) => ({ namespace, xml })),
      );
    }
    // Replacing: the file's messages instead of those stored, so that importing twice does not
    // deliver them twice.
    if (this.opts.replace && user.offline.length > 0) await this.offline.removeAll(owner);
    for (const m of user.offline)
      await this.offline.add(owner, m.stanza.toString(), m.storedAt ?? Date.now());
    for (const n of user.pep) await this.writePepNode(owner, n);
    return importArchive(this.db.db, owner, archive, { replace: this.opts.replace });
  }

  /**
   * An archived message's time as it will be stored: one in the future (a wrong clock on the
   * other server, or a crafted file) is stored at the import's time; one older than the
   * retention is counted (the running server deletes it at its next purge).
   */
  private archiveTime(at: number, summary: ImportSummary): number {
    const now = Date.now();
    if (at > now + 60_000) {
      summary.archiveFuture++;
      return now;
    }
    const days = this.opts.mam.retentionDays;
    if (days > 0 && at < now - days * 86_400_000) summary.archiveExpired++;
    return at;
  }

  /**
   * A persistent room with its settings, affiliations, subject and archive; the last messages of
   * the archive become its discussion history (what joining occupants are sent). An existing
   * room is left as it is unless `--replace`. The running server loads imported rooms at its
   * next start.
   */
  async writeRoom(room: MigratedRoom, summary: ImportSummary): Promise<void> {
    const roomJid = tryParseJid(room.jid) ?? undefined;
    if (!roomJid || roomJid.local === '' || roomJid.resource !== '') {
      note(summary, `room "${room.jid}": not imported: not a room JID`);
      return;
    }
    const jid = roomJid.toBareString();
    // A room of another service (a crafted list naming an account) would replace that archive.
    if (roomJid.domain !== room.service) {
      note(summary, `room "${room.jid}": not imported: not a room of ${room.service}`);
      return;
    }
    if (!this.opts.replace && (await this.rooms.exists(jid))) {
      summary.roomsExisted++;
      note(summary, `room ${jid}: skipped, it exists (--replace overwrites it)`);
      return;
    }
    const historyMax = this.opts.muc.historyMax;
    const config = { ...room.config, persistent: true };
    if (config.historyLength !== undefined) config.historyLength = Math.min(config.historyLength, historyMax);
    const keep = config.historyLength ?? historyMax;
    // The last messages with a body become the discussion history, each with the stanza-id the
    // archive gives it (as the room's own history has: retraction and moderation find it by it).
    const history: { at: number; stanza: Element; message?: ImportedArchiveMessage }[] = [];
    const kept = new Set<ImportedArchiveMessage>();
    let unreadable = 0;
    const source = room.archive;
    const time = (at: number) => this.archiveTime(at, summary);
    const messages = (async function* () {
      for await (const m of source) {
        const from = tryParseJid(m.stanza.attrs.from ?? '') ?? undefined;
        if (!from || !from.bare.equals(roomJid.bare) || !Number.isFinite(m.at)) {
          unreadable++;
          continue;
        }
        const el = roomStanza(m.stanza);
        const message: ImportedArchiveMessage = {
          at: time(m.at),
          stanza: el.toString(),
          withBare: jid,
          withFull: from.toString(),
          direction: 'in',
        };
        if (keep > 0 && m.stanza.getChild('body') !== undefined) {
          history.push({ at: message.at, stanza: el, message });
          kept.add(message);
          if (history.length > keep) kept.delete(history.shift()!.message!);
        }
        yield message;
      }
    })();
    let archived = 0;
    if (this.opts.dryRun) for await (const _ of messages) archived++;
    else {
      const ids = new Map<ImportedArchiveMessage, string>();
      archived = await importArchive(this.db.db, jid, messages, {
        replace: true,
        assigned: (m, id) => {
          if (kept.has(m)) ids.set(m, id);
        },
      });
      for (const h of history) {
        const id = h.message && ids.get(h.message);
        if (id) h.stanza.children.push(new Element('stanza-id', NS_SID, { by: jid, id }));
      }
      await this.rooms.importRoom(room.service, {
        jid,
        config,
        subject: room.subject,
        subjectFrom: room.subjectFrom,
        createdAt: Date.now(),
        affiliations: room.affiliations,
        history: history.map((h) => ({ at: h.at, stanza: h.stanza.toString() })),
      });
    }
    if (unreadable > 0) room.notImported.push(`${unreadable} archived messages not from the room`);
    for (const n of room.notImported) note(summary, `room ${jid}: not imported: ${n}`);
    summary.rooms++;
    summary.roomMessages += archived;
  }

  /** A PEP node as the pep module keeps it; a node of that name already stored is replaced. */
  private async writePepNode(owner: string, n: MigratedPepNode): Promise<void> {
    const { defaultMaxItems, maxItemsPerNode } = this.opts.pep;
    const config = { ...pepNodeDefaults(Math.min(defaultMaxItems, maxItemsPerNode)), ...n.config };
    config.max_items = Math.min(config.max_items, maxItemsPerNode);
    await this.pubsub.deleteNode(owner, n.node);
    await this.pubsub.createNode(owner, n.node, config, owner);
    for (const item of n.items)
      await this.pubsub.putItem(
        owner,
        n.node,
        { id: item.id, publisher: item.publisher ?? owner, payload: item.payload?.toString() ?? '' },
        Math.max(1, config.max_items),
      );
    for (const a of n.affiliations)
      if (a.jid !== owner) await this.pubsub.setAffiliation(owner, n.node, a.jid, a.affiliation);
    for (const jid of n.subscribers)
      await this.pubsub.putSubscription(owner, {
        node: n.node,
        jid,
        subid: randomUUID(),
        state: 'subscribed',
        options: {},
      });
  }
}

/** The summary as lines for the operator. */
export function formatSummary(s: ImportSummary, dryRun: boolean, offerScramSha256: boolean): string[] {
  const lines = [
    `${dryRun ? 'would import' : 'imported'} ${s.imported} of ${s.users} accounts on ${[...s.hosts].join(', ') || 'no host'}` +
      ` (${s.existed} existed, ${s.failed} failed): ${s.rosterItems} roster items, ${s.vcards} vCards, ` +
      `${s.privateFragments} private XML fragments, ${s.offlineMessages} offline messages, ` +
      `${s.pepNodes} PEP nodes with ${s.pepItems} items, ${s.archivedMessages} archived messages`,
  ];
  if (s.archiveFuture > 0)
    lines.push(
      `${s.archiveFuture} archived messages were dated in the future (the other server's clock?): they are stored at the time of the import`,
    );
  if (s.archiveExpired > 0)
    lines.push(
      `${s.archiveExpired} archived messages are older than modules.mam.retentionDays: the server deletes them at its next purge (within minutes of its start); raise retentionDays (0: keep forever) before starting it to keep them`,
    );
  if (s.rooms > 0 || s.roomsExisted > 0)
    lines.push(
      `${dryRun ? 'would import' : 'imported'} ${s.rooms} rooms (${s.roomsExisted} existed) with ${s.roomMessages} archived messages` +
        (dryRun ? '' : '; a running server loads them at its next start'),
    );
  if (s.sha1Only > 0)
    lines.push(
      `${s.sha1Only} accounts have SCRAM-SHA-1 keys only: they log in with SCRAM-SHA-1 and PLAIN; ` +
        'a client that picks SCRAM-SHA-256 fails for them until a PLAIN login or a password change adds its keys' +
        (offerScramSha256
          ? '. Consider "auth": { "offerScramSha256": false } until they have (docs/migration.md)'
          : ' (SCRAM-SHA-256 is not offered: auth.offerScramSha256 is false)'),
    );
  if (s.sha256Only > 0)
    lines.push(
      `${s.sha256Only} accounts have SCRAM-SHA-256 keys only: they log in with SCRAM-SHA-256 and PLAIN; ` +
        'SCRAM-SHA-1 fails for them until a PLAIN login or a password change' +
        (offerScramSha256 ? '' : ' (warning: auth.offerScramSha256 is false, so they need PLAIN)'),
    );
  return [...lines, ...s.notes];
}
