// `natter import xep227|prosody` and `natter export xep227`: moving accounts and their data
// between Natter and other servers (docs/migration.md). Runs on the storage directly; the server
// may run meanwhile (what it caches of an imported account is re-read at its next login).
import { parseArgs } from 'node:util';
import { join, resolve } from 'node:path';
import type { Config } from '../config.js';
import { Database } from '../storage/database.js';
import { AccountStore, accountMigrations } from '../accounts/account-store.js';
import { RosterStore, rosterMigrations } from '../modules/roster/roster-store.js';
import { VcardStore, vcardMigrations } from '../modules/vcard/vcard-store.js';
import { PrivateStore, privateMigrations } from '../modules/private/private-store.js';
import { OfflineStore, offlineMigrations } from '../modules/offline/offline-store.js';
import { PubsubStore, pubsubMigrations } from '../modules/pubsub/pubsub-store.js';
import { mamMigrations } from '../modules/mam/migrations.js';
import { exportArchive } from '../modules/mam/archive-transfer.js';
import { parseElement, xml, type Element } from '@natter/xml';
import { progress as terminalProgress, type Progress } from './progress.js';
import {
  emptySummary,
  formatSummary,
  MigrationWriter,
  type ImportSummary,
  type MigratedUser,
} from './migration-writer.js';
import { pepElements, readXep227, Xep227Writer, type ExportedUser } from './xep-0227.js';
import { prosodyHosts, prosodyRoomServices, readProsodyHost, readProsodyRooms } from './prosody-data.js';

export const MIGRATE_USAGE = `  natter import xep227 FILE [--host H] [--dry-run] [--replace] [--max-user-mib 64]
                                               import accounts with their SCRAM keys (or passwords, turned
                                               into keys), rosters, vCards, private XML, offline messages,
                                               PEP nodes and message archives from a XEP-0227 file
                                               (ejabberdctl export_piefxis, Prosody's mod_storage_xep0227,
                                               natter export); existing accounts are skipped unless --replace;
                                               one account's element (its archive included) is read whole:
                                               at most --max-user-mib MiB
  natter import prosody DATA_DIR [--host H] [--dry-run] [--replace]
                                               the same from a Prosody data directory (storage "internal"),
                                               with the persistent rooms of this server's MUC services;
                                               internal_hashed passwords keep working
  natter export xep227 FILE [--host H]         write every account of the hosts (or H) to a XEP-0227 file`;

function openDatabase(config: Config): Database {
  return Database.open(
    config.storage.engine === 'sqlite'
      ? { engine: 'sqlite', path: config.storage.path ?? join(resolve(config.dataDir), 'natter.sqlite') }
      : config.storage,
    (err) => console.error(`natter: storage connection failed: ${err.message}`),
  );
}

/** The MUC service of each host this server runs one for: host → service domain. */
function mucServices(config: Config): Map<string, string> {
  const muc = config.modules.muc;
  if (muc === false) return new Map();
  const domain = muc !== undefined && typeof muc.domain === 'string' ? muc.domain : undefined;
  return new Map(config.hosts.map((h) => [h, domain ?? `conference.${h}`]));
}

/** A number option of a module, as configured (at least `min`), else its default. */
function moduleNumber(config: Config, module: string, option: string, fallback: number, min = 1): number {
  const m = config.modules[module];
  const v = m === false || m === undefined ? undefined : m[option];
  return typeof v === 'number' && Number.isFinite(v) && v >= min ? v : fallback;
}

/** The pep and pubsub modules' item limits (their defaults: 1 and 256). */
function pepLimits(config: Config): { defaultMaxItems: number; maxItemsPerNode: number } {
  return {
    defaultMaxItems: moduleNumber(config, 'pep', 'defaultMaxItems', 1),
    maxItemsPerNode: moduleNumber(config, 'pubsub', 'maxItemsPerNode', 256),
  };
}

export interface MigrateIo {
  out: (line: string) => void;
  progress: Progress;
}

