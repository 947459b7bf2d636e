// SCRAM-*-PLUS with channel binding (RFC 5802 §6, RFC 5929, RFC 9266, XEP-0440) over real TLS.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { connect as netConnect, type Socket } from 'node:net';
import { connect as tlsConnect, type SecureVersion, type TLSSocket } from 'node:tls';
import { StreamParser, serialize, xml, type Element } from '@natter/xml';
import {
  NS,
  createClientMechanism,
  fromBase64,
  toBase64,
  type ClientMechanismOptions,
} from '@natter/protocol';
import { startTestServer, type TestServer } from './support/test-server.js';
import { TestClient } from './support/test-client.js';

const PW = 'secret-password';
const NS_CB = 'urn:xmpp:sasl-cb:0';

/** A bare-bones stream over TLS (direct or STARTTLS) with a chosen TLS version. */
class Conn {
  private queue: Element[] = [];
  private waiters: ((el: Element) => void)[] = [];
  features!: Element;
  private constructor(public socket: Socket) {}

  static async open(
    server: TestServer,
    opts: { maxVersion?: SecureVersion; starttls?: boolean } = {},
  ): Promise<Conn> {
    const tlsOpts = {
      servername: 'localhost',
      rejectUnauthorized: false,
      ...(opts.maxVersion ? { maxVersion: opts.maxVersion } : {}),
    };
    if (opts.starttls) {
      const raw = netConnect({ host: '127.0.0.1', port: server.port('c2s') });
      await new Promise((r) => raw.once('connect', r));
      const c = new Conn(raw);
      await c.openStream();
      c.send(xml('starttls', { xmlns: NS.tls }));
      assert.equal((await c.next()).name, 'proceed');
      raw.removeAllListeners('data');
      const secure = tlsConnect({ socket: raw, ...tlsOpts });
      await new Promise((r) => secure.once('secureConnect', r));
      c.socket = secure;
      await c.openStream();
      return c;
    }
    const s = tlsConnect({ host: '127.0.0.1', port: server.port('c2s-tls'), ...tlsOpts });
    await new Promise((r) => s.once('secureConnect', r));
    const c = new Conn(s);
    await c.openStream();
    return c;
  }

  get tls(): TLSSocket {
    return this.socket as TLSSocket;
  }

  async openStream(): Promise<void> {
    const parser = new StreamParser({
      streamStart: () => {},
      element: (el) => {
        const w = this.waiters.shift();
        if (w) w(el);
        else this.queue.push(el);
      },
      streamEnd: () => {},
      error: () => {},
    });
    this.socket.removeAllListeners('data');
    this.socket.on('data', (d: Buffer) => parser.write(d));
    this.socket.write(
      `<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='${NS.stream}' to='localhost' version='1.0'>`,
    );
    this.features = await this.next();
  }

