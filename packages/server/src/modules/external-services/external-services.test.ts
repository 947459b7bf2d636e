import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { PassThrough } from 'node:stream';
import { inspect } from 'node:util';
import { xml, type Element } from '@natter/xml';
import { NS } from '@natter/protocol';
import { startTestServer, type TestServer } from '../../../test/support/test-server.js';
import { TestClient } from '../../../test/support/test-client.js';
import { connectComponent } from '../../../test/support/component-client.js';
import { createLogger } from '../../core/logger.js';
import { builtinModules } from '../index.js';
import { NS_EXTDISCO } from './external-services.js';
import { Secret } from './turn-rest.js';

const PW = 'secret-password';
const SECRET = `turn-secret-${Math.random().toString(36).slice(2)}-never-shown`;
const STATIC_PASSWORD = `static-${Math.random().toString(36).slice(2)}`;
const GW = 'gw.localhost';
const GW_SECRET = 'component-secret';
const MINE = new Set(['disco', 'external-services']);
const others = Object.fromEntries(
  builtinModules.filter((m) => !MINE.has(m.name)).map((m) => [m.name, false as const]),
);
const services = [
  { type: 'stun', host: 'stun.example.net', port: 3478, transport: 'udp' },
  { type: 'turn', host: 'turn.example.net', port: 3478, transport: 'udp', secret: SECRET, ttlSeconds: 3600 },
  { type: 'turn', host: 'turn.example.net', port: 3478, transport: 'tcp', secret: SECRET },
  {
    type: 'turns',
    host: 'turn.example.net',
    port: 5349,
    transport: 'tcp',
    username: 'everyone',
    password: STATIC_PASSWORD,
    name: 'TLS relay',
  },
];

const servicesIq = (type?: string) =>
  xml('iq', { type: 'get', to: 'localhost' }, xml('services', { xmlns: NS_EXTDISCO, type }));
const credentialsIq = (...wanted: Record<string, string | undefined>[]) =>
  xml(
    'iq',
    { type: 'get', to: 'localhost' },
    xml('credentials', { xmlns: NS_EXTDISCO }, ...wanted.map((w) => xml('service', w))),
  );
const listed = (res: Element, name = 'services') =>
  res.getChild(name, NS_EXTDISCO)?.getChildren('service', NS_EXTDISCO) ?? [];
const condition = (el: Element) =>
  el
    .getChild('error')
    ?.elements()
    .find((c) => c.xmlns === NS.stanzas && c.name !== 'text')?.name;
const hmac = (username: string) => createHmac('sha1', SECRET).update(username).digest('base64');