/** Imports users from `read` into the storage of `config`, printing the summary. */
async function runImport(
  config: Config,
  opts: { dryRun: boolean; replace: boolean; host?: string },
  io: MigrateIo,
  read: (
    onUser: (u: MigratedUser) => Promise<void>,
    summary: ImportSummary,
    writer: MigrationWriter,
  ) => Promise<void>,
): Promise<ImportSummary> {
  const db = openDatabase(config);
  const summary = emptySummary();
  try {
    const writer = await MigrationWriter.open(db, config.auth.iterations, {
      ...opts,
      pep: pepLimits(config),
      muc: { historyMax: moduleNumber(config, 'muc', 'historyMax', 20, 0) },
      mam: { retentionDays: moduleNumber(config, 'mam', 'retentionDays', 365, 0) },
    });
    const hosted = new Set(config.hosts);
    const notHosted = new Map<string, number>();
    await read(
      async (u) => {
        if (!hosted.has(u.host)) {
          notHosted.set(u.host, (notHosted.get(u.host) ?? 0) + 1);
          return;
        }
        await writer.write(u, summary);
      },
      summary,
      writer,
    );
    io.progress.end();
    for (const [h, n] of notHosted)
      summary.notes.unshift(
        `${n} accounts of ${h} skipped: ${h} is not a host of this server (add it to "hosts")`,
      );
    for (const line of formatSummary(summary, opts.dryRun, config.auth.offerScramSha256)) io.out(line);
    return summary;
  } finally {
    io.progress.end();
    await db.close();
  }
}

/** Reads one account for `natter export`. */
async function exportedUser(
  stores: {
    accounts: AccountStore;
    roster: RosterStore;
    vcards: VcardStore;
    privateStore: PrivateStore;
    offline: OfflineStore;
    pubsub: PubsubStore;
    db: Database;
  },
  username: string,
  host: string,
): Promise<ExportedUser | undefined> {
  const keys = await stores.accounts.exportKeys(username, host);
  if (!keys) return undefined;
  const owner = `${username}@${host}`;
  const roster = await stores.roster.load(owner);
  const items = [...roster.items.values()].map((i) =>
    xml(
      'item',
      {
        jid: i.jid,
        name: i.name,
        subscription: i.subscription,
        ask: i.ask,
        ...(i.approved ? { approved: 'true' } : {}),
      },
      i.groups.map((g) => xml('group', null, g)),
    ),
  );
  const vcard = await stores.vcards.get(owner);
  const fragments: Element[] = [];
  for (const ns of (await stores.privateStore.usage(owner)).keys()) {
    const text = await stores.privateStore.get(owner, ns);
    if (text !== undefined)
      fragments.push(...parseElement(`<stored xmlns='jabber:iq:private'>${text}</stored>`).elements());
  }
  const offline = (await stores.offline.list(owner)).flatMap((m) => {
    try {
      return [{ stanza: parseElement(m.stanza), storedAt: m.storedAt }];
    } catch {
      return [];
    }
  });
  const nodes = [];
  for (const n of await stores.pubsub.listNodes(owner)) {
    const subscribers = (await stores.pubsub.subscriptions(owner, n.node))
      .filter((sub) => sub.state === 'subscribed')
      .map((sub) => sub.jid);
    nodes.push({
      node: n.node,
      config: n.config,
      items: (await stores.pubsub.items(owner, n.node)).reverse(),
      affiliations: (await stores.pubsub.affiliations(owner, n.node)).filter((a) => a.jid !== owner),
      subscribers,
    });
  }
  return {
    username,
    keys,
    pep: pepElements(nodes),
    archive: exportArchive(stores.db.db, owner),
    roster: items.length > 0 ? xml('query', { xmlns: 'jabber:iq:roster' }, items) : undefined,
    pending: [...roster.pending.values()].map((p) => {
      const s = p.clone();
      s.xmlns = 'jabber:client';
      s.inheritsNs = false;
      return s;
    }),
    vcard: vcard ? parseElement(vcard.vcard) : undefined,
    private: fragments,
    offline,
  };
}

async function runExport(
  config: Config,
  file: string,
  host: string | undefined,
  io: MigrateIo,
): Promise<void> {
  const hosts = host !== undefined ? [host] : config.hosts;
  if (host !== undefined && !config.hosts.includes(host))
    throw new Error(`${host} is not a host of this server`);
  const db = openDatabase(config);
  const out = new Xep227Writer(file);
  try {
    for (const [name, m] of Object.entries({
      accounts: accountMigrations,
      roster: rosterMigrations,
      vcard: vcardMigrations,
      private: privateMigrations,
      offline: offlineMigrations,
      pubsub: pubsubMigrations,
      mam: mamMigrations,
    }))
      await db.migrate(name, m);
    const stores = {
      accounts: new AccountStore(db.db, { iterations: config.auth.iterations }),
      roster: new RosterStore(db.db, { maxItems: Number.MAX_SAFE_INTEGER, versionLog: 0, cacheSize: 0 }),
      vcards: new VcardStore(db.db),
      privateStore: new PrivateStore(db.db),
      offline: new OfflineStore(db.db),
      pubsub: new PubsubStore(db.db),
      db,
    };
    await out.start();
    let users = 0;
    let archived = 0;
    for (const h of hosts) {
      await out.host(h);
      const names = await stores.accounts.list(h);
      for (const [i, name] of names.entries()) {
        io.progress.update(`exporting ${h}`, i, names.length);
        const u = await exportedUser(stores, name, h);
        if (u) {
          archived += await out.user(u, h);
          users++;
        }
      }
    }
    await out.end();
    io.progress.end();
    io.out(
      `exported ${users} accounts of ${hosts.join(', ')} with ${archived} archived messages to ${file} (SCRAM keys, no passwords; readable by its owner only)`,
    );
  } catch (err) {
    out.destroy();
    throw err;
  } finally {
    io.progress.end();
    await db.close();
  }
}

