// What `natter import` writes: one account and its data, whatever format it was read from
// (XEP-0227 files, a Prosody data directory), through each feature's own store.
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
import { parseJid, type Jid } from '@natter/jid';
import type { Element } from '@natter/xml';

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
  /** What was found and is not imported (said in the report). */
  notImported: string[];
}

export function emptyUser(host: string, username: string): MigratedUser {
  return { host, username, roster: [], pending: [], private: [], offline: [], notImported: [] };
}

export type WriteOutcome =
  | { kind: 'imported'; keys: 'both' | 'sha1-only' | 'sha256-only' }
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

/** Writes migrated accounts into Natter's storage, one at a time. */
export class MigrationWriter {
  readonly accounts: AccountStore;
  private readonly roster: RosterStore;
  private readonly vcards: VcardStore;
  private readonly privateStore: PrivateStore;
  private readonly offline: OfflineStore;

  private constructor(
    db: Database,
    iterations: number,
    private readonly opts: { replace: boolean; dryRun: boolean },
  ) {
    this.accounts = new AccountStore(db.db, { iterations });
    this.roster = new RosterStore(db.db, { maxItems: Number.MAX_SAFE_INTEGER, versionLog: 0, cacheSize: 0 });
    this.vcards = new VcardStore(db.db);
    this.privateStore = new PrivateStore(db.db);
    this.offline = new OfflineStore(db.db);
  }

  /** Runs the stores' migrations (as `natter serve` does) and returns a writer. */
  static async open(
    db: Database,
    iterations: number,
    opts: { replace: boolean; dryRun: boolean },
  ): Promise<MigrationWriter> {
    await db.migrate('accounts', accountMigrations);
    await db.migrate('roster', rosterMigrations);
    await db.migrate('vcard', vcardMigrations);
    await db.migrate('private', privateMigrations);
    await db.migrate('offline', offlineMigrations);
    return new MigrationWriter(db, iterations, opts);
  }

  /** Imports one account with its data (nothing in a dry run), counted in `summary`. */
  async write(user: MigratedUser, summary: ImportSummary): Promise<WriteOutcome> {
    summary.users++;
    summary.hosts.add(user.host);
    const who = `${user.username}@${user.host}`;
    for (const n of user.notImported) note(summary, `${who}: not imported: ${n}`);
    const outcome = await this.writeOne(user);
    switch (outcome.kind) {
      case 'imported':
        summary.imported++;
        if (outcome.keys === 'sha1-only') summary.sha1Only++;
        if (outcome.keys === 'sha256-only') summary.sha256Only++;
        summary.rosterItems += user.roster.length;
        if (user.vcard) summary.vcards++;
        summary.privateFragments += user.private.length;
        summary.offlineMessages += user.offline.length;
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

  private async writeOne(user: MigratedUser): Promise<WriteOutcome> {
    const creds = user.credentials;
    if (!creds) return { kind: 'failed', reason: 'no password and no SCRAM keys' };
    const keys: WriteOutcome & { kind: 'imported' } = {
      kind: 'imported',
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
    if (this.opts.dryRun) {
      const exists = await this.accounts.exists(account.local, account.domain);
      return exists && !this.opts.replace ? { kind: 'exists' } : keys;
    }
    try {
      await this.accounts.importAccount(user.username, user.host, creds, { replace: this.opts.replace });
    } catch (err) {
      if (err instanceof AccountExistsError) return { kind: 'exists' };
      return { kind: 'failed', reason: (err as Error).message };
    }
    try {
      await this.writeData(user, owner);
    } catch (err) {
      // The account without its data would be skipped as existing by the next run: a new account
      // is taken back, so that importing again brings it whole (a replaced one is kept: rerun
      // with --replace).
      if (!this.opts.replace) await this.accounts.remove(user.username, user.host).catch(() => false);
      return {
        kind: 'failed',
        reason: `its data could not be written (${(err as Error).message}); ${this.opts.replace ? 'the account was replaced: import it again with --replace' : 'the account was not kept: import it again'}`,
      };
    }
    return keys;
  }

  /** Roster, vCard, private XML and offline messages of an account just written. */
  private async writeData(user: MigratedUser, owner: string): Promise<void> {
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
  }
}

/** The summary as lines for the operator. */
export function formatSummary(s: ImportSummary, dryRun: boolean, offerScramSha256: boolean): string[] {
  const lines = [
    `${dryRun ? 'would import' : 'imported'} ${s.imported} of ${s.users} accounts on ${[...s.hosts].join(', ') || 'no host'}` +
      ` (${s.existed} existed, ${s.failed} failed): ${s.rosterItems} roster items, ${s.vcards} vCards, ` +
      `${s.privateFragments} private XML fragments, ${s.offlineMessages} offline messages`,
  ];
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
