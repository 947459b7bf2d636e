// FAST (XEP-0484) safety rules, each checked over real sockets:
// - a token is never requested or sent over an unencrypted connection (Natter over ws://, which
//   offers HT-SHA-256-NONE there: the client is the one that declines);
// - the server's proof (`<additional-data/>` of an HT-* success) is required: a scripted TLS
//   server that answers a token login with `<success/>` and no proof, or a wrong one, does not get
//   the session, and the token it tries to plant is not kept (no real server here misbehaves so);
// - a temporary failure keeps the stored token (Natter's per-address limit on failed logins answers
//   <temporary-auth-failure/>; a connection cut in the middle of the token login), while a
//   <not-authorized/> verdict forgets it.
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import tls from 'node:tls';
import { after, before, describe, test } from 'node:test';
import { generate } from 'selfsigned';
import {
  AuthenticationError,
  createClient,
  memoryCredentials,
  nodeWebSocketTransport,
  tcpTransport,
  type ClientOptions,
  type CredentialStore,
  type TransportFactory,
} from '../src/index.node.js';
import { startRelay, type Relay } from '../../../test/support/tcp-relay.js';
import { sleep } from './helpers.js';
import { startNatter } from './natter.js';
import type { Target } from './target.js';

/** What the client wrote and read on each connection, through the real transports. */
interface Wire {
  sent: string[];
  received: string[];
  /** Called with each piece of data as the client writes it (after it is written). */
  onSend?: (data: string, transport: { destroy(err?: Error): void }) => void;
}

function tapped(wire: Wire): TransportFactory[] {
  const wrap = (f: TransportFactory): TransportFactory => ({
    protocols: f.protocols,
    create(url, ctx) {
      const t = f.create(url, ctx);
      const send = t.send.bind(t);
      t.send = (data: string) => {
        wire.sent.push(data);
        send(data);
        wire.onSend?.(data, t);
      };
      t.events.on('data', (d) => wire.received.push(typeof d === 'string' ? d : Buffer.from(d).toString()));
      return t;
    },
  });
  return [wrap(tcpTransport()), wrap(nodeWebSocketTransport())];
}

const noPassword = undefined as unknown as string;

describe('FAST: no token over an unencrypted connection (natter, ws:// beside wss://)', () => {
  let target: Target;
  const clients: { disconnect(): Promise<void> }[] = [];
  const client = (opts: Partial<ClientOptions>) => {
    const c = createClient({ service: target.service.ws, tls: target.tls, jid: '', ...opts });
    clients.push(c);
    return c;
  };
  before(async () => {
    target = await startNatter({ users: 4, https: true });
  });
  after(async () => {
    await Promise.all(clients.map((c) => c.disconnect().catch(() => undefined)));
    await target?.stop();
  });

  test('a password login over ws:// asks for no token, though the server offers FAST there', async () => {
    const account = target.users[0]!;
    const credentials = memoryCredentials();
    const wire: Wire = { sent: [], received: [] };
    const c = client({ ...account, credentials, allowPlaintextAuth: true, transports: tapped(wire) });
    await c.connect();
    assert.equal(c.secure, false);
    assert.match(c.saslMechanism ?? '', /^SCRAM-/);
    // The server did offer a token mechanism on this connection: the client declined.
    assert.match(wire.received.join(''), /<mechanism>HT-SHA-256-NONE<\/mechanism>/);
    assert.doesNotMatch(wire.sent.join(''), /request-token|urn:xmpp:fast:0/);
    assert.equal((await credentials.get(account.jid))?.token, undefined, 'no token kept');
    await c.disconnect();

    // The same login over wss:// (TLS; no channel binding over a WebSocket) gets one.
    const overTls = client({ ...account, service: target.service.wss!, credentials });
    await overTls.connect();
    assert.equal(overTls.secure, true);
    assert.equal((await credentials.get(account.jid))?.token?.mechanism, 'HT-SHA-256-NONE');
  });

  test('a stored token is not sent over ws://: the login fails for want of a password, the token stays good', async () => {
    const account = target.users[1]!;
    const credentials = memoryCredentials();
    const first = client({ ...account, service: target.service.wss!, credentials });
    await first.connect();
    await first.disconnect();
    const token = (await credentials.get(account.jid))!.token!;
    assert.equal(token.mechanism, 'HT-SHA-256-NONE', 'a mechanism the server offers over ws:// too');

    const wire: Wire = { sent: [], received: [] };
    const plain = client({
      jid: account.jid,
      password: noPassword,
      credentials,
      allowPlaintextAuth: true,
      transports: tapped(wire),
    });
    await assert.rejects(plain.connect(), (err: unknown) => {
      assert.ok(err instanceof AuthenticationError, String(err));
      assert.match(err.message, /no password/);
      return true;
    });
    assert.match(wire.received.join(''), /<mechanism>HT-SHA-256-NONE<\/mechanism>/);
    assert.doesNotMatch(wire.sent.join(''), /HT-SHA-256|<authenticate|urn:xmpp:fast:0/);
    assert.equal((await credentials.get(account.jid))?.token?.token, token.token, 'kept');

    // Over TLS the same token logs in.
    const later = client({
      jid: account.jid,
      password: noPassword,
      service: target.service.wss!,
      credentials,
    });
    await later.connect();
    assert.equal(later.saslMechanism, 'HT-SHA-256-NONE');
  });
});

