import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { connect, type Socket } from 'node:net';
import { startTestServer, type TestServer } from '../support/test-server.js';
import { socketGuard } from '../../src/listeners/socket-guard.js';
import { ipKey } from '../../src/util/ip-key.js';
import { PW, header } from './support/abuse.js';

/**
 * Per-address limits group IPv6 addresses by `limits.ipv6Prefix` (/64): addresses of one /64 are
 * added to the loopback interface (root, Linux `ip`), the server listens on `::`.
 */
const NET_A = 'fd00:14:0:a1::';
const NET_B = 'fd00:14:0:b2::';
const SERVER = 'fd00:14:0:c3::1';
const ADDRS = [`${NET_A}10`, `${NET_A}11`, `${NET_A}12`, `${NET_A}13`, `${NET_A}14`, `${NET_B}10`, SERVER];

function ip(...args: string[]): void {
  execFileSync('ip', args, { stdio: 'ignore' });
}
let added: string[] = [];
let skip: string | false = false;
before(() => {
  try {
    for (const a of ADDRS) {
      ip('-6', 'addr', 'add', `${a}/128`, 'dev', 'lo', 'nodad');
      added.push(a);
    }
  } catch (err) {
    skip = `cannot add IPv6 addresses to lo (needs root and iproute2): ${(err as Error).message.split('\n')[0]}`;
  }
});
after(() => {
  for (const a of added) {
    try {
      ip('-6', 'addr', 'del', `${a}/128`, 'dev', 'lo');
    } catch {
      /* already gone */
    }
  }
  added = [];
});

/** A plain-TCP XMPP exchange from `from`, matched on the text the server sends. */
interface Conv {
  socket: Socket;
  text: string;
  waitFor(re: RegExp, ms?: number): Promise<RegExpExecArray>;
  gone: Promise<void>;
}
function open(server: TestServer, from: string): Promise<Conv> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: SERVER, port: server.port('c2s'), localAddress: from });
    const c: Conv = {
      socket,
      text: '',
      gone: new Promise((r) => socket.once('close', () => r())),
      waitFor(re, ms = 5000) {
        return new Promise((res, rej) => {
          const check = () => {
            const m = re.exec(c.text);
            if (!m) return false;
            clearTimeout(t);
            socket.off('data', onData);
            res(m);
            return true;
          };
          const onData = () => void check();
          const t = setTimeout(() => {
            socket.off('data', onData);
            rej(new Error(`no ${re} from the server; got: ${c.text.slice(-500)}`));
          }, ms);
          if (!check()) socket.on('data', onData);
        });
      },
    };
    socket.setEncoding('utf8');
    socket.on('data', (d: string) => (c.text += d));
    socket.on('error', () => {});
    socket.once('connect', () => resolve(c));
    socket.once('error', reject);
  });
}
async function stream(server: TestServer, from: string): Promise<Conv> {
  const c = await open(server, from);
  c.socket.write(header());
  await c.waitFor(/<\/stream:features>/);
  return c;
}