/**
 * `natter import …` / `natter export …` (argv from the command word on). Returns the exit code:
 * 0 when every account was imported or existed, 1 when some failed.
 */
export async function migrateCommand(
  argv: string[],
  loadConfig: (path: string | undefined) => Config,
  io: MigrateIo = { out: (l) => console.log(l), progress: terminalProgress() },
): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      config: { type: 'string', short: 'c' },
      host: { type: 'string' },
      'dry-run': { type: 'boolean' },
      replace: { type: 'boolean' },
      'max-user-mib': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  const [command, format, path] = positionals;
  if (values.help || !format || !path) {
    io.out(`Usage:\n${MIGRATE_USAGE}`);
    return values.help ? 0 : 2;
  }
  const maxUserMib = Number(values['max-user-mib'] ?? 64);
  if (!Number.isInteger(maxUserMib) || maxUserMib < 1 || maxUserMib > 4096)
    throw new Error('--max-user-mib: a whole number of MiB from 1 to 4096');
  const config = loadConfig(values.config);
  const host = values.host?.toLowerCase();
  const opts = {
    dryRun: values['dry-run'] === true,
    replace: values.replace === true,
    ...(host ? { host } : {}),
  };
  if (command === 'export') {
    if (format !== 'xep227') throw new Error(`unknown export format "${format}" (xep227)`);
    await runExport(config, path, host, io);
    return 0;
  }
  if (command !== 'import') throw new Error(`unknown command "${command ?? ''}"`);
  let summary: ImportSummary;
  if (format === 'xep227') {
    summary = await runImport(config, opts, io, async (onUser, s) => {
      const { skippedHosts } = await readXep227(path, onUser, {
        ...(host ? { host } : {}),
        maxUserChars: maxUserMib * 1024 * 1024,
        progress: (read, total) => io.progress.update(`importing ${path}`, read, total),
      });
      for (const [h, n] of skippedHosts) s.notes.push(`${n} accounts of ${h} skipped (--host ${host ?? ''})`);
    });
  } else if (format === 'prosody') {
    summary = await runImport(config, opts, io, async (onUser, summary, writer) => {
      const found = await prosodyHosts(path);
      if (found.length === 0)
        throw new Error(`${path} has no host folder with accounts (is it Prosody's data_path?)`);
      const hosts = host ? found.filter((h) => h === host) : found;
      if (host && hosts.length === 0)
        throw new Error(`${path} has no data for ${host} (found: ${found.join(', ')})`);
      for (const h of hosts)
        await readProsodyHost(path, h, onUser, (done, total) =>
          io.progress.update(`importing ${h}`, done, total),
        );
      // Rooms of the MUC services this server runs (for --host H, H's).
      const ours = mucServices(config);
      const wanted = new Set(host ? [ours.get(host)].filter((d) => d !== undefined) : ours.values());
      for (const service of await prosodyRoomServices(path)) {
        if (!wanted.has(service)) {
          if (!host)
            summary.notes.push(
              `rooms of ${service} skipped: not a group chat service of this server (${[...ours.values()].join(', ') || 'the muc module is off'})`,
            );
          continue;
        }
        io.progress.update(`importing rooms of ${service}`, 0, 1);
        await readProsodyRooms(
          path,
          service,
          async (room) => {
            // One room that cannot be written is reported; the others go on.
            try {
              await writer.writeRoom(room, summary);
            } catch (err) {
              summary.notes.push(`room ${room.jid}: not imported: ${(err as Error).message}`);
            }
          },
          (jid, err) => summary.notes.push(`room ${jid}: not imported: ${err.message}`),
        );
      }
    });
  } else throw new Error(`unknown import format "${format}" (xep227, prosody)`);
  return summary.failed > 0 ? 1 : 0;
}