  next(): Promise<Element> {
    const el = this.queue.shift();
    if (el) return Promise.resolve(el);
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  send(el: Element): void {
    this.socket.write(serialize(el, NS.client, true));
  }

  mechanisms(): string[] {
    return (this.features.getChild('mechanisms', NS.sasl)?.getChildren('mechanism') ?? []).map((m) =>
      m.text(),
    );
  }

  bindingTypes(): string[] | undefined {
    return this.features
      .getChild('sasl-channel-binding', NS_CB)
      ?.getChildren('channel-binding')
      .map((b) => b.attrs.type ?? '');
  }

  /** Independent of the server code: RFC 9266 §2 and RFC 5929 §4.1 spelled out. */
  exporter(): Uint8Array {
    return this.tls.exportKeyingMaterial(32, 'EXPORTER-Channel-Binding', Buffer.alloc(0));
  }

  endPoint(): Uint8Array {
    // The test server's self-signed certificate is signed with ecdsa-with-SHA256.
    return createHash('sha256').update(this.tls.getPeerCertificate().raw).digest();
  }

  /** Runs SASL; 'success' or the failure condition the server sent. */
  async sasl(mechanism: string, opts: ClientMechanismOptions): Promise<string> {
    const mech = createClientMechanism(mechanism, { username: 'romeo', password: PW }, opts);
    this.send(xml('auth', { xmlns: NS.sasl, mechanism }, toBase64(await mech.initial())));
    for (;;) {
      const el = await this.next();
      if (el.name === 'challenge') {
        const resp = await mech.challenge(fromBase64(el.text()));
        this.send(xml('response', { xmlns: NS.sasl }, toBase64(resp)));
      } else if (el.name === 'success') {
        await mech.success(fromBase64(el.text()));
        return 'success';
      } else {
        return el.elements().find((c) => c.name !== 'text')?.name ?? el.name;
      }
    }
  }

  close(): void {
    this.socket.destroy();
  }
}

describe('SCRAM-*-PLUS channel binding over TLS (XEP-0440)', () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer();
    await server.addUser('romeo', PW);
  });
  after(() => server.destroy());

  test('TLS 1.3 offers -PLUS with tls-exporter and tls-server-end-point', async () => {
    const c = await Conn.open(server);
    assert.equal(c.tls.getProtocol(), 'TLSv1.3');
    assert.deepEqual(c.mechanisms().slice(0, 2), ['SCRAM-SHA-256-PLUS', 'SCRAM-SHA-1-PLUS']);
    assert.deepEqual(c.bindingTypes(), ['tls-exporter', 'tls-server-end-point']);
    c.close();
  });

  test('TLS 1.3: SCRAM-SHA-256-PLUS with tls-exporter logs in', async () => {
    const c = await Conn.open(server);
    const channelBinding = { type: 'tls-exporter', data: c.exporter() };
    assert.equal(await c.sasl('SCRAM-SHA-256-PLUS', { channelBinding }), 'success');
    c.close();
  });

  test('TLS 1.3 after STARTTLS: SCRAM-SHA-1-PLUS with tls-server-end-point logs in', async () => {
    const c = await Conn.open(server, { starttls: true });
    assert.deepEqual(c.bindingTypes(), ['tls-exporter', 'tls-server-end-point']);
    const channelBinding = { type: 'tls-server-end-point', data: c.endPoint() };
    assert.equal(await c.sasl('SCRAM-SHA-1-PLUS', { channelBinding }), 'success');
    c.close();
  });

  test('TLS 1.2 offers only tls-server-end-point, which logs in; tls-exporter is refused', async () => {
    const c = await Conn.open(server, { maxVersion: 'TLSv1.2' });
    assert.equal(c.tls.getProtocol(), 'TLSv1.2');
    assert.deepEqual(c.bindingTypes(), ['tls-server-end-point']);
    const channelBinding = { type: 'tls-server-end-point', data: c.endPoint() };
    assert.equal(await c.sasl('SCRAM-SHA-256-PLUS', { channelBinding }), 'success');
    c.close();

    const d = await Conn.open(server, { maxVersion: 'TLSv1.2' });
    const exporter = { type: 'tls-exporter', data: d.exporter() };
    assert.equal(await d.sasl('SCRAM-SHA-256-PLUS', { channelBinding: exporter }), 'not-authorized');
    d.close();
  });

  test('binding data of another channel (a man in the middle) is refused', async () => {
    const other = await Conn.open(server);
    const c = await Conn.open(server);
    const channelBinding = { type: 'tls-exporter', data: other.exporter() };
    assert.equal(await c.sasl('SCRAM-SHA-256-PLUS', { channelBinding }), 'not-authorized');
    other.close();
    c.close();
  });

  test('an unsupported binding type is refused', async () => {
    const c = await Conn.open(server);
    const channelBinding = { type: 'tls-unique', data: new Uint8Array(12) };
    assert.equal(await c.sasl('SCRAM-SHA-256-PLUS', { channelBinding }), 'not-authorized');
    c.close();
  });

  test('the y flag where -PLUS was offered is a downgrade and is refused (RFC 5802 §6)', async () => {
    const c = await Conn.open(server);
    assert.equal(await c.sasl('SCRAM-SHA-256', { channelBindingSupported: true }), 'not-authorized');
    c.close();
    const d = await Conn.open(server);
    assert.equal(await d.sasl('SCRAM-SHA-256', {}), 'success');
    d.close();
  });

  test('no -PLUS and no binding types over WebSocket without TLS', async () => {
    const c = await TestClient.open(server, 'ws');
    const mechs = c.features
      ?.getChild('mechanisms', NS.sasl)
      ?.getChildren('mechanism')
      .map((m) => m.text());
    if (mechs) assert.ok(!mechs.some((m) => m.endsWith('-PLUS')));
    assert.equal(c.features?.getChild('sasl-channel-binding', NS_CB), undefined);
    c.kill();
  });
});
