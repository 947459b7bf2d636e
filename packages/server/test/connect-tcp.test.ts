import { test } from 'node:test';
import assert from 'node:assert/strict';
import { StreamParser, type Element } from '@natter/xml';
import { NS } from '@natter/protocol';
import { connectTcp } from '../src/listeners/socket-transport.js';
import { startTestServer } from './support/test-server.js';

/** Collects the elements a transport receives and waits for one by name. */
function reader(onData: (cb: (chunk: Buffer | string) => void) => void) {
  const got: Element[] = [];
  const waiters: { name: string; resolve: (e: Element) => void }[] = [];
  let parser!: StreamParser;
  const reset = () => {
    parser = new StreamParser({
      streamStart() {},
      element(el) {
        const i = waiters.findIndex((w) => w.name === el.name);
        if (i >= 0) waiters.splice(i, 1)[0]!.resolve(el);
        else got.push(el);
      },
      streamEnd() {},
      error() {},
    });
  };
  reset();
  onData((chunk) => parser.write(chunk));
  return {
    reset,
    next(name: string): Promise<Element> {
      const i = got.findIndex((e) => e.name === name);
      if (i >= 0) return Promise.resolve(got.splice(i, 1)[0]!);
      return new Promise((resolve, reject) => {
        const t = setTimeout(() => reject(new Error(`no <${name}/> within 5 s`)), 5000);
        waiters.push({ name, resolve: (e) => (clearTimeout(t), resolve(e)) });
      });
    },
  };
}

test('connectTcp: an outbound transport reaches a server, upgrades with STARTTLS as the TLS client and shows the peer certificate', async () => {
  const server = await startTestServer();
  try {
    const t = await connectTcp({ host: '127.0.0.1', port: server.port('c2s'), servername: 'localhost' });
    assert.equal(t.secure, false);
    assert.equal(t.peerCertificate(), undefined);
    const r = reader((cb) => t.onData(cb));
    const header = `<?xml version='1.0'?><stream:stream xmlns='${NS.client}' xmlns:stream='${NS.stream}' to='localhost' version='1.0'>`;
    t.write(header);
    const features = await r.next('features');
    assert.ok(features.getChild('starttls', NS.tls));
    t.write(`<starttls xmlns='${NS.tls}'/>`);
    await r.next('proceed');
    await t.startTls('');
    assert.equal(t.secure, true);
    const cert = t.peerCertificate();
    assert.ok(cert, 'the server certificate');
    assert.equal(cert.checkHost('localhost'), 'localhost');
    r.reset();
    t.write(header);
    const after = await r.next('features');
    assert.equal(after.getChild('starttls', NS.tls), undefined, 'no STARTTLS offered twice');
    t.destroy();
  } finally {
    await server.destroy();
  }
});
