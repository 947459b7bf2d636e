/**
 * ejabberd (Debian's package) as a benchmark target: own YAML config, spool, logs and Erlang node
 * name in a temporary directory, started in the foreground as the `ejabberd` user through setpriv
 * (not su: su applies PAM limits and drops the open-files limit to 1024). Accounts and rosters are
 * created through mod_http_api on loopback.
 */
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
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

/**
 * The PostgreSQL schema Debian ships. ejabberd 23.01 defaults to the old schema (`new_sql_schema:
 * false`, tables without a server_host column), which is pg.sql; the config says so explicitly.
 */
const PG_SCHEMA = '/usr/share/ejabberd/sql/pg.sql';

/** Whether Debian's PostgreSQL driver for ejabberd (erlang-p1-pgsql) is installed. */
function hasPgsqlDriver(): boolean {
  try {
    return readdirSync('/usr/lib/erlang/lib').some((d) => d.startsWith('p1_pgsql-'));
  } catch {
    return false;
  }
}

export class EjabberdAdapter implements ServerAdapter {
  readonly name = 'ejabberd' as const;
  private o!: AdapterOptions;
  private port = 0;
  private tlsPort = 0;
  private httpPort = 0;
  private node = '';
  private proc: Spawned | null = null;
  private db: BenchDatabase | null = null;

  constructor(
    /** `default` (flood scenario only): Debian's packaged c2s shaper (`normal`) and mod_fail2ban. */
    private readonly limits: 'disabled' | 'default' = 'disabled',
    /** `--archive`: mod_mam in Mnesia (`default`) or in PostgreSQL (`pg`). */
    private readonly archive: ArchiveMode = 'off',
  ) {}

  async ensureInstalled(): Promise<void> {
    if (!which('ejabberdctl')) {
      await aptInstall(['ejabberd']);
      if (!which('ejabberdctl'))
        throw new AdapterError('not-installed', 'ejabberdctl is still missing after apt-get install');
    }
    if (this.archive === 'pg') {
      if (!hasPgsqlDriver()) await aptInstall(['erlang-p1-pgsql']);
      if (!hasPgsqlDriver())
        throw new AdapterError('not-installed', 'erlang-p1-pgsql is still missing after apt-get install');
      if (!existsSync(PG_SCHEMA))
        throw new AdapterError('not-installed', `ejabberd's PostgreSQL schema ${PG_SCHEMA} is missing`);
    }
  }

  async version(): Promise<string> {
    try {
      const { stdout } = await execFileP('dpkg-query', ['-W', '-f', '${Version}', 'ejabberd']);
      return `ejabberd ${stdout.trim()}`;
    } catch {
      return 'ejabberd (version unknown)';
    }
  }

  tuning(): string[] {
    return [
      ...(this.limits === 'default'
        ? [
            "Debian's packaged limits: c2s listeners `shaper: c2s_shaper`, shaper normal = 3000 B/s burst 20000, shaper_rules c2s_shaper: normal for all; mod_fail2ban loaded (defaults); MUC shapers none",
          ]
        : [
            'shapers off: c2s listener `shaper: none`, no shaper_rules; MUC room/user shapers none, min_message_interval 0',
            'mod_fail2ban not loaded',
          ]),
      'listener backlog: 1024 (default 5 drops SYNs under a connection burst)',
      'Erlang VM: +sbwt none +sbwtdcpu none +sbwtdio none (no scheduler busy-wait, so /proc CPU is work, not spinning)',
      'auth_password_format: scram (SCRAM-SHA-1, 4096 iterations); accounts and rosters provisioned by import_piefxis (XEP-0227) through mod_http_api on loopback',
      ...this.archiveTuning(),
      `${this.archive === 'off' ? 'mod_mam, ' : ''}mod_offline, mod_carbons, mod_stream_mgmt, mod_caps not loaded; loglevel warning`,
      'started with setpriv as user ejabberd, open-files limit raised to the hard limit',
    ];
  }