/** Registers `user` from `from`: 'ok' or the error condition. */
async function register(server: TestServer, from: string, user: string): Promise<string> {
  const c = await stream(server, from);
  try {
    c.socket.write(
      `<iq type='set' id='reg1'><query xmlns='jabber:iq:register'><username>${user}</username><password>${PW}</password></query></iq>`,
    );
    const m = await c.waitFor(/<iq[^>]*id=["']reg1["'][^>]*(?:\/>|>[\s\S]*?<\/iq>)/);
    if (/type=["']result["']/.test(m[0])) return 'ok';
    return /<([a-z-]+) xmlns=["']urn:ietf:params:xml:ns:xmpp-stanzas["']/.exec(m[0])?.[1] ?? m[0];
  } finally {
    c.socket.destroy();
  }
}

/** One SASL PLAIN attempt from `from`: 'success' or the failure condition. */
async function plain(server: TestServer, from: string, user: string, password: string): Promise<string> {
  const c = await stream(server, from);
  try {
    const b64 = Buffer.from(`\0${user}\0${password}`).toString('base64');
    c.socket.write(`<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>${b64}</auth>`);
    const m = await c.waitFor(/<success[\s/>]|<failure[^>]*>\s*<([a-z-]+)/);
    return m[1] ?? 'success';
  } finally {
    c.socket.destroy();
  }
}

describe('IPv6 addresses are grouped by limits.ipv6Prefix (default /64)', () => {
  test('the address key', () => {
    assert.equal(ipKey('::ffff:192.0.2.7'), '192.0.2.7');
    assert.equal(ipKey('192.0.2.7'), '192.0.2.7');
    assert.equal(ipKey(`${NET_A}10`), ipKey('fd00:14:0:a1:ffff:1:2:3'));
    assert.notEqual(ipKey(`${NET_A}10`), ipKey(`${NET_B}10`));
    assert.equal(ipKey('2001:db8:1:2:3::1', 48), ipKey('2001:db8:1:ffff::', 48));
    assert.notEqual(ipKey('2001:db8:1:2:3::1', 128), ipKey('2001:db8:1:2:3::2', 128));
  });

  test('in-band registration: the per-address hourly limit holds across a /64; another /64 still registers', async (t) => {
    if (skip) return t.skip(skip);
    const server = await startTestServer({
      listeners: [{ type: 'c2s', port: 0, host: '::' }],
      auth: { allowPlaintext: 'always' },
      registration: { enabled: true, perIpPerHour: 2 },
    });
    try {
      const outcomes: string[] = [];
      for (let i = 0; i < 5; i++) outcomes.push(await register(server, `${NET_A}1${i}`, `a${i}`));
      assert.deepEqual(outcomes, [
        'ok',
        'ok',
        'resource-constraint',
        'resource-constraint',
        'resource-constraint',
      ]);
      assert.equal(await register(server, `${NET_B}10`, 'b0'), 'ok');
    } finally {
      await server.destroy();
    }
  });

  test('failed authentications: addresses of one /64 share one allowance; another /64 is unaffected', async (t) => {
    if (skip) return t.skip(skip);
    const server = await startTestServer({
      listeners: [{ type: 'c2s', port: 0, host: '::' }],
      auth: { allowPlaintext: 'always' },
      modules: { limits: { authFailuresPerIp: { burst: 3, perMinute: 1 } } },
    });
    try {
      await server.addUser('romeo', PW);
      // Three wrong guesses, each from another address of the /64 …
      for (let i = 0; i < 3; i++)
        assert.equal(await plain(server, `${NET_A}1${i}`, 'romeo', `guess${i}`), 'not-authorized');
      // … and the next address of that /64 is refused before its password is checked.
      assert.equal(await plain(server, `${NET_A}13`, 'romeo', 'guess3'), 'temporary-auth-failure');
      assert.equal(await plain(server, `${NET_A}14`, 'romeo', PW), 'temporary-auth-failure');
      // The other /64 logs in.
      assert.equal(await plain(server, `${NET_B}10`, 'romeo', PW), 'success');
    } finally {
      await server.destroy();
    }
  });

  test('raw sockets: limits.maxSocketsPerIp counts a /64 together; another /64 still connects', async (t) => {
    if (skip) return t.skip(skip);
    const server = await startTestServer({
      listeners: [{ type: 'c2s', port: 0, host: '::' }],
      auth: { allowPlaintext: 'always' },
      limits: { maxSocketsPerIp: 3 },
    });
    const held: Conv[] = [];
    try {
      for (let i = 0; i < 3; i++) held.push(await stream(server, `${NET_A}1${i}`));
      assert.equal(socketGuard(server.core).count(`${NET_A}99`), 3);
      const fourth = await open(server, `${NET_A}13`);
      held.push(fourth);
      await Promise.race([
        fourth.gone,
        new Promise((_, rej) =>
          setTimeout(() => rej(new Error('fourth socket of the /64 not closed')), 5000),
        ),
      ]);
      held.push(await stream(server, `${NET_B}10`));
    } finally {
      for (const c of held) c.socket.destroy();
      await server.destroy();
    }
  });
});