describe('external service discovery (XEP-0215)', () => {
  let server: TestServer;
  let logs = '';
  const seen: string[] = [];
  before(async () => {
    const out = new PassThrough();
    out.on('data', (d: Buffer) => (logs += d.toString()));
    server = await startTestServer(
      {
        modules: { ...others, 'external-services': { services } },
        components: { [GW]: { secret: GW_SECRET } },
      },
      { logger: createLogger('trace', out) },
    );
    await server.addUser('romeo', PW);
  });
  after(() => server?.destroy());

  /** Every answer is kept so the last test can check that none carries the secret. */
  const ask = async (c: TestClient, iq: Element) => {
    const res = await c.iq(iq);
    seen.push(res.toString());
    return res;
  };

  test('XEP-0215 §6: the server advertises urn:xmpp:extdisco:2 in its disco#info', async () => {
    const c = await TestClient.login(server, 'romeo', PW, { resource: 'r' });
    const info = await ask(
      c,
      xml('iq', { type: 'get', to: 'localhost' }, xml('query', { xmlns: NS.discoInfo })),
    );
    const features = info
      .getChild('query', NS.discoInfo)!
      .getChildren('feature')
      .map((f) => f.attrs.var);
    assert.ok(features.includes(NS_EXTDISCO), String(features));
    await c.close();
  });

  test('XEP-0215 §3.1: all services, with TURN REST API credentials for the requesting user', async () => {
    const c = await TestClient.login(server, 'romeo', PW, { resource: 'r' });
    const before = Math.floor(Date.now() / 1000);
    const res = await ask(c, servicesIq());
    const after = Math.floor(Date.now() / 1000);
    assert.equal(res.attrs.type, 'result');
    const list = listed(res);
    assert.deepEqual(
      list.map((s) => `${s.attrs.type} ${s.attrs.host}:${s.attrs.port}/${s.attrs.transport}`),
      [
        'stun stun.example.net:3478/udp',
        'turn turn.example.net:3478/udp',
        'turn turn.example.net:3478/tcp',
        'turns turn.example.net:5349/tcp',
      ],
    );
    const [stun, turnUdp, turnTcp, turns] = list as [Element, Element, Element, Element];
    assert.equal(stun.attrs.username, undefined);
    assert.equal(stun.attrs.restricted, undefined);

    // username = "<expiry>:<bare JID>", password = base64(HMAC-SHA1(secret, username)).
    const m = /^(\d+):romeo@localhost$/.exec(turnUdp.attrs.username ?? '');
    assert.ok(m, turnUdp.attrs.username);
    const expiry = Number(m[1]);
    assert.ok(expiry >= before + 3600 && expiry <= after + 3600, `expiry ${expiry}`);
    assert.equal(turnUdp.attrs.password, hmac(turnUdp.attrs.username!));
    assert.equal(turnUdp.attrs.restricted, 'true');
    assert.equal(turnUdp.attrs.expires, new Date(expiry * 1000).toISOString().replace('.000Z', 'Z'));
    // The default lifetime is a day.
    const tcpExpiry = Number(turnTcp.attrs.username!.split(':')[0]);
    assert.ok(tcpExpiry >= before + 86400 && tcpExpiry <= after + 86400, `expiry ${tcpExpiry}`);
    assert.equal(turnTcp.attrs.password, hmac(turnTcp.attrs.username!));
    // Static credentials as configured, without an expiry.
    assert.equal(turns.attrs.username, 'everyone');
    assert.equal(turns.attrs.password, STATIC_PASSWORD);
    assert.equal(turns.attrs.restricted, 'true');
    assert.equal(turns.attrs.expires, undefined);
    assert.equal(turns.attrs.name, 'TLS relay');
    await c.close();
  });

  test('XEP-0215 §3.2: a type filters the services, and is echoed', async () => {
    const c = await TestClient.login(server, 'romeo', PW, { resource: 'r' });
    const turn = await ask(c, servicesIq('turn'));
    assert.equal(turn.getChild('services', NS_EXTDISCO)?.attrs.type, 'turn');
    assert.deepEqual(
      listed(turn).map((s) => `${s.attrs.type}/${s.attrs.transport}`),
      ['turn/udp', 'turn/tcp'],
    );
    assert.deepEqual(
      listed(await ask(c, servicesIq('stun'))).map((s) => s.attrs.host),
      ['stun.example.net'],
    );
    const none = await ask(c, servicesIq('ftp'));
    assert.equal(none.attrs.type, 'result');
    assert.equal(listed(none).length, 0);
    await c.close();
  });

  test('XEP-0215 §3.3: credentials for one service, by host and type (and port)', async () => {
    const c = await TestClient.login(server, 'romeo', PW, { resource: 'r' });
    const both = await ask(c, credentialsIq({ host: 'turn.example.net', type: 'turn' }));
    assert.equal(both.attrs.type, 'result');
    const creds = listed(both, 'credentials');
    assert.deepEqual(
      creds.map((s) => s.attrs.transport),
      ['udp', 'tcp'],
    );
    for (const s of creds) {
      assert.match(s.attrs.username ?? '', /^\d+:romeo@localhost$/);
      assert.equal(s.attrs.password, hmac(s.attrs.username!));
      assert.ok(s.attrs.expires);
    }
    const byPort = await ask(c, credentialsIq({ host: 'TURN.example.net', type: 'turns', port: '5349' }));
    assert.deepEqual(
      listed(byPort, 'credentials').map((s) => `${s.attrs.username}/${s.attrs.password === STATIC_PASSWORD}`),
      ['everyone/true'],
    );
    await c.close();
  });

  test('XEP-0215 §3.3: an unknown service is item-not-found, as is one that needs no credentials; a request without host or type is bad-request', async () => {
    const c = await TestClient.login(server, 'romeo', PW, { resource: 'r' });
    for (const wanted of [
      { host: 'nowhere.example.net', type: 'turn' },
      { host: 'turn.example.net', type: 'turn', port: '9999' },
      { host: 'turn.example.net', type: 'stun' },
      { host: 'stun.example.net', type: 'stun' },
    ]) {
      const res = await ask(c, credentialsIq(wanted));
      assert.equal(res.attrs.type, 'error', JSON.stringify(wanted));
      assert.equal(condition(res), 'item-not-found', JSON.stringify(wanted));
    }
    for (const bad of [
      credentialsIq(),
      credentialsIq({ host: 'turn.example.net' }),
      credentialsIq({ type: 'turn' }),
    ]) {
      const res = await ask(c, bad);
      assert.equal(condition(res), 'bad-request', bad.toString());
    }
    await c.close();
  });

  test('XEP-0215 §2: an entity that is not an account of the server is refused (forbidden)', async () => {
    const gw = await connectComponent(server, GW, GW_SECRET);
    for (const from of [GW, `bot@${GW}`]) {
      for (const [id, payload] of [
        ['s1', xml('services', { xmlns: NS_EXTDISCO })],
        [
          'c1',
          xml(
            'credentials',
            { xmlns: NS_EXTDISCO },
            xml('service', { host: 'turn.example.net', type: 'turn' }),
          ),
        ],
      ] as const) {
        gw.write(
          xml(
            'iq',
            { type: 'get', id, from, to: 'localhost', xmlns: 'jabber:component:accept' },
            payload,
          ).toString(),
        );
        const res = await gw.receive((e) => e.name === 'iq' && e.attrs.id === id);
        seen.push(res.toString());
        assert.equal(res.attrs.type, 'error', res.toString());
        assert.equal(condition(res), 'forbidden', res.toString());
        assert.equal(res.toString().includes('password'), false);
      }
    }
    gw.kill();
  });

  test('RFC 6120 §6.2: an unauthenticated client cannot ask (the stream is closed, nothing is answered)', async () => {
    const c = await TestClient.open(server, 'starttls');
    c.send(xml('iq', { type: 'get', id: 'early', to: 'localhost' }, xml('services', { xmlns: NS_EXTDISCO })));
    await c.waitClosed();
    assert.equal(c.streamError?.condition, 'not-authorized');
    assert.equal(
      c.received.some((e) => e.name === 'iq'),
      false,
    );
  });

  test('the shared secret appears in no answer and in no log line, and never prints itself', async () => {
    assert.ok(seen.length >= 10, `${seen.length} answers`);
    for (const s of seen) assert.equal(s.includes(SECRET), false, s);
    assert.ok(logs.length > 0, 'the server logged nothing at trace level');
    assert.equal(logs.includes(SECRET), false);
    const wrapped = new Secret(SECRET);
    for (const shown of [String(wrapped), `${wrapped}`, JSON.stringify({ wrapped }), inspect({ wrapped })])
      assert.equal(shown.includes(SECRET), false, shown);
    assert.equal(wrapped.reveal(), SECRET);
  });
});