  private archiveTuning(): string[] {
    switch (this.archive) {
      case 'off':
        return [];
      case 'default':
        return [
          'archive ON (--archive default): mod_mam with `default: always` (every one-to-one chat message archived for sender and recipient, no per-user preferences needed), db_type the default_db: Mnesia (table archive_msg, disc_only_copies in the spool); other mod_mam options default (assume_mam_usage false, request_activates_archiving false, compress_xml false)',
        ];
      case 'pg':
        return [
          `archive ON (--archive pg): mod_mam with \`default: always\` and \`db_type: sql\` (every one-to-one chat message archived for sender and recipient) in a fresh PostgreSQL database on ${postgresAt()}, created for the run and dropped after it; schema ${PG_SCHEMA} (\`new_sql_schema: false\`, 23.01's default); driver erlang-p1-pgsql; sql_pool_size default (10); accounts, rosters and everything else stay in Mnesia (default_db: mnesia)`,
          PG_CPU_NOTE,
        ];
    }
  }

  private sqlConfig(): string {
    if (!this.db) return '';
    const p = this.db.params;
    return `new_sql_schema: false
sql_type: pgsql
sql_server: "${p.host}"
sql_port: ${p.port}
sql_database: "${this.db.name}"
sql_username: "${p.user}"
sql_password: ${JSON.stringify(p.password)}
`;
  }

  private mamConfig(): string {
    if (this.archive === 'off') return '';
    return `  mod_mam:
    default: always
${this.archive === 'pg' ? '    db_type: sql\n' : ''}`;
  }

  async configure(o: AdapterOptions): Promise<void> {
    this.o = o;
    [this.port, this.tlsPort, this.httpPort] = await freePorts();
    this.node = `natterbench${this.port}@localhost`;
    const d = o.dir;
    for (const sub of ['spool', 'logs', 'home']) mkdirSync(join(d, sub), { recursive: true });
    const { pem } = await makeCert(join(d, 'certs'), o.domain);
    if (this.archive === 'pg') {
      this.db = await BenchDatabase.create('ejabberd');
      await this.db.exec(readFileSync(PG_SCHEMA, 'utf8'));
    }
    const yml = `# Generated by @natter/bench for a loopback benchmark. Not for production.
hosts:
  - "${o.domain}"
loglevel: warning
log_rotate_count: 0
certfiles:
  - "${pem}"
auth_method: internal
auth_password_format: scram
${this.sqlConfig()}acl:
  loopback:
    ip:
      - 127.0.0.0/8
access_rules:
  c2s:
    allow: all
  local:
    allow: all
api_permissions:
  "bench provisioning":
    from:
      - mod_http_api
    who:
      ip: 127.0.0.0/8
    what: "*"
listen:
  - port: ${this.port}
    ip: "127.0.0.1"
    module: ejabberd_c2s
    starttls: true
    shaper: ${this.limits === 'default' ? 'c2s_shaper' : 'none'}
    access: c2s
    backlog: 1024
    max_stanza_size: 262144
  - port: ${this.tlsPort}
    ip: "127.0.0.1"
    module: ejabberd_c2s
    tls: true
    shaper: ${this.limits === 'default' ? 'c2s_shaper' : 'none'}
    access: c2s
    backlog: 1024
    max_stanza_size: 262144
  - port: ${this.httpPort}
    ip: "127.0.0.1"
    module: ejabberd_http
    backlog: 1024
    request_handlers:
      /api: mod_http_api
${
  this.limits === 'default'
    ? `shaper:
  normal:
    rate: 3000
    burst_size: 20000
shaper_rules:
  c2s_shaper: normal
`
    : ''
}modules:
${this.limits === 'default' ? '  mod_fail2ban: {}\n' : ''}  mod_roster:
    versioning: false
  mod_disco: {}
  mod_ping: {}
  mod_admin_extra: {}
${this.mamConfig()}  mod_muc:
    host: "conference.${o.domain}"
    access: all
    access_create: all
    access_persistent: all
    access_admin: none
    max_users: 5000
    max_user_conferences: 100000
    min_message_interval: 0
    min_presence_interval: 0
    room_shaper: none
    user_message_shaper: none
    user_presence_shaper: none
    history_size: 20
`;
    writeFileSync(join(d, 'ejabberd.yml'), yml);
    writeFileSync(
      join(d, 'ejabberdctl.cfg'),
      `POLL=true\nERL_MAX_PORTS=65536\nERL_PROCESSES=1000000\nINET_DIST_INTERFACE=127.0.0.1\nERL_OPTIONS="+sbwt none +sbwtdcpu none +sbwtdio none"\n`,
    );
    // The whole folder belongs to the ejabberd user, which the VM runs as.
    await execFileP('chown', ['-R', 'ejabberd:ejabberd', d]);
    chmodSync(d, 0o755);
  }

