// XEP-0215 credentials against a real coturn (Debian's `coturn`): the TURN REST API credentials
// the server hands a user really allocate a relay on coturn with `use-auth-secret`, and tampered
// or expired ones are refused. coturn's own client, turnutils_uclient, does the allocating.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { createSocket } from 'node:dgram';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { xml, type Element } from '@natter/xml';
import { startTestServer, type TestServer } from '../../../test/support/test-server.js';
import { TestClient } from '../../../test/support/test-client.js';
import {
  ensureDebianPackages,
  startManaged,
  waitForPort,
  type Managed,
} from '../../../test/interop/third-party.js';
import { builtinModules } from '../index.js';
import { NS_EXTDISCO } from './external-services.js';
import { Secret, turnRestCredentials } from './turn-rest.js';

const PW = 'secret-password';
const HOST = '127.0.0.1';
const others = Object.fromEntries(
  builtinModules
    .filter((m) => m.name !== 'disco' && m.name !== 'external-services')
    .map((m) => [m.name, false as const]),
);

/** A port free for both TCP and UDP on the loopback address (coturn listens on both). */
async function freePort(): Promise<number> {
  for (let i = 0; i < 20; i++) {
    const port = await new Promise<number>((resolve, reject) => {
      const srv = createServer();
      srv.once('error', reject);
      srv.listen(0, HOST, () => {
        const p = (srv.address() as { port: number }).port;
        srv.close(() => resolve(p));
      });
    });
    const udpFree = await new Promise<boolean>((resolve) => {
      const sock = createSocket('udp4');
      sock.once('error', () => resolve(false));
      sock.bind(port, HOST, () => sock.close(() => resolve(true)));
    });
    if (udpFree) return port;
  }
  throw new Error('no port free for both TCP and UDP');
}

interface Coturn {
  port: number;
  secret: string;
  log(): string;
  stop(): Promise<void>;
}

/**
 * coturn on 127.0.0.1:<random port>, TURN REST API auth (`use-auth-secret`, a random
 * `static-auth-secret`), realm `localhost`, no TLS/DTLS, no CLI, its log, pid file and SQLite
 * database in a temp folder. Loopback peers are allowed: turnutils_uclient -y relays between two
 * allocations of its own, both on 127.0.0.1.
 */