// ---------------------------------------------------------------------------------------------
// A scripted server for what no real server does: a <success/> to a token login without the
// server's proof of knowing the token (a server that does not know it: an impostor).

type Proof = 'none' | 'reflected' | 'right';

interface Script {
  service: string;
  ca: string;
  /** Everything the client sent, per connection. */
  inputs: string[];
  close(): Promise<void>;
}

const TOKEN = 'a-token-the-real-server-issued';
const hmac = (label: string) => createHmac('sha256', TOKEN).update(label).digest();

async function scriptedServer(proof: Proof): Promise<Script> {
  const pems = await generate([{ name: 'commonName', value: 'localhost' }], {
    keyType: 'ec',
    curve: 'P-256',
    algorithm: 'sha256',
    extensions: [{ name: 'subjectAltName', altNames: [{ type: 2, value: 'localhost' }] }],
  });
  const inputs: string[] = [];
  const sockets = new Set<tls.TLSSocket>();
  const server = tls.createServer({ key: pems.private, cert: pems.cert }, (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => undefined);
    const index = inputs.push('') - 1;
    let step = 0;
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      inputs[index] += chunk;
      const text = inputs[index]!;
      if (step === 0 && text.includes('<stream:stream')) {
        step = 1;
        socket.write(
          `<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' from='localhost' id='s1' version='1.0' xml:lang='en'>` +
            `<stream:features><authentication xmlns='urn:xmpp:sasl:2'><mechanism>SCRAM-SHA-1</mechanism>` +
            `<inline><fast xmlns='urn:xmpp:fast:0'><mechanism>HT-SHA-256-NONE</mechanism></fast></inline>` +
            `</authentication></stream:features>`,
        );
      }
      if (step === 1 && text.includes('</authenticate>')) {
        step = 2;
        const data =
          proof === 'none'
            ? ''
            : `<additional-data>${hmac(proof === 'right' ? 'Responder' : 'Initiator').toString('base64')}</additional-data>`;
        socket.write(
          `<success xmlns='urn:xmpp:sasl:2'>${data}<authorization-identifier>user@localhost</authorization-identifier>` +
            `<token xmlns='urn:xmpp:fast:0' token='planted' expiry='${new Date(Date.now() + 86_400_000).toISOString()}'/></success>` +
            `<stream:features><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></stream:features>`,
        );
      }
      const bind = /<iq [^>]*id=['"]([^'"]+)['"][^>]*>\s*<bind/.exec(text);
      if (step === 2 && bind) {
        step = 3;
        socket.write(
          `<iq type='result' id='${bind[1]}'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><jid>user@localhost/scripted</jid></bind></iq>`,
        );
      }
      if (text.includes('</stream:stream>')) socket.end('</stream:stream>');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as { port: number };
  return {
    service: `xmpps://localhost:${port}`,
    ca: pems.cert,
    inputs,
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

describe('FAST: the server must prove it knows the token (scripted TLS server)', () => {
  const storeWithToken = async (): Promise<CredentialStore> => {
    const credentials = memoryCredentials();
    await credentials.set('user@localhost', {
      userAgentId: 'installation-1',
      token: { mechanism: 'HT-SHA-256-NONE', token: TOKEN, expiry: Date.now() + 86_400_000, count: 0 },
    });
    return credentials;
  };

  for (const proof of ['none', 'reflected'] as const) {
    test(`a <success/> with ${proof === 'none' ? 'no proof' : "the client's own MAC as proof"} fails the login; nothing from it is kept`, async () => {
      const script = await scriptedServer(proof);
      const credentials = await storeWithToken();
      const c = createClient({
        service: script.service,
        tls: { ca: script.ca },
        jid: 'user@localhost',
        password: noPassword,
        credentials,
      });
      let online = false;
      c.on('online', () => (online = true));
      try {
        await assert.rejects(c.connect(), (err: unknown) => {
          assert.ok(err instanceof AuthenticationError, String(err));
          assert.match(err.message, /did not prove/);
          return true;
        });
        assert.equal(c.status, 'offline');
        assert.equal(online, false);
        assert.equal(c.jid, undefined);
        // The client did log in with the token, and then used nothing the server offered: no
        // resource binding, and the token it handed out is not stored.
        assert.match(script.inputs.join(''), /mechanism=['"]HT-SHA-256-NONE['"]/);
        assert.doesNotMatch(script.inputs.join(''), /<iq/);
        const kept = await credentials.get('user@localhost');
        assert.equal(kept?.token?.token, TOKEN);
      } finally {
        await c.disconnect();
        await script.close();
      }
    });
  }

  test('control: with the right proof the same script gets the session (and its new token is kept)', async () => {
    const script = await scriptedServer('right');
    const credentials = await storeWithToken();
    const c = createClient({
      service: script.service,
      tls: { ca: script.ca },
      jid: 'user@localhost',
      password: noPassword,
      credentials,
    });
    try {
      const jid = await c.connect();
      assert.equal(jid.toString(), 'user@localhost/scripted');
      assert.equal(c.saslMechanism, 'HT-SHA-256-NONE');
      assert.equal((await credentials.get('user@localhost'))?.token?.token, 'planted');
    } finally {
      await c.disconnect();
      await script.close();
    }
  });
});

// ---------------------------------------------------------------------------------------------

describe('FAST: a temporary failure keeps the token, a refusal forgets it (natter)', () => {
  let target: Target;
  let relay: Relay;
  const clients: { disconnect(): Promise<void> }[] = [];
  const client = (opts: Partial<ClientOptions>) => {
    const c = createClient({ service: target.service.tcp, tls: target.tls, jid: '', ...opts });
    clients.push(c);
    return c;
  };
  before(async () => {
    // Natter's limit on failed logins per address: after one, the address waits a second, and
    // every login from it meanwhile is answered <temporary-auth-failure/>.
    target = await startNatter({
      users: 4,
      limits: {},
      modules: { limits: { authFailuresPerIp: { burst: 1, perMinute: 60 } } },
    });
    relay = await startRelay(Number(new URL(target.service.tcp).port));
  });
  after(async () => {
    await Promise.all(clients.map((c) => c.disconnect().catch(() => undefined)));
    await relay?.close();
    await target?.stop();
  });

  test('<temporary-auth-failure/> to a token login: the token is kept and logs in once the server lets the address in', async () => {
    const account = target.users[0]!;
    const credentials = memoryCredentials();
    await client({ ...account, credentials }).connect();
    const token = (await credentials.get(account.jid))!.token!;

    // A wrong password from this address (another installation): the address must now wait.
    const guesser = client({ jid: account.jid, password: 'wrong', fast: false });
    await assert.rejects(guesser.connect(), AuthenticationError);

    const fast = client({ jid: account.jid, password: noPassword, credentials });
    await assert.rejects(fast.connect(), (err: unknown) => {
      assert.ok(err instanceof AuthenticationError, String(err));
      assert.equal(err.condition, 'temporary-auth-failure');
      return true;
    });
    assert.equal((await credentials.get(account.jid))?.token?.token, token.token, 'the token is kept');

    await sleep(1200);
    const again = client({ jid: account.jid, password: noPassword, credentials });
    await again.connect();
    assert.equal(again.saslMechanism, token.mechanism);
  });

  test('the connection drops in the middle of a token login: the token is kept and logs in next time', async () => {
    const account = target.users[1]!;
    const credentials = memoryCredentials();
    await client({ ...account, credentials }).connect();
    const token = (await credentials.get(account.jid))!.token!;

    // Through a relay that is cut, as a network failure would, once the token login is written.
    const wire: Wire = {
      sent: [],
      received: [],
      onSend: (data) => {
        if (data.includes('<authenticate')) relay.cut();
      },
    };
    const cut = client({
      jid: account.jid,
      password: noPassword,
      credentials,
      service: `xmpp://127.0.0.1:${relay.port}`,
      transports: tapped(wire),
    });
    // A network error (the socket's own, as it stands), not a verdict on the credentials.
    await assert.rejects(cut.connect(), (err: unknown) => {
      assert.ok(err instanceof Error && !(err instanceof AuthenticationError), String(err));
      assert.match(err.message, /ECONNRESET|closed|lost/);
      return true;
    });
    assert.match(wire.sent.join(''), /mechanism=['"]HT-SHA-256-/);
    assert.equal((await credentials.get(account.jid))?.token?.token, token.token, 'the token is kept');

    const again = client({ jid: account.jid, password: noPassword, credentials });
    await again.connect();
    assert.equal(again.saslMechanism, token.mechanism);
  });

  test('<not-authorized/> to a token login: the token is forgotten', async () => {
    const account = target.users[2]!;
    const credentials = memoryCredentials();
    await client({ ...account, credentials }).connect();
    // The password changes elsewhere: the server no longer takes the tokens issued before.
    await target.setPassword!(account.jid, `${account.password}-changed`);
    const fast = client({ jid: account.jid, password: noPassword, credentials });
    await assert.rejects(fast.connect(), (err: unknown) => {
      assert.ok(err instanceof AuthenticationError, String(err));
      assert.equal(err.condition, 'not-authorized');
      return true;
    });
    assert.equal((await credentials.get(account.jid))?.token, undefined, 'forgotten');
  });
});
