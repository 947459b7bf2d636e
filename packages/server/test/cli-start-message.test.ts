// `natter serve` as a user sees it: the start message (what runs, where to connect, what to do
// next), and the log output it chooses — JSON lines on a pipe, pretty lines at a terminal (a real
// pseudo-terminal from util-linux `script`), JSON lines in `log.file` with stdout keeping only the
// start message — also with `--workers`.
import { test, describe, after } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import WebSocket from 'ws';
import { CliProcess } from './support/cli-process.js';

const dirs: string[] = [];
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** A configuration file in a fresh directory: loopback listeners on ephemeral ports. */
function configure(extra: Record<string, unknown> = {}): { dir: string; file: string } {
  const dir = mkdtempSync(join(tmpdir(), 'natter-start-'));
  dirs.push(dir);
  const file = join(dir, 'natter.json');
  writeFileSync(
    file,
    JSON.stringify({
      hosts: ['localhost'],
      dataDir: join(dir, 'data'),
      listeners: [
        { type: 'c2s', port: 0, host: '127.0.0.1' },
        { type: 'c2s-tls', port: 0, host: '127.0.0.1' },
        { type: 'http', port: 0, host: '127.0.0.1' },
        { type: 'admin', port: 0, host: '127.0.0.1' },
        { type: 's2s', port: 0, host: '127.0.0.1' },
      ],
      modules: { ping: { idleMs: 0 } },
      log: { level: 'info' },
      ...extra,
    }),
  );
  return { dir, file };
}

/** What a terminal shows, without colours, carriage returns and the echo of Ctrl-C. */
const plain = (s: string) =>
  s
    // eslint-disable-next-line no-control-regex -- removing the terminal's colour codes is the point
    .replace(/\x1b\[[0-9;]*m/g, '')
    .replace(/\r/g, '')
    .replace(/\^C/g, '');

/** The value of a `  Label: value` line of the start message. */
function field(message: string, label: string): string {
  const m = new RegExp(`^  ${label.replace(/[()]/g, '\\$&')}:\\s+(.*)$`, 'm').exec(message);
  assert.ok(m, `no "${label}" line in:\n${message}`);
  return m[1]!;
}

/** Parses every line as JSON (fails naming the first that is not). */
function jsonLines(text: string): Record<string, unknown>[] {
  return text
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => {
      try {
        return JSON.parse(l) as Record<string, unknown>;
      } catch {
        assert.fail(`not a JSON line: ${l}`);
      }
    });
}

/** Bound ports by listener type, from the `listeners` field ("c2s:5222") of "natter started". */
function ports(started: Record<string, unknown>): Record<string, number> {
  return Object.fromEntries(
    (started.listeners as string[]).map((l) => [l.slice(0, l.lastIndexOf(':')), Number(l.split(':').pop())]),
  );
}

/** Opens an XMPP stream to host:port and resolves with what the server answers up to its features. */
function streamFeatures(address: string): Promise<string> {
  const [host, port] = [address.slice(0, address.lastIndexOf(':')), Number(address.split(':').pop())];
  return new Promise((resolve, reject) => {
    const s = connect(port, host, () =>
      s.write(
        "<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='localhost' version='1.0'>",
      ),
    );
    let got = '';
    s.on('data', (d: Buffer) => {
      got += d.toString();
      if (got.includes('</stream:features>')) {
        s.destroy();
        resolve(got);
      }
    });
    s.on('error', reject);
  });
}

const ADD_USER = (config: string) => `npm run natter -- user add USER@localhost --config ${config}`;

