/**
 * Prosody (Debian's package) as a benchmark target: own Lua config, data folder and ports in a
 * temporary directory; accounts and rosters written directly as `internal_hashed` data files
 * (prosodyctl register costs ~0.3 s per account).
 */
import { mkdirSync, writeFileSync, appendFileSync, readdirSync, readFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import {
  AdapterError,
  aptInstall,
  execFileP,
  freePorts,
  makeCert,
  parallel,
  spawnServer,
  stopSpawned,
  waitForPort,
  which,
  type Spawned,
  localTarget,
} from './common.js';
import { deriveCredentials } from '../xmpp/scram.js';
import { BenchDatabase, PG_CPU_NOTE, postgresAt, rowsStats } from './postgres.js';
import type {
  AdapterOptions,
  ArchiveMode,
  ArchiveStats,
  BenchUsers,
  Rosters,
  ServerAdapter,
  ServerTarget,
} from './types.js';

/** Prosody's datamanager file-name encoding: every non-alphanumeric byte becomes %xx. */
function encodePart(s: string): string {
  return s.replace(/[^a-zA-Z0-9]/g, (c) => '%' + c.charCodeAt(0).toString(16).padStart(2, '0'));
}

async function hasPackage(name: string): Promise<boolean> {
  try {
    const { stdout } = await execFileP('dpkg-query', ['-W', '-f', '${Status}', name]);
    return stdout.includes('install ok installed');
  } catch {
    return false;
  }
}

function luaString(s: string): string {
  return JSON.stringify(s); // ASCII-only here: JSON string syntax is valid Lua
}

export class ProsodyAdapter implements ServerAdapter {
  readonly name = 'prosody' as const;
  private o!: AdapterOptions;
  private port = 0;
  private tlsPort = 0;
  private httpPort = 0;
  private proc: Spawned | null = null;
  private db: BenchDatabase | null = null;

  async ensureInstalled(): Promise<void> {
    if (!which('prosody')) {
      await aptInstall(['prosody', 'lua-event']);
      if (!which('prosody'))
        throw new AdapterError('not-installed', 'prosody is still missing after apt-get install');
    }
    if (this.archive === 'pg' && !(await hasPackage('lua-dbi-postgresql'))) {
      await aptInstall(['lua-dbi-postgresql']);
      if (!(await hasPackage('lua-dbi-postgresql')))
        throw new AdapterError('not-installed', 'lua-dbi-postgresql is still missing after apt-get install');
    }
  }

  async version(): Promise<string> {
    try {
      const { stdout } = await execFileP('dpkg-query', ['-W', '-f', '${Version}', 'prosody']);
      return `Prosody ${stdout.trim()}`;
    } catch {
      return 'Prosody (version unknown)';
    }
  }

  constructor(
    private readonly gc: 'incremental' | 'generational' = 'incremental',
    /** `default` (flood scenario only): mod_limits loaded with Debian's packaged setting. */
    private readonly limits: 'disabled' | 'default' = 'disabled',
    /** `--archive`: mod_mam with internal (file) storage (`default`) or mod_storage_sql on PostgreSQL (`pg`). */
    private readonly archive: ArchiveMode = 'off',
  ) {}

  private archiveTuning(): string[] {
    if (this.archive === 'off') return [];
    const common =
      'mod_mam loaded with default_archive_policy = true (every one-to-one chat message archived for sender and recipient, no per-user preferences needed) and archive_expires_after = "never" (no expiry job; the default, 1 week, expires nothing within a run)';
    return this.archive === 'default'
      ? [
          `archive ON (--archive default): ${common}; archive store: the default storage, "internal" (one append-only .list file per user under the data folder)`,
        ]
      : [
          `archive ON (--archive pg): ${common}; storage = { archive = "sql" } with sql = { driver = "PostgreSQL" } (LuaDBI, lua-dbi-postgresql) on a fresh database on ${postgresAt()}, created for the run and dropped after it; tables created by mod_storage_sql at start (prosodyarchive); accounts, rosters and everything else stay "internal" (files)`,
          PG_CPU_NOTE,
        ];
  }

  tuning(): string[] {
    return [
      this.limits === 'default'
        ? 'mod_limits loaded with Debian\'s packaged setting: limits = { c2s = { rate = "10kb/s" } } (burst 2 s, the module default)'
        : 'mod_limits not loaded (Debian enables it at 10 kB/s per connection)',
      'c2s_require_encryption = false and allow_unencrypted_plain_auth = true (loopback bench only; login scenario uses STARTTLS)',
      `Lua GC mode: ${this.gc} (Prosody 0.12 default is incremental; --prosody-gc generational to change)`,
      `network_backend = epoll, tcp_backlog = 1024, nagle = false (TCP_NODELAY: default Nagle adds a 40 ms delayed-ACK stall per TLS login); s2s, ${this.archive === 'off' ? 'mod_mam, ' : ''}mod_offline, mod_carbons, mod_smacks not loaded`,
      ...this.archiveTuning(),
      'MUC: muc_room_locking = false, room creation unrestricted',
      'log level: warn, to a file',
    ];
  }

  async configure(o: AdapterOptions): Promise<void> {
    this.o = o;
    [this.port, this.tlsPort, this.httpPort] = await freePorts();
    const d = o.dir;
    mkdirSync(join(d, 'data'), { recursive: true });
    const certs = join(d, 'certs');
    const { cert, key } = await makeCert(certs, o.domain);
    const asRoot = process.getuid?.() === 0;
    if (this.archive === 'pg') this.db = await BenchDatabase.create('prosody');
    const archiveOn = this.archive !== 'off';
    const sql = this.db?.params;
    const cfg = `-- Generated by @natter/bench for a loopback benchmark. Not for production.
${asRoot ? 'run_as_root = true' : ''}
daemonize = false
pidfile = ${luaString(join(d, 'prosody.pid'))}
data_path = ${luaString(join(d, 'data'))}
certificates = ${luaString(certs)}
log = { { levels = { min = "warn" }, to = "file", filename = ${luaString(join(d, 'prosody.log'))} } }
network_backend = "epoll"
network_settings = { tcp_backlog = 1024, nagle = false }
gc = { mode = ${luaString(this.gc)} }
c2s_ports = { ${this.port} }
c2s_interfaces = { "127.0.0.1" }
c2s_direct_tls_ports = { ${this.tlsPort} }
c2s_direct_tls_interfaces = { "127.0.0.1" }
s2s_ports = { }
http_ports = { ${this.httpPort} }
http_interfaces = { "127.0.0.1" }
https_ports = { }
c2s_require_encryption = false
allow_unencrypted_plain_auth = true
authentication = "internal_hashed"
default_iteration_count = 4096
${
  this.db && sql
    ? `storage = { archive = "sql" }
sql = { driver = "PostgreSQL", database = ${luaString(this.db.name)}, username = ${luaString(sql.user)}, password = ${luaString(sql.password)}, host = ${luaString(sql.host)}, port = ${sql.port} }`
    : 'storage = "internal"'
}
modules_enabled = { "roster", "saslauth", "tls", "disco", "ping"${this.limits === 'default' ? ', "limits"' : ''}${archiveOn ? ', "mam"' : ''} }
${this.limits === 'default' ? 'limits = { c2s = { rate = "10kb/s" } }' : ''}
modules_disabled = { "s2s", ${this.limits === 'default' ? '' : '"limits", '}"offline", "carbons", ${archiveOn ? '' : '"mam", '}"smacks", "admin_shell", "posix" }${archiveOn ? '\ndefault_archive_policy = true\narchive_expires_after = "never"' : ''}
ssl = { certificate = ${luaString(cert)}, key = ${luaString(key)} }

VirtualHost ${luaString(o.domain)}
  ssl = { certificate = ${luaString(cert)}, key = ${luaString(key)} }

Component ${luaString('conference.' + o.domain)} "muc"
  muc_room_locking = false
  restrict_room_creation = false
  max_history_messages = 20
`;
    writeFileSync(join(d, 'prosody.cfg.lua'), cfg);
  }

  async provision(users: BenchUsers, rosters: Rosters | null): Promise<void> {
    const host = encodePart(this.o.domain);
    const acc = join(this.o.dir, 'data', host, 'accounts');
    const ros = join(this.o.dir, 'data', host, 'roster');
    mkdirSync(acc, { recursive: true });
    mkdirSync(ros, { recursive: true });
    const ids = Array.from({ length: users.count }, (_, i) => i + 1);
    const cacheLines: string[] = [];
    await parallel(ids, 8, async (i) => {
      // Prosody uses its salt string's bytes as the PBKDF2 salt.
      const salt = randomBytes(12).toString('hex');
      const c = await deriveCredentials('sha1', users.password, Buffer.from(salt), users.iterations);
      cacheLines.push(c.cacheLine);
      writeFileSync(
        join(acc, `${encodePart(users.prefix + i)}.dat`),
        `return {\n\t["iteration_count"] = ${users.iterations};\n\t["salt"] = ${luaString(salt)};\n\t["stored_key"] = ${luaString(c.storedKey.toString('hex'))};\n\t["server_key"] = ${luaString(c.serverKey.toString('hex'))};\n};\n`,
      );
    });
    appendFileSync(join(this.o.scramCacheDir, 'scram-provision-prosody.jsonl'), cacheLines.join('\n') + '\n');
    if (rosters) {
      for (const [id, contacts] of rosters) {
        const items = contacts.map(
          (c) =>
            `\t[${luaString(`${users.prefix}${c}@${this.o.domain}`)}] = { ["subscription"] = "both"; ["groups"] = {}; };`,
        );
        writeFileSync(
          join(ros, `${encodePart(users.prefix + id)}.dat`),
          `return {\n\t[false] = { ["version"] = 1; ["pending"] = {}; };\n${items.join('\n')}\n};\n`,
        );
      }
    }
  }

  async start(): Promise<ServerTarget> {
    const d = this.o.dir;
    this.proc = spawnServer(['prosody', '--config', join(d, 'prosody.cfg.lua'), '-F'], {
      cwd: d,
      logFile: join(d, 'stdout.log'),
    });
    const proc = this.proc;
    await waitForPort(this.port, 30_000, () => !proc.exited);
    await waitForPort(this.tlsPort, 10_000, () => !proc.exited);
    const target = localTarget(this.name, this.port, this.tlsPort, this.o.domain, proc.child.pid!);
    if (this.db) target.extraCpu = this.db.extraCpu();
    return target;
  }

  async stop(): Promise<void> {
    await stopSpawned(this.proc);
    this.proc = null;
  }

  async archiveStats(): Promise<ArchiveStats> {
    if (this.db)
      return rowsStats(await this.db.countRows(['prosodyarchive']), `PostgreSQL database ${this.db.name}`);
    // Internal storage: one append-only file per archive, one `item({…});` line per message.
    const dir = join(this.o.dir, 'data', encodePart(this.o.domain), 'archive');
    let rows = 0;
    let files = 0;
    try {
      for (const f of readdirSync(dir)) {
        if (!f.endsWith('.list')) continue;
        files++;
        rows += readFileSync(join(dir, f), 'utf8').match(/^item\(/gm)?.length ?? 0;
      }
    } catch {
      return { rows: 0, text: `archived rows: none (no archive folder ${dir})` };
    }
    return { rows, text: `archived rows: ${rows} (items in ${files} internal archive files under ${dir})` };
  }

  async cleanup(): Promise<void> {
    const db = this.db;
    this.db = null;
    await db?.drop();
  }
}