async function startCoturn(): Promise<Coturn> {
  await ensureDebianPackages('/usr/bin/turnutils_uclient', ['coturn']);
  const dir = await mkdtemp(join(tmpdir(), 'natter-coturn-'));
  const secret = randomBytes(24).toString('base64url');
  const port = await freePort();
  const logFile = join(dir, 'turnserver.log');
  const args = [
    '-n', // no configuration file (not /etc/turnserver.conf)
    `--listening-ip=${HOST}`,
    `--relay-ip=${HOST}`,
    `--listening-port=${port}`,
    '--use-auth-secret',
    `--static-auth-secret=${secret}`,
    '--realm=localhost',
    '--no-tls',
    '--no-dtls',
    '--no-cli',
    '--allow-loopback-peers',
    `--log-file=${logFile}`,
    '--simple-log',
    `--pidfile=${join(dir, 'turnserver.pid')}`,
    `--db=${join(dir, 'turndb')}`,
  ];
  const proc: Managed = startManaged('/usr/bin/turnserver', args, { cwd: dir });
  const log = () => (existsSync(logFile) ? readFileSync(logFile, 'utf8') : '');
  try {
    // Its UDP listeners are up once the "general servers" are; then the TCP listener answers.
    const deadline = Date.now() + 20_000;
    while (!/Total General servers/.test(log())) {
      if (proc.proc.exitCode !== null) throw new Error(`turnserver exited:\n${proc.output()}\n${log()}`);
      if (Date.now() > deadline) throw new Error(`turnserver did not start within 20 s:\n${log()}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    await waitForPort(HOST, port, proc.proc, () => `${proc.output()}\n${log()}`);
  } catch (err) {
    await proc.stop();
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
  return {
    port,
    secret,
    log,
    async stop() {
      await proc.stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

interface Run {
  code: number;
  output: string;
}

/**
 * One short turnutils_uclient run: allocate on coturn with these credentials, relay one message
 * between two allocations of its own (-y) and exit; killed after 30 s.
 */
function allocate(port: number, username: string, password: string): Promise<Run> {
  const args = ['-u', username, '-w', password, '-p', String(port), '-y', '-n', '1', '-m', '1', HOST];
  return new Promise((resolve) => {
    execFile('/usr/bin/turnutils_uclient', args, { timeout: 30_000 }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : -1) : 0;
      resolve({ code, output: `${stdout}${stderr}` });
    });
  });
}

/** Messages relayed, from uclient's closing summary ("start_mclient: tot_send_msgs=N, tot_recv_msgs=M"). */
const relayed = (run: Run) =>
  Number(/start_mclient: tot_send_msgs=\d+, tot_recv_msgs=(\d+)/.exec(run.output)?.[1] ?? 0);

describe('XEP-0215 credentials on a real coturn (TURN REST API, use-auth-secret)', () => {
  let coturn: Coturn;
  let server: TestServer;
  let romeo: TestClient;
  before(async () => {
    coturn = await startCoturn();
    server = await startTestServer({
      modules: {
        ...others,
        'external-services': {
          services: [
            { type: 'stun', host: HOST, port: coturn.port, transport: 'udp' },
            {
              type: 'turn',
              host: HOST,
              port: coturn.port,
              transport: 'udp',
              secret: coturn.secret,
              ttlSeconds: 600,
            },
          ],
        },
      },
    });
    await server.addUser('romeo', PW);
    romeo = await TestClient.login(server, 'romeo', PW, { resource: 'r' });
  });
  after(async () => {
    await romeo?.close();
    await server?.destroy();
    await coturn?.stop();
  });

  const turnService = (res: Element, name: string) => {
    assert.equal(res.attrs.type, 'result', res.toString());
    const s = res
      .getChild(name, NS_EXTDISCO)
      ?.getChildren('service', NS_EXTDISCO)
      .find((e) => e.attrs.type === 'turn');
    assert.ok(s?.attrs.username && s.attrs.password, res.toString());
    return { username: s.attrs.username, password: s.attrs.password, port: Number(s.attrs.port) };
  };

  test('XEP-0215 §3.1: credentials from the service list allocate a relay on coturn', async () => {
    const res = await romeo.iq(
      xml('iq', { type: 'get', to: 'localhost' }, xml('services', { xmlns: NS_EXTDISCO, type: 'turn' })),
    );
    const creds = turnService(res, 'services');
    assert.match(creds.username, /^\d+:romeo@localhost$/);
    assert.equal(creds.port, coturn.port);
    const run = await allocate(creds.port, creds.username, creds.password);
    assert.equal(run.code, 0, run.output);
    assert.ok(relayed(run) > 0, run.output);
  });

  test('XEP-0215 §3.3: credentials from a credentials request allocate a relay on coturn', async () => {
    const res = await romeo.iq(
      xml(
        'iq',
        { type: 'get', to: 'localhost' },
        xml('credentials', { xmlns: NS_EXTDISCO }, xml('service', { type: 'turn', host: HOST })),
      ),
    );
    const creds = turnService(res, 'credentials');
    const run = await allocate(coturn.port, creds.username, creds.password);
    assert.equal(run.code, 0, run.output);
    assert.ok(relayed(run) > 0, run.output);
  });

  test('coturn refuses a tampered password and credentials whose expiry has passed', async () => {
    const res = await romeo.iq(
      xml('iq', { type: 'get', to: 'localhost' }, xml('services', { xmlns: NS_EXTDISCO, type: 'turn' })),
    );
    const creds = turnService(res, 'services');
    const flipped = (creds.password[0] === 'A' ? 'B' : 'A') + creds.password.slice(1);
    const tampered = await allocate(coturn.port, creds.username, flipped);
    assert.notEqual(tampered.code, 0, tampered.output);
    assert.equal(relayed(tampered), 0, tampered.output);

    // Signed with the right secret, by the module's own function, but expired a minute ago.
    const expired = turnRestCredentials(new Secret(coturn.secret), 'romeo@localhost', -60);
    const late = await allocate(coturn.port, expired.username, expired.password);
    assert.notEqual(late.code, 0, late.output);
    assert.equal(relayed(late), 0, late.output);

    // The same function with a live expiry is accepted: the refusals above are about the
    // password and the expiry, nothing else.
    const fresh = turnRestCredentials(new Secret(coturn.secret), 'romeo@localhost', 60);
    const ok = await allocate(coturn.port, fresh.username, fresh.password);
    assert.equal(ok.code, 0, ok.output);
    assert.ok(relayed(ok) > 0, ok.output);
    // coturn logged the refusals as authentication failures for those usernames.
    assert.match(coturn.log(), new RegExp(`check_stun_auth.*${expired.username.replace(/[.]/g, '\\.')}`));
  });
});