describe('natter serve: start message and logs', () => {
  test('stdout a pipe: every line is JSON; "natter started" carries the addresses, services and next step', async () => {
    const { file } = configure();
    const natter = new CliProcess(['serve', '--config', file]);
    await natter.waitFor((out) => out.includes('"natter started"'), 'the start line');
    assert.equal(await natter.stop(), 0, natter.transcript());
    const lines = jsonLines(natter.stdout);
    assert.ok(!natter.stdout.includes('is running'), 'no plain start message on a pipe');
    const started = lines.find((l) => l.msg === 'natter started')!;
    const p = ports(started);
    assert.deepEqual(started.clients, [
      { kind: 'c2s', address: `127.0.0.1:${p.c2s}` },
      { kind: 'c2s-tls', address: `127.0.0.1:${p['c2s-tls']}` },
      { kind: 'websocket', address: `ws://127.0.0.1:${p.http}/xmpp-websocket` },
      { kind: 'bosh', address: `http://127.0.0.1:${p.http}/http-bind` },
    ]);
    assert.deepEqual(started.s2s, { enabled: true, ports: [`s2s:${p.s2s}`] });
    assert.deepEqual((started.services as Record<string, string[]>).muc, ['conference.localhost']);
    assert.deepEqual((started.services as Record<string, string[]>).pubsub, ['pubsub.localhost']);
    assert.deepEqual(started.admin, {
      url: `http://127.0.0.1:${p.admin}`,
      metrics: `http://127.0.0.1:${p.admin}/metrics`,
      token: false,
    });
    assert.equal(started.version, '0.1.0');
    assert.equal(started.addUser, ADD_USER(file));
    assert.ok(lines.some((l) => l.msg === 'natter stopped'));
  });

  test('log.file: JSON lines appended to a new file (mode 0640 under umask 077); stdout shows only the start message, whose addresses answer', async () => {
    const logDir = mkdtempSync(join(tmpdir(), 'natter-start-logs-'));
    dirs.push(logDir);
    const logFile = join(logDir, 'deep', 'er', 'natter.log');
    const { dir, file } = configure({ log: { level: 'info', file: logFile } });
    const natter = new CliProcess(['serve', '--config', file], { shell: 'umask 077; exec $NATTER' });
    await natter.waitFor((out) => out.includes('user add USER@localhost'), 'the start message');
    const message = natter.stdout;
    assert.match(message, /^Natter 0\.1\.0 is running\.\n/);
    assert.equal(field(message, 'Domains'), 'localhost');
    assert.equal(field(message, 'Logs'), `${logFile} (JSON lines)`);
    assert.equal(field(message, 'Rooms (MUC)'), 'conference.localhost');
    assert.equal(field(message, 'Pubsub'), 'pubsub.localhost');
    assert.match(field(message, 'Certificate'), /^self-signed, generated .*set tls\.cert and tls\.key/);
    assert.equal(field(message, 'Storage'), `SQLite, ${join(dir, 'data', 'natter.sqlite')}`);
    assert.match(message, /\nNext: add a user.*\n {2}(.*)\n$/);
    assert.equal(/\nNext: .*\n {2}(.*)\n$/.exec(message)![1], ADD_USER(file));

    // What it lists answers: STARTTLS and direct TLS, WebSocket, the admin API's metrics.
    const clients = /^(\S+) \(STARTTLS\), (\S+) \(direct TLS\)$/.exec(field(message, 'Clients'));
    assert.ok(clients, field(message, 'Clients'));
    assert.match(await streamFeatures(clients[1]!), /urn:ietf:params:xml:ns:xmpp-tls/);
    const ws = new WebSocket(field(message, 'WebSocket'), 'xmpp');
    await new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject));
    assert.equal(ws.protocol, 'xmpp');
    ws.close();
    const admin = /^(http:\/\/\S+) \(metrics: (\S+)\)$/.exec(field(message, 'Admin API'));
    assert.ok(admin, field(message, 'Admin API'));
    const metrics = await fetch(admin[2]!);
    assert.equal(metrics.status, 200);
    assert.match(await metrics.text(), /^natter_sessions/m);
    const federation = /^on, port (\d+)$/.exec(field(message, 'Federation'));
    assert.ok(federation, field(message, 'Federation'));

    assert.equal(await natter.stop(), 0, natter.transcript());
    assert.equal(natter.stdout, message, 'stdout carries the start message only');
    assert.equal(statSync(logFile).mode & 0o777, 0o640);
    const lines = jsonLines(readFileSync(logFile, 'utf8'));
    const started = lines.find((l) => l.msg === 'natter started')!;
    const p = ports(started);
    assert.equal(clients[1], `127.0.0.1:${p.c2s}`);
    assert.equal(clients[2], `127.0.0.1:${p['c2s-tls']}`);
    assert.equal(field(message, 'WebSocket'), `ws://127.0.0.1:${p.http}/xmpp-websocket`);
    assert.equal(field(message, 'BOSH'), `http://127.0.0.1:${p.http}/http-bind`);
    assert.equal(admin[1], `http://127.0.0.1:${p.admin}`);
    assert.equal(Number(federation[1]), p.s2s);
    assert.equal(lines.at(-1)!.msg, 'natter stopped');
  });

  test('an existing log file is appended to and keeps its mode', async () => {
    const logDir = mkdtempSync(join(tmpdir(), 'natter-start-logs-'));
    dirs.push(logDir);
    const logFile = join(logDir, 'natter.log');
    writeFileSync(logFile, '{"msg":"an earlier line"}\n', { mode: 0o600 });
    const { file } = configure({ log: { level: 'info', file: logFile } });
    const natter = new CliProcess(['serve', '--config', file]);
    await natter.waitFor((out) => out.includes('user add USER@localhost'), 'the start message');
    assert.equal(await natter.stop(), 0, natter.transcript());
    const lines = jsonLines(readFileSync(logFile, 'utf8'));
    assert.equal(lines[0]!.msg, 'an earlier line');
    assert.ok(lines.some((l) => l.msg === 'natter started'));
    assert.equal(statSync(logFile).mode & 0o777, 0o600);
  });

  test('at a terminal: pretty log lines, not JSON, and the start message after the start line', async () => {
    const { file } = configure();
    const natter = new CliProcess(['serve', '--config', file], 'terminal');
    await natter.waitFor((out) => out.includes('user add USER@localhost'), 'the start message');
    assert.equal(await natter.stop(), 0, natter.transcript());
    const lines = plain(natter.stdout).split('\n');
    const time = String.raw`\[\d\d:\d\d:\d\d\.\d{3}\]`;
    const started = lines.findIndex((l) => new RegExp(`^${time} INFO: natter started$`).test(l));
    assert.ok(started >= 0, natter.stdout);
    assert.equal(lines[started + 1], 'Natter 0.1.0 is running.');
    assert.ok(
      lines.some((l) => new RegExp(`^${time} INFO: natter stopped$`).test(l)),
      natter.stdout,
    );
    assert.ok(
      lines.some((l) =>
        new RegExp(`^${time} INFO: signal received: shutting down \\{"signal":"SIGINT"\\}$`).test(l),
      ),
      natter.stdout,
    );
    for (const l of lines) assert.ok(!l.trimStart().startsWith('{'), `a JSON line at a terminal: ${l}`);
    assert.equal(field(lines.join('\n'), 'Domains'), 'localhost');
  });

  test('--workers 2: one start message, from the primary, once every worker serves', async () => {
    const logDir = mkdtempSync(join(tmpdir(), 'natter-start-logs-'));
    dirs.push(logDir);
    const { file } = configure({ log: { level: 'info', file: join(logDir, 'natter.log') } });
    const natter = new CliProcess(['serve', '--config', file, '--workers', '2']);
    await natter.waitFor((out) => out.includes('user add USER@localhost'), 'the start message', 90_000);
    const message = natter.stdout;
    assert.equal(field(message, 'Processes'), '2 workers sharing the ports');
    assert.equal(await natter.stop(), 0, natter.transcript());
    assert.equal(natter.stdout, message, 'stdout carries one start message only');
    assert.equal(message.match(/is running/g)!.length, 1);
    const lines = jsonLines(readFileSync(join(logDir, 'natter.log'), 'utf8'));
    assert.equal(lines.filter((l) => l.msg === 'natter started').length, 2, 'one line a worker');
    const all = lines.filter((l) => l.msg === 'natter started with workers');
    assert.equal(all.length, 1);
    assert.equal(all[0]!.workers, 2);
    assert.equal(field(message, 'Clients').split(' ')[0], `127.0.0.1:${ports(all[0]!).c2s}`);
    const ready = lines.filter((l) => l.msg === 'worker ready').map((l) => lines.indexOf(l));
    assert.ok(
      ready.every((i) => i < lines.indexOf(all[0]!)),
      'announced after every worker is ready',
    );
  });
});