describe('external service discovery (XEP-0215): configuration', () => {
  const start = (options: unknown) =>
    startTestServer({ modules: { ...others, 'external-services': options as Record<string, unknown> } });
  const refused = async (options: unknown, message: RegExp) => {
    const err = await start(options).then(
      async (s) => {
        await s.destroy();
        return undefined;
      },
      (e: unknown) => e as Error,
    );
    assert.ok(err, 'the server started');
    assert.match(err.message, message);
    assert.equal(err.message.includes(SECRET), false, err.message);
  };

  test('bad services are refused at start-up with a message naming the option, never the secret', async () => {
    await refused(
      {
        services: [
          {
            type: 'turn',
            host: 'turn.example.net',
            port: 3478,
            secret: SECRET,
            username: 'u',
            password: 'p',
          },
        ],
      },
      /modules\.external-services\.services\.0.*either secret .* or username and password/,
    );
    await refused(
      { services: [{ type: 'turn', host: 'not a host', port: 3478, secret: SECRET }] },
      /services\.0\.host: must be a host name or an IP address/,
    );
    await refused(
      { services: [{ type: 'turn', host: 'turn.example.net', port: 70000, secret: SECRET }] },
      /services\.0\.port/,
    );
    await refused({ services: [{ type: 'ftp', host: 'turn.example.net', port: 21 }] }, /services\.0\.type/);
    await refused(
      { services: [{ type: 'turn', host: 'turn.example.net', port: 3478, username: 'u' }] },
      /username and password go together/,
    );
    await refused(
      { services: [{ type: 'turn', host: 'turn.example.net', port: 3478, secret: 42 }] },
      /services\.0\.secret: secret must be a string/,
    );
    await refused(
      {
        services: [{ type: 'turn', host: 'turn.example.net', port: 3478, secret: SECRET, restricted: false }],
      },
      /services\.0\.restricted: a service with credentials is restricted/,
    );
    await refused(
      {
        services: [
          { type: 'turn', host: 'turn.example.net', port: 3478, secret: SECRET },
          { type: 'turn', host: 'TURN.example.net', port: 3478, secret: SECRET },
        ],
      },
      /services\.1: duplicate service turn turn\.example\.net 3478/,
    );
    await refused(
      { services: [{ type: 'turn', host: 'turn.example.net', port: 3478, secret: SECRET, extra: 1 }] },
      /services\.0/,
    );
  });

  test('off by default; enabled with no services it advertises nothing and the IQ is service-unavailable', async () => {
    for (const config of [{}, { 'external-services': {} }] as Record<string, Record<string, unknown>>[]) {
      const server = await startTestServer({ modules: { ...others, ...config } });
      try {
        await server.addUser('romeo', PW);
        const c = await TestClient.login(server, 'romeo', PW, { resource: 'r' });
        const info = await c.iq(
          xml('iq', { type: 'get', to: 'localhost' }, xml('query', { xmlns: NS.discoInfo })),
        );
        const features = info
          .getChild('query', NS.discoInfo)!
          .getChildren('feature')
          .map((f) => f.attrs.var);
        assert.equal(features.includes(NS_EXTDISCO), false);
        const res = await c.iq(servicesIq());
        assert.equal(condition(res), 'service-unavailable');
        await c.close();
      } finally {
        await server.destroy();
      }
    }
  });
});