  private api(command: string, body: Record<string, unknown>, timeoutMs = 30_000): Promise<unknown> {
    return fetch(`http://127.0.0.1:${this.httpPort}/api/${command}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
      signal: AbortSignal.timeout(timeoutMs),
    }).then(async (r) => {
      const text = await r.text();
      if (!r.ok)
        throw new AdapterError('api', `ejabberd api ${command}: HTTP ${r.status} ${text.slice(0, 200)}`);
      return text;
    });
  }

  async provision(users: BenchUsers, rosters: Rosters | null): Promise<void> {
    const wasRunning = this.proc !== null;
    if (!wasRunning) await this.start();
    try {
      // XEP-0227 (PIEFXIS) files with every account and roster, imported by ejabberd itself (several
      // in parallel): much faster than one mod_http_api call per account and per roster item.
      const chunks = 4;
      const per = Math.ceil(users.count / chunks);
      const files: string[] = [];
      for (let c = 0; c < chunks; c++) {
        const from = c * per + 1;
        const to = Math.min(users.count, (c + 1) * per);
        if (from > to) break;
        const parts: string[] = [
          `<?xml version='1.0' encoding='UTF-8'?>\n<server-data xmlns='urn:xmpp:pie:0'>\n<host jid='${this.o.domain}'>\n`,
        ];
        for (let i = from; i <= to; i++) {
          const contacts = rosters?.get(i);
          const roster = contacts
            ? `<query xmlns='jabber:iq:roster'>${contacts.map((x) => `<item jid='${users.prefix}${x}@${this.o.domain}' subscription='both'/>`).join('')}</query>`
            : '';
          parts.push(`<user name='${users.prefix}${i}' password='${users.password}'>${roster}</user>\n`);
        }
        parts.push('</host>\n</server-data>\n');
        const file = join(this.o.dir, `provision-${c}.xml`);
        writeFileSync(file, parts.join(''));
        await execFileP('chown', ['ejabberd:ejabberd', file]);
        files.push(file);
      }
      try {
        await Promise.all(files.map((file) => this.api('import_piefxis', { file }, 900_000)));
      } catch (e) {
        throw new AdapterError('provision', `import_piefxis failed: ${(e as Error).message}`);
      }
      const registered = JSON.parse(
        String(await this.api('registered_users', { host: this.o.domain })),
      ) as string[];
      if (registered.length < users.count) {
        // Fall back to one call per missing account (and its roster items).
        const have = new Set(registered);
        const missing = Array.from({ length: users.count }, (_, i) => i + 1).filter(
          (i) => !have.has(`${users.prefix}${i}`),
        );
        await parallel(missing, 16, async (i) => {
          await this.api('register', {
            user: `${users.prefix}${i}`,
            host: this.o.domain,
            password: users.password,
          });
          for (const c of rosters?.get(i) ?? []) {
            await this.api('add_rosteritem', {
              localuser: `${users.prefix}${i}`,
              localhost: this.o.domain,
              user: `${users.prefix}${c}`,
              host: this.o.domain,
              nick: `${users.prefix}${c}`,
              group: 'bench',
              subs: 'both',
            });
          }
        });
      }
    } finally {
      if (!wasRunning) await this.stop();
    }
  }

  /** Waits until epmd has forgotten our node name (ejabberdctl refuses to start while it is listed). */
  private async waitNodeGone(timeoutMs: number): Promise<void> {
    const short = this.node.split('@')[0]!;
    const until = Date.now() + timeoutMs;
    while (Date.now() < until) {
      try {
        const { stdout } = await execFileP('epmd', ['-names'], { timeout: 5000 });
        if (!stdout.includes(` ${short} `)) return;
      } catch {
        return; // no epmd running: nothing registered
      }
      await new Promise((r) => setTimeout(r, 250));
    }
    throw new AdapterError(
      'node-busy',
      `Erlang node ${this.node} still registered with epmd after ${timeoutMs} ms`,
    );
  }

  async start(): Promise<ServerTarget> {
    const d = this.o.dir;
    await this.waitNodeGone(30_000);
    this.proc = spawnServer(
      [
        'ejabberdctl',
        '--config',
        join(d, 'ejabberd.yml'),
        '--ctl-config',
        join(d, 'ejabberdctl.cfg'),
        '--logs',
        join(d, 'logs'),
        '--spool',
        join(d, 'spool'),
        '--node',
        this.node,
        'foreground',
      ],
      {
        cwd: d,
        env: { ...process.env, HOME: join(d, 'home') },
        logFile: join(d, 'stdout.log'),
        prefix: ['setpriv', '--reuid=ejabberd', '--regid=ejabberd', '--init-groups'],
      },
    );
    const proc = this.proc;
    await waitForPort(this.port, 60_000, () => !proc.exited);
    await waitForPort(this.httpPort, 30_000, () => !proc.exited);
    const target = localTarget(this.name, this.port, this.tlsPort, this.o.domain, proc.child.pid!);
    if (this.db) target.extraCpu = this.db.extraCpu();
    return target;
  }

  async archiveStats(): Promise<ArchiveStats> {
    if (this.db)
      return rowsStats(await this.db.countRows(['archive']), `PostgreSQL database ${this.db.name}`);
    // Mnesia: the size of mod_mam's table, asked from the running node.
    const info = String(await this.api('mnesia_table_info', { table: 'archive_msg' }));
    const m = /"size"\s*[:,]\s*"?(\d+)/.exec(info) ?? /size\D{0,8}(\d+)/.exec(info);
    return m
      ? { rows: Number(m[1]), text: `archived rows: ${m[1]} (Mnesia table archive_msg)` }
      : {
          rows: null,
          text: `archived rows: unknown (mnesia_table_info archive_msg answered ${info.slice(0, 200)})`,
        };
  }

  async cleanup(): Promise<void> {
    const db = this.db;
    this.db = null;
    await db?.drop();
  }

  async stop(): Promise<void> {
    if (!this.proc) return;
    // A clean stop lets Mnesia close its tables, so the next start (same spool) is fast.
    try {
      await execFileP(
        'setpriv',
        [
          '--reuid=ejabberd',
          '--regid=ejabberd',
          '--init-groups',
          'ejabberdctl',
          '--config',
          join(this.o.dir, 'ejabberd.yml'),
          '--ctl-config',
          join(this.o.dir, 'ejabberdctl.cfg'),
          '--logs',
          join(this.o.dir, 'logs'),
          '--spool',
          join(this.o.dir, 'spool'),
          '--node',
          this.node,
          'stop',
        ],
        { env: { ...process.env, HOME: join(this.o.dir, 'home') }, timeout: 30_000 },
      );
    } catch {
      /* fall back to signals */
    }
    await stopSpawned(this.proc, 20_000);
    this.proc = null;
  }
}
