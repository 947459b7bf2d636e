import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import { Writable } from 'node:stream';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startTestServer, type TestServer } from '../support/test-server.js';
import { TestClient } from '../support/test-client.js';
import { startServer } from '../../src/server.js';
import { createLogger } from '../../src/core/logger.js';
import { PW, header, hold, within, until } from './support/abuse.js';

describe('TLS 1.2 offers only AEAD suites with forward secrecy', () => {
  function handshake(port: number, ciphers: string): Promise<string> {
    return new Promise((resolve, reject) => {
      const s: TLSSocket = tlsConnect({
        host: '127.0.0.1',
        port,
        servername: 'localhost',
        rejectUnauthorized: false,
        maxVersion: 'TLSv1.2',
        ciphers,
      });
      s.once('secureConnect', () => {
        const name = s.getCipher().name;
        s.destroy();
        resolve(name);
      });
      s.once('error', reject);
    });
  }

  test('direct TLS: a CBC-SHA1 suite is refused, ECDHE with AES-GCM or ChaCha20 is accepted', async () => {
    const server = await startTestServer();
    try {
      const port = server.port('c2s-tls');
      // The generated certificate has an ECDSA key.
      await assert.rejects(handshake(port, 'ECDHE-ECDSA-AES128-SHA'), /handshake failure|no shared cipher/i);
      await assert.rejects(
        handshake(port, 'ECDHE-ECDSA-AES256-SHA384'),
        /handshake failure|no shared cipher/i,
      );
      assert.equal(await handshake(port, 'ECDHE-ECDSA-AES128-GCM-SHA256'), 'ECDHE-ECDSA-AES128-GCM-SHA256');
      assert.equal(await handshake(port, 'ECDHE-ECDSA-CHACHA20-POLY1305'), 'ECDHE-ECDSA-CHACHA20-POLY1305');
    } finally {
      await server.destroy();
    }
  });

  test('STARTTLS: the same suites', async () => {
    const server = await startTestServer();
    try {
      const starttls = async (ciphers: string): Promise<string> => {
        const s = await hold(server.port('c2s'));
        let text = '';
        let asked = false;
        const proceed = new Promise<void>((r) =>
          s.on('data', (d: Buffer) => {
            text += d.toString();
            if (text.includes('<proceed')) r();
            else if (!asked && text.includes('</stream:features>')) {
              asked = true;
              s.write("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>");
            }
          }),
        );
        s.write(header());
        await within(proceed, 5000, 'proceed');
        s.removeAllListeners('data');
        return new Promise((resolve, reject) => {
          const t = tlsConnect({
            socket: s,
            servername: 'localhost',
            rejectUnauthorized: false,
            maxVersion: 'TLSv1.2',
            ciphers,
          });
          t.once('secureConnect', () => {
            const name = t.getCipher().name;
            t.destroy();
            resolve(name);
          });
          t.once('error', (e) => {
            s.destroy();
            reject(e);
          });
        });
      };
      await assert.rejects(starttls('ECDHE-ECDSA-AES128-SHA'), /handshake failure|no shared cipher/i);
      assert.equal(await starttls('ECDHE-ECDSA-AES256-GCM-SHA384'), 'ECDHE-ECDSA-AES256-GCM-SHA384');
    } finally {
      await server.destroy();
    }
  });
});

describe('failed authentications are logged for fail2ban', () => {
  test('one info line with the address, the username and the mechanism', async () => {
    const lines: string[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _enc, cb) {
        lines.push(...chunk.toString().split('\n').filter(Boolean));
        cb();
      },
    });
    const dataDir = mkdtempSync(join(tmpdir(), 'natter-test-'));
    const server = await startServer(
      {
        hosts: ['localhost'],
        dataDir,
        listeners: [{ type: 'c2s', port: 0, host: '127.0.0.1' }],
        log: { level: 'info' },
      },
      { logger: createLogger('info', sink) },
    );
    try {
      await server.addUser('romeo', PW);
      const target = server as unknown as TestServer;
      Object.assign(target, { domain: 'localhost' });
      await assert.rejects(
        TestClient.login(target, 'romeo', 'wrong', {
          transport: 'plain',
          localAddress: '127.0.0.8',
          mechanism: 'PLAIN',
        }),
      );
      await until(() => lines.some((l) => l.includes('"msg":"authentication failed"')), 'log line');
      const line = lines.find((l) => l.includes('"msg":"authentication failed"'))!;
      assert.ok(!line.includes('\n'));
      const entry = JSON.parse(line) as Record<string, unknown>;
      assert.equal(entry.level, 30);
      assert.equal(entry.ip, '127.0.0.8');
      assert.equal(entry.username, 'romeo');
      assert.match(String(entry.mechanism), /^(PLAIN|SCRAM-SHA-1|SCRAM-SHA-256)$/);
      // The filter documented in docs/reliability.md matches it (fail2ban's <HOST> as an address group).
      const failregex = /"ip":"(?<host>[0-9a-f.:]+)","username":.*"msg":"authentication failed"/;
      assert.equal(failregex.exec(line)?.groups?.host, '127.0.0.8');
      // A username cannot forge the address field.
      await assert.rejects(
        TestClient.login(target, 'x","ip":"10.9.9.9', 'wrong', {
          transport: 'plain',
          localAddress: '127.0.0.8',
          mechanism: 'PLAIN',
        }),
      );
      await until(
        () => lines.filter((l) => l.includes('"msg":"authentication failed"')).length >= 2,
        'second',
      );
      const forged = lines.filter((l) => l.includes('"msg":"authentication failed"'))[1]!;
      assert.equal(failregex.exec(forged)?.groups?.host, '127.0.0.8');
    } finally {
      await server.stop();
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
