import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { parseConfig, type ConfigInput } from './config.js';
import { addUserCommand, startMessage, startSummary, type StartSummary } from './start-summary.js';

/** The summary of a configuration whose listeners are bound to the ports they name. */
function summarize(input: ConfigInput, services: { domain: string; module: string }[] = []): StartSummary {
  const config = parseConfig(input);
  return startSummary({
    config,
    listeners: config.listeners.map((l) => ({ config: l, port: l.port })),
    modules: [],
    certificate: { cert: '/etc/natter/fullchain.pem', key: '/etc/natter/privkey.pem', generated: false },
    services,
  });
}

describe('the start summary and message', () => {
  test('a listener on every interface is reached at the first domain; a specific address as it is, IPv6 in brackets', () => {
    const s = summarize({
      hosts: ['chat.example.com', 'other.example'],
      listeners: [
        { type: 'c2s', port: 5222 },
        { type: 'c2s-tls', port: 5223, host: '::1' },
        { type: 'http', port: 5280, host: '0.0.0.0' },
        { type: 'admin', port: 5281 },
      ],
    });
    assert.deepEqual(s.clients, [
      { kind: 'c2s', address: 'chat.example.com:5222' },
      { kind: 'c2s-tls', address: '[::1]:5223' },
      { kind: 'websocket', address: 'ws://chat.example.com:5280/xmpp-websocket' },
      { kind: 'bosh', address: 'http://chat.example.com:5280/http-bind' },
    ]);
    assert.deepEqual(s.admin, {
      url: 'http://127.0.0.1:5281',
      metrics: 'http://127.0.0.1:5281/metrics',
      token: false,
    });
  });

  test('publicUrl gives the WebSocket and BOSH URLs (wss:// for https), with its path prefix', () => {
    const s = summarize({
      listeners: [
        { type: 'https', port: 5443, publicUrl: 'https://chat.example.com/xmpp/' },
        { type: 'http', port: 5280, publicUrl: 'http://10.0.0.5:8080' },
      ],
    });
    assert.deepEqual(
      s.clients.map((c) => c.address),
      [
        'wss://chat.example.com/xmpp/xmpp-websocket',
        'https://chat.example.com/xmpp/http-bind',
        'ws://10.0.0.5:8080/xmpp-websocket',
        'http://10.0.0.5:8080/http-bind',
      ],
    );
  });

  test('with the web-chat module, the message gives the page’s URL on each http(s) listener and who may log in there', () => {
    const config = parseConfig({
      listeners: [
        { type: 'http', port: 5280, host: '127.0.0.1' },
        { type: 'https', port: 5443, publicUrl: 'https://chat.example.com/' },
      ],
      modules: { 'web-chat': { path: '/chat/' } },
    });
    const s = startSummary({
      config,
      listeners: config.listeners.map((l) => ({ config: l, port: l.port })),
      modules: ['web-chat'],
      certificate: { cert: '/etc/natter/fullchain.pem', key: '/etc/natter/privkey.pem', generated: false },
      services: [],
    });
    assert.deepEqual(s.webChat, [
      { url: 'http://127.0.0.1:5280/chat/', logins: 'loopback' },
      { url: 'https://chat.example.com/chat/', logins: 'any' },
    ]);
    const text = startMessage(s, { addUser: 'natter user add USER@localhost' });
    assert.match(
      text,
      /^ {2}Web chat: +http:\/\/127\.0\.0\.1:5280\/chat\/ \(plain http: logins from this machine only; from others use https\), https:\/\/chat\.example\.com\/chat\/$/m,
    );
    assert.equal(summarize({}).webChat, undefined, 'no page, no line');
    assert.doesNotMatch(startMessage(summarize({}), { addUser: 'x' }), /Web chat/);
  });

  test('PostgreSQL is named by host, port and database, never by user or password', () => {
    const s = summarize({
      storage: { engine: 'postgres', url: 'postgres://natter:hunter2secret@db.internal:5433/chat' },
    });
    assert.equal(s.database, 'db.internal:5433, database chat');
    const text = startMessage(s, { addUser: 'natter user add USER@localhost' });
    assert.match(text, /^ {2}Storage: +PostgreSQL at db\.internal:5433, database chat$/m);
    assert.ok(!text.includes('hunter2secret') && !text.includes('natter:'), text);
  });

  test('the message names federation, services, the admin API, a generated certificate and the next step', () => {
    const s = summarize(
      {
        listeners: [
          { type: 'c2s', port: 5222 },
          { type: 'admin', port: 5281, token: 'a-long-admin-token-1234' },
        ],
        s2s: { enabled: false },
      },
      [
        { domain: 'conference.localhost', module: 'muc' },
        { domain: 'pubsub.localhost', module: 'pubsub' },
        { domain: 'upload.localhost', module: 'upload' },
      ],
    );
    s.certificate = { file: '/srv/data/certs/self-signed.crt', generated: true };
    const text = startMessage(s, {
      addUser: 'natter user add USER@localhost',
      logFile: '/var/log/natter.log',
    });
    assert.equal(
      text,
      [
        'Natter 0.1.0 is running.',
        '  Domains:     localhost',
        '  Clients:     localhost:5222 (STARTTLS)',
        '  Federation:  off (s2s.enabled is false)',
        '  Rooms (MUC): conference.localhost',
        '  Pubsub:      pubsub.localhost',
        '  File upload: upload.localhost',
        '  Admin API:   http://127.0.0.1:5281 (metrics: http://127.0.0.1:5281/metrics; bearer token required)',
        '  Certificate: self-signed, generated (/srv/data/certs/self-signed.crt); clients will warn. For a real one set tls.cert and tls.key',
        `  Storage:     SQLite, ${s.database}`,
        '  Logs:        /var/log/natter.log (JSON lines)',
        'Next: add a user (the password is asked for), then log in with any XMPP client:',
        '  natter user add USER@localhost',
        '',
      ].join('\n'),
    );
  });

  test('the add-user command: npm run from a checkout, natter otherwise, with the same configuration', () => {
    const repo = '/home/me/natter';
    const src = `${repo}/packages/server/src/cli.ts`;
    const dist = `${repo}/packages/server/dist/cli.js`;
    const cmd = (script: string | undefined, configPath: string | undefined, cwd: string) =>
      addUserCommand({ script, configPath, cwd }, 'localhost');
    assert.equal(cmd(src, undefined, repo), 'npm run natter -- user add USER@localhost');
    assert.equal(cmd(dist, undefined, repo), 'npm run natter -- user add USER@localhost');
    // npm runs the script from the repository's root: a relative path from elsewhere becomes absolute.
    assert.equal(cmd(src, 'dev.json', repo), 'npm run natter -- user add USER@localhost --config dev.json');
    assert.equal(
      cmd(src, 'dev.json', '/tmp/x'),
      'npm run natter -- user add USER@localhost --config /tmp/x/dev.json',
    );
    // The natter.json the command finds by itself is not named.
    assert.equal(cmd(src, 'natter.json', repo), 'npm run natter -- user add USER@localhost');
    assert.equal(cmd('/usr/local/bin/natter', 'natter.json', '/srv'), 'natter user add USER@localhost');
    assert.equal(
      cmd('/usr/lib/node_modules/@natter/server/dist/cli.js', '/etc/natter/natter.json', '/'),
      'natter user add USER@localhost --config /etc/natter/natter.json',
    );
    assert.equal(
      cmd(`/srv/app/node_modules/x/packages/server/dist/cli.js`, undefined, '/srv'),
      'natter user add USER@localhost',
    );
    assert.equal(
      cmd('/usr/local/bin/natter', "my conf's.json", '/srv'),
      `natter user add USER@localhost --config 'my conf'\\''s.json'`,
    );
  });
});
