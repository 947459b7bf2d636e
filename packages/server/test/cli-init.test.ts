// `natter init DOMAIN`: the files of a production install. The configuration passes `natter check`,
// the systemd unit passes `systemd-analyze verify` (where the machine has it), compose.yaml parses
// and takes its password from the env file; the DNS records and host-meta are printed.
import { test, describe, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse } from 'yaml';
import { runNatter } from './support/run-cli.js';
import { dnsRecords } from '../src/init.js';
import { NATTER_VERSION } from '../src/version.js';

const systemdAnalyze = spawnSync('systemd-analyze', ['--version']).status === 0;

describe('natter init', () => {
  const dir = mkdtempSync(join(tmpdir(), 'natter-init-'));
  after(() => rmSync(dir, { recursive: true, force: true }));
  const out = join(dir, 'chat');
  let printed = '';

  test('writes the configuration, the unit, the Dockerfile, compose.yaml and the env file; prints DNS and host-meta', async () => {
    const r = await runNatter(['init', 'Example.org', '--dir', out, '--postgres']);
    assert.equal(r.code, 0, r.stderr);
    printed = r.stdout;
    for (const f of [
      'natter.yaml',
      'natter.service',
      'Dockerfile',
      'compose.yaml',
      '.dockerignore',
      'postgres.env',
    ])
      assert.ok(existsSync(join(out, f)), f);
    // Secrets are not for everyone's eyes.
    assert.equal(statSync(join(out, 'postgres.env')).mode & 0o777, 0o600);
    assert.equal(statSync(join(out, 'natter.yaml')).mode & 0o077, 0o040);
    for (const line of [
      '_xmpp-client._tcp.example.org. 3600 IN SRV 0 5 5222 example.org.',
      '_xmpps-client._tcp.example.org. 3600 IN SRV 0 5 5223 example.org.',
      '_xmpp-server._tcp.example.org. 3600 IN SRV 0 5 5269 example.org.',
      'conference.example.org. 3600 IN CNAME example.org.',
      'pubsub.example.org. 3600 IN CNAME example.org.',
      'upload.example.org. 3600 IN CNAME example.org.',
    ])
      assert.ok(printed.includes(line), `missing "${line}" in:\n${printed}`);
    assert.match(printed, /https:\/\/example\.org\/\.well-known\/host-meta/);
    // The host-meta JSON, as the https listener serves it.
    const json = JSON.parse(printed.slice(printed.indexOf('{\n'))) as {
      links: { rel: string; href: string }[];
    };
    assert.deepEqual(json.links, [
      { rel: 'urn:xmpp:alt-connections:websocket', href: 'wss://example.org:5443/xmpp-websocket' },
      { rel: 'urn:xmpp:alt-connections:xbosh', href: 'https://example.org:5443/http-bind' },
    ]);
  });

  test('the configuration passes natter check, warning only that the certificate is still to be set', async () => {
    const r = await runNatter(['check', '--config', join(out, 'natter.yaml')]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /configuration OK .*hosts example\.org/);
    const warnings = r.stderr.split('\n').filter((l) => l.startsWith('warning: '));
    assert.equal(warnings.length, 1, r.stderr);
    assert.match(warnings[0]!, /^warning: tls\.cert: /);
    const config = parse(readFileSync(join(out, 'natter.yaml'), 'utf8')) as {
      storage: { engine: string };
      s2s: { dialbackSecret: string };
    };
    assert.equal(config.storage.engine, 'postgres');
    assert.ok(config.s2s.dialbackSecret.length >= 16);
  });

  test(
    'the systemd unit is hardened and passes systemd-analyze verify',
    { skip: !systemdAnalyze && 'systemd-analyze is not installed' },
    () => {
      const unit = join(out, 'natter.service');
      const text = readFileSync(unit, 'utf8');
      for (const line of [
        'User=natter',
        'ProtectSystem=strict',
        'ReadWritePaths=/var/lib/natter',
        'NoNewPrivileges=yes',
        'PrivateTmp=yes',
        'ProtectHome=yes',
        'CapabilityBoundingSet=\n',
        'ExecReload=/bin/kill -HUP $MAINPID',
        'Restart=on-failure',
        'LimitNOFILE=',
      ])
        assert.ok(text.includes(line), line);
      const r = spawnSync('systemd-analyze', ['verify', unit], { encoding: 'utf8' });
      assert.equal(r.status, 0, r.stderr);
      assert.equal(r.stderr.trim(), '', r.stderr);
    },
  );

  test('the unit file is checked even without systemd-analyze: every line a section, comment or key=value', () => {
    for (const line of readFileSync(join(out, 'natter.service'), 'utf8').split('\n'))
      assert.match(line, /^$|^#|^\[(Unit|Service|Install)\]$|^[A-Za-z]+=/, line);
  });

  test('compose.yaml parses: natter and postgres share the env file holding the generated password', () => {
    const compose = parse(readFileSync(join(out, 'compose.yaml'), 'utf8')) as {
      services: Record<
        string,
        {
          env_file?: string;
          environment?: Record<string, string>;
          ports?: string[];
          volumes?: string[];
          build?: string;
          image?: string;
        }
      >;
      volumes: Record<string, unknown>;
    };
    const { natter, postgres } = compose.services;
    assert.ok(natter && postgres);
    assert.equal(natter.build, '.');
    assert.equal(natter.env_file, 'postgres.env');
    assert.equal(postgres.env_file, 'postgres.env');
    assert.equal(natter.environment?.PGHOST, 'postgres');
    assert.deepEqual(natter.ports, ['5222:5222', '5223:5223', '5443:5443', '5269:5269']);
    assert.ok(natter.volumes?.includes('natter-data:/var/lib/natter'));
    assert.ok(postgres.volumes?.includes('postgres-data:/var/lib/postgresql/data'));
    assert.deepEqual(Object.keys(compose.volumes).sort(), ['natter-data', 'postgres-data']);
    const env = readFileSync(join(out, 'postgres.env'), 'utf8');
    const password = /^POSTGRES_PASSWORD=(\S{20,})$/m.exec(env)?.[1];
    assert.ok(password, env);
    assert.ok(env.includes(`PGPASSWORD=${password}\n`));
  });

  test('the Dockerfile installs this version, runs as a user, keeps data in a volume and checks /health', () => {
    const text = readFileSync(join(out, 'Dockerfile'), 'utf8');
    assert.match(text, /^FROM node:20-slim$/m);
    assert.ok(text.includes(`ARG NATTER_VERSION=${NATTER_VERSION}\n`));
    assert.match(text, /npm install -g @natter\/server@\$\{NATTER_VERSION\}/);
    assert.match(text, /^USER node$/m);
    assert.match(text, /^VOLUME \["\/var\/lib\/natter"\]$/m);
    assert.match(text, /^EXPOSE 5222 5223 5443 5269$/m);
    assert.match(text, /^HEALTHCHECK .*\n.*\/health/m);
    // Only the configuration goes into the build context, not the database password.
    assert.equal(readFileSync(join(out, '.dockerignore'), 'utf8'), '*\n!natter.yaml\n');
  });

  test('refuses to overwrite without --force; --force keeps the PostgreSQL password', async () => {
    const before = readFileSync(join(out, 'postgres.env'), 'utf8');
    const refused = await runNatter(['init', 'example.org', '--dir', out, '--postgres']);
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /already exist.*--force/);
    const forced = await runNatter(['init', 'example.org', '--dir', out, '--postgres', '--force']);
    assert.equal(forced.code, 0, forced.stderr);
    assert.equal(readFileSync(join(out, 'postgres.env'), 'utf8'), before);
  });

  test('without --postgres: SQLite, and compose.yaml runs Natter alone; the default directory is natter-DOMAIN', async () => {
    const r = await runNatter(['init', 'chat.example.net'], dir);
    assert.equal(r.code, 0, r.stderr);
    const d = join(dir, 'natter-chat.example.net');
    assert.ok(!existsSync(join(d, 'postgres.env')));
    const compose = parse(readFileSync(join(d, 'compose.yaml'), 'utf8')) as {
      services: Record<string, unknown>;
    };
    assert.deepEqual(Object.keys(compose.services), ['natter']);
    const config = parse(readFileSync(join(d, 'natter.yaml'), 'utf8')) as { storage: { engine: string } };
    assert.equal(config.storage.engine, 'sqlite');
  });

  test('a name that is not a domain is refused', async () => {
    const r = await runNatter(['init', 'not a domain', '--dir', join(dir, 'x')]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /not a domain name/);
  });

  test('dnsRecords: SRV for each public c2s/s2s listener, direct TLS ones included, toward a given target', () => {
    assert.deepEqual(
      dnsRecords('example.com', 'xmpp.example.com', [
        { type: 'c2s', port: 5222 },
        { type: 's2s-tls', port: 5270 },
        { type: 'admin', port: 5281, local: true },
      ]).slice(0, 2),
      [
        '_xmpp-client._tcp.example.com. 3600 IN SRV 0 5 5222 xmpp.example.com.',
        '_xmpps-server._tcp.example.com. 3600 IN SRV 0 5 5270 xmpp.example.com.',
      ],
    );
  });
});
