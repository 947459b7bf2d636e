// Real third-party XMPP servers (Debian's Prosody and ejabberd) as federation peers of an
// in-process Natter, for the interop tests in test/interop/federation-*.test.ts.
//
// How the servers find each other without DNS, touching nothing shared on the machine:
// - Natter → peer: `s2s.routes[peerDomain] = '127.0.0.1:<peer s2s port>'` (static route).
// - peer → Natter: the peer resolves Natter's domain by name and connects to port 5269, as on the
//   public network (no SRV record exists, so it falls back to the domain's address and 5269). Natter's
//   s2s listener is therefore on port 5269 of a loopback address of its own (127.a.b.c, chosen at
//   random, retried if taken), and the peer reads that name from a hosts file of its own:
//   - Prosody: `unbound = { hoststxt = "<dir>/hosts" }` (libunbound, Debian's lua-unbound; without it
//     Prosody 0.12 ignores hosts files for s2s);
//   - ejabberd: it resolves with DNS (inet_res), then getaddrinfo, which reads /etc/hosts only; so it
//     runs in a private mount namespace (`unshare -m`, host network) with our file bind-mounted over
//     /etc/hosts. Nothing outside that namespace sees the change.
// The peers' MUC services (conference.<domain>) are reached the same ways: Natter routes them to the
// peer's s2s port, and the hosts file maps Natter's MUC domain to Natter's address too. In the CA
// mode each MUC service has a certificate of its own (Prosody: `ssl` in its Component section;
// ejabberd: one more `certfiles` entry), since it authenticates its own s2s streams.
// Both peers run behind a small shell watchdog that ends them when told to or when this test process
// is gone, however it ended.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { chmod, copyFile, mkdir, mkdtemp, readFile, rename, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { ensureDebianPackages } from '../../../../test/support/debian-packages.js';
import { writeAccount } from '../../../client/test/prosody.js';
import { startTestServer, type TestServer } from './test-server.js';
import { selfSigned } from './test-ca.js';
import type { Target } from './test-client.js';
import type { Logger } from '../../src/core/logger.js';
import type { ConfigInput } from '../../src/config.js';

const run = promisify(execFile);

/**
 * A third-party server federating with Natter; `port('c2s')` is its client port on 127.0.0.1. Both
 * serve vcard-temp (XEP-0054) for their users and a MUC service (XEP-0045) at `mucDomain`, reached
 * over the same s2s listener.
 */
export interface FederationPeer extends Target {
  name: 'prosody' | 'ejabberd';
  domain: string;
  /** Its MUC service, `conference.<domain>`. */
  mucDomain: string;
  /** Its s2s listener, as Natter's `s2s.routes` takes it (`127.0.0.1:<port>`). */
  s2sRoute: string;
  /** Creates an account on it. */
  addUser(user: string, password: string): Promise<void>;
  /** Its log so far (for failure messages). */
  log(): Promise<string>;
  stop(): Promise<void>;
}

export interface PeerOptions {
  /** The peer's own (only) domain. */
  domain: string;
  /** Names the peer resolves, e.g. Natter's domain → its loopback address: `{ 'natter.test': '127.3.4.5' }`. */
  hosts: Record<string, string>;
  /** Prosody log level / ejabberd loglevel (default info; NATTER_PEER_LOG_LEVEL=debug for debug). */
  logLevel?: 'debug' | 'info';
  /**
   * A CA-signed certificate for the peer's domain and the CA (PEM files, e.g. from makeTestCa): the
   * peer then trusts that CA and requires peers' certificates to verify (SASL EXTERNAL, no dialback).
   * Without it: a self-signed certificate and dialback. `muc`: a certificate from the same CA for
   * the MUC service (`conference.<domain>`), which authenticates its own s2s streams.
   */
  tls?: { cert: string; key: string; ca: string; muc?: { cert: string; key: string } };
}

/** The peers' MUC service domain. */
export const mucDomainOf = (domain: string): string => `conference.${domain}`;

export async function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, host, () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

async function portOpen(port: number, host = '127.0.0.1'): Promise<boolean> {
  return new Promise<boolean>((resolve) => {
    const s = net.connect(port, host, () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

async function waitForPorts(
  ports: number[],
  proc: ChildProcess,
  what: string,
  log: () => Promise<string>,
  timeoutMs: number,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (const port of ports) {
    while (!(await portOpen(port))) {
      if (proc.exitCode !== null || Date.now() > deadline)
        throw new Error(
          `${what} did not listen on ${port} (${proc.exitCode !== null ? `exited ${proc.exitCode}` : `${timeoutMs} ms`}):\n${(await log()).slice(-4000)}`,
        );
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

/** Ends a watchdog (and so its server) and waits for it, SIGKILL after `graceMs`. */
async function stopProcess(proc: ChildProcess, graceMs: number): Promise<void> {
  if (proc.exitCode !== null || proc.signalCode !== null) return;
  const exited = new Promise((r) => proc.once('exit', r));
  proc.kill('SIGTERM');
  const t = setTimeout(() => proc.kill('SIGKILL'), graceMs);
  await exited;
  clearTimeout(t);
}

const hostsFile = (hosts: Record<string, string>): string =>
  Object.entries(hosts)
    .map(([name, address]) => `${address} ${name}\n`)
    .join('');

/**
 * The peer's certificate files, in its own folder (which its user can read): copies of `tls` when
 * given, else a new self-signed pair.
 */
async function peerCertificate(
  certs: string,
  domain: string,
  tls: PeerOptions['tls'],
): Promise<{ cert: string; key: string; ca?: string; muc?: { cert: string; key: string } }> {
  if (!tls) {
    // Named <domain>.crt/.key: Prosody also finds certificates in its folder by name.
    const made = await selfSigned(certs, domain);
    const files = { cert: join(certs, `${domain}.crt`), key: join(certs, `${domain}.key`) };
    await rename(made.cert, files.cert);
    await rename(made.key, files.key);
    return files;
  }
  const files = {
    cert: join(certs, `${domain}.crt`),
    key: join(certs, `${domain}.key`),
    ca: join(certs, 'ca.crt'),
  };
  await copyFile(tls.cert, files.cert);
  await copyFile(tls.key, files.key);
  await copyFile(tls.ca, files.ca);
  if (!tls.muc) return files;
  const mucDomain = mucDomainOf(domain);
  const muc = { cert: join(certs, `${mucDomain}.crt`), key: join(certs, `${mucDomain}.key`) };
  await copyFile(tls.muc.cert, muc.cert);
  await copyFile(tls.muc.key, muc.key);
  return { ...files, muc };
}

const luaString = (s: string): string => `"${s.replace(/[\\"]/g, (c) => `\\${c}`)}"`;

/**
 * A Natter test server for `domain` whose s2s listener is on port 5269 of a loopback address of its
 * own (what peers resolve its domain to), every other listener on 127.0.0.1 port 0 as usual.
 */
export async function startNatterOn5269(
  domain: string,
  opts: { logger?: Logger; config?: Partial<ConfigInput> } = {},
): Promise<{ server: TestServer; address: string }> {
  let lastError: unknown;
  for (let attempt = 0; attempt < 10; attempt++) {
    const r = () => 2 + Math.floor(Math.random() * 250);
    const address = `127.${r()}.${r()}.${r()}`;
    const dataDir = await mkdtemp(join(tmpdir(), 'natter-test-'));
    try {
      const server = await startTestServer(
        {
          hosts: [domain],
          listeners: [
            { type: 'c2s', port: 0, host: '127.0.0.1' },
            { type: 'c2s-tls', port: 0, host: '127.0.0.1' },
            { type: 'http', port: 0, host: '127.0.0.1' },
            { type: 'admin', port: 0, host: '127.0.0.1' },
            { type: 's2s', port: 5269, host: address },
          ],
          ...opts.config,
        },
        { s2s: true, logger: opts.logger, dataDir },
      );
      return { server, address };
    } catch (err) {
      await rm(dataDir, { recursive: true, force: true });
      lastError = err;
      if ((err as NodeJS.ErrnoException).code !== 'EADDRINUSE' && !/EADDRINUSE/.test(String(err))) throw err;
    }
  }
  throw lastError;
}

/** Installs Prosody with libunbound support (services not started) when missing. */
export async function ensureProsodyForFederation(): Promise<void> {
  await ensureDebianPackages('/usr/bin/prosody', ['prosody', 'lua-event', 'lua-unbound']);
  await ensureDebianPackages('/usr/lib/x86_64-linux-gnu/lua/5.4/lunbound.so', ['lua-unbound']);
}

/**
 * A private Prosody 0.12 serving `opts.domain`: c2s and s2s on 127.0.0.1 (free ports), TLS required
 * on s2s, its own hosts file; a self-signed certificate and dialback (`s2s_secure_auth = false`), or
 * with `opts.tls` that certificate, the CA as `cafile` and `s2s_secure_auth = true` (SASL EXTERNAL).
 * mod_vcard (vcard-temp storage) and a MUC component at conference.<domain>.
 */
export async function startProsodyPeer(opts: PeerOptions): Promise<FederationPeer> {
  await ensureProsodyForFederation();
  const { domain } = opts;
  const dir = await mkdtemp(join(tmpdir(), 'natter-fed-prosody-'));
  try {
    const certs = join(dir, 'certs');
    await mkdir(certs);
    await mkdir(join(dir, 'data'));
    const cert = await peerCertificate(certs, domain, opts.tls);
    await writeFile(join(dir, 'hosts'), hostsFile(opts.hosts));
    const [c2s, s2s] = [await freePort(), await freePort()];
    const configFile = join(dir, 'prosody.cfg.lua');
    const logFile = join(dir, 'prosody.log');
    await writeFile(
      configFile,
      `-- generated by packages/server/test/support/federation-peers.ts
run_as_root = true
daemonize = false
pidfile = ${luaString(join(dir, 'prosody.pid'))}
data_path = ${luaString(join(dir, 'data'))}
certificates = ${luaString(certs)}
log = { ${opts.logLevel ?? (process.env.NATTER_PEER_LOG_LEVEL === 'debug' ? 'debug' : 'info')} = ${luaString(logFile)} }
admin_socket = ${luaString(join(dir, 'admin.sock'))}
interfaces = { "127.0.0.1" }
c2s_ports = { ${c2s} }
c2s_direct_tls_ports = { }
s2s_ports = { ${s2s} }
s2s_interfaces = { "127.0.0.1" }
s2s_direct_tls_ports = { }
component_ports = { }
http_ports = { }
https_ports = { }
modules_enabled = { "roster"; "saslauth"; "tls"; "dialback"; "disco"; "ping"; "posix"; "vcard"; }
modules_disabled = { "limits"; "offline"; }
c2s_require_encryption = false
s2s_require_encryption = true
${
  cert.ca
    ? '-- CA-signed certificates: require them to verify (SASL EXTERNAL; no dialback).\ns2s_secure_auth = true'
    : '-- Self-signed certificates on both sides: authenticate servers with dialback.\ns2s_secure_auth = false'
}
use_ipv6 = false
-- Resolve names from our own hosts file (peer domains have no DNS here).
unbound = { hoststxt = ${luaString(join(dir, 'hosts'))} }
authentication = "internal_hashed"
storage = "internal"
ssl = { key = ${luaString(cert.key)}; certificate = ${luaString(cert.cert)};${cert.ca ? ` cafile = ${luaString(cert.ca)};` : ''} }

VirtualHost ${luaString(domain)}

-- XEP-0045; locked new rooms (status 201) until their owner configures them, as by default.
Component ${luaString(mucDomainOf(domain))} "muc"
${
  cert.muc
    ? `ssl = { key = ${luaString(cert.muc.key)}; certificate = ${luaString(cert.muc.cert)}; cafile = ${luaString(cert.ca!)}; }\n`
    : ''
}`,
    );
    const watchdog = `prosody --config "$1" -F >"$3" 2>&1 & child=$!
trap 'kill $child 2>/dev/null; wait $child; exit 0' TERM INT
while kill -0 "$2" 2>/dev/null && kill -0 $child 2>/dev/null; do sleep 0.5 & wait $!; done
kill $child 2>/dev/null; wait $child`;
    const proc = spawn(
      'sh',
      ['-c', watchdog, 'prosody-watchdog', configFile, String(process.pid), join(dir, 'stdout.log')],
      { stdio: 'ignore' },
    );
    const killOnExit = () => proc.kill('SIGTERM');
    process.once('exit', killOnExit);
    const log = async () =>
      (await readFile(join(dir, 'stdout.log'), 'utf8').catch(() => '')) +
      (await readFile(logFile, 'utf8').catch(() => ''));
    try {
      await waitForPorts([c2s, s2s], proc, 'prosody', log, 20_000);
    } catch (err) {
      process.off('exit', killOnExit);
      await stopProcess(proc, 2000);
      throw err;
    }
    return {
      name: 'prosody',
      domain,
      mucDomain: mucDomainOf(domain),
      s2sRoute: `127.0.0.1:${s2s}`,
      port(kind) {
        if (kind !== 'c2s') throw new Error(`this Prosody has no ${kind} listener`);
        return c2s;
      },
      // Account files with a plaintext password, hashed by Prosody at the first login.
      addUser: (user, password) => writeAccount(dir, `${user}@${domain}`, password),
      log,
      async stop() {
        process.off('exit', killOnExit);
        await stopProcess(proc, 3000);
        if (!process.env.KEEP_PEER) await rm(dir, { recursive: true, force: true });
      },
    };
  } catch (err) {
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
}

/** Installs ejabberd (service not started) when missing. */
export async function ensureEjabberdForFederation(): Promise<void> {
  await ensureDebianPackages('/usr/sbin/ejabberdctl', ['ejabberd']);
}

/**
 * A private ejabberd 23.01 serving `opts.domain`: c2s and s2s on 127.0.0.1 (free ports), an HTTP API
 * on loopback for accounts, STARTTLS required on s2s; a self-signed certificate and mod_s2s_dialback,
 * or with `opts.tls` that certificate, the CA as `ca_file` and no dialback module (SASL EXTERNAL only).
 * It runs as user ejabberd (setpriv) in a private mount namespace whose /etc/hosts is our file.
 * mod_vcard and mod_muc at conference.<domain>.
 */
export async function startEjabberdPeer(opts: PeerOptions): Promise<FederationPeer> {
  await ensureEjabberdForFederation();
  const { domain } = opts;
  const dir = await mkdtemp(join(tmpdir(), 'natter-fed-ejabberd-'));
  try {
    for (const sub of ['spool', 'logs', 'home', 'certs']) await mkdir(join(dir, sub));
    const cert = await peerCertificate(join(dir, 'certs'), domain, opts.tls);
    // ejabberd wants certificate and key in one PEM file.
    const pem = join(dir, 'certs', `${domain}.pem`);
    await writeFile(pem, (await readFile(cert.cert, 'utf8')) + (await readFile(cert.key, 'utf8')));
    // The MUC service's own certificate, when given (ejabberd picks certificates by their names).
    const mucPem = join(dir, 'certs', `${mucDomainOf(domain)}.pem`);
    if (cert.muc)
      await writeFile(
        mucPem,
        (await readFile(cert.muc.cert, 'utf8')) + (await readFile(cert.muc.key, 'utf8')),
      );
    // The namespace's /etc/hosts: the usual loopback names plus ours.
    await writeFile(join(dir, 'hosts'), `127.0.0.1 localhost\n::1 localhost\n${hostsFile(opts.hosts)}`);
    const [c2s, s2s, http] = [await freePort(), await freePort(), await freePort()];
    const node = `natfed${c2s}@localhost`;
    // A fixed distribution port instead of epmd, so no epmd daemon outlives the test.
    const distPort = await freePort();
    await writeFile(
      join(dir, 'ejabberd.yml'),
      `# generated by packages/server/test/support/federation-peers.ts
hosts:
  - "${domain}"
loglevel: ${opts.logLevel ?? (process.env.NATTER_PEER_LOG_LEVEL === 'debug' ? 'debug' : 'info')}
log_rotate_count: 0
certfiles:
  - "${pem}"
${cert.muc ? `  - "${mucPem}"\n` : ''}${cert.ca ? `ca_file: "${cert.ca}"\n` : ''}auth_method: internal
s2s_use_starttls: required
s2s_access: all
s2s_dns_timeout: 2
s2s_dns_retries: 1
outgoing_s2s_families:
  - ipv4
acl:
  loopback:
    ip:
      - 127.0.0.0/8
access_rules:
  c2s:
    allow: all
  s2s:
    allow: all
api_permissions:
  "test provisioning":
    from:
      - mod_http_api
    who:
      ip: 127.0.0.0/8
    what: "*"
shaper_rules: {}
listen:
  - port: ${c2s}
    ip: "127.0.0.1"
    module: ejabberd_c2s
    shaper: none
    access: c2s
    starttls: true
  - port: ${s2s}
    ip: "127.0.0.1"
    module: ejabberd_s2s_in
    shaper: none
  - port: ${http}
    ip: "127.0.0.1"
    module: ejabberd_http
    request_handlers:
      /api: mod_http_api
modules:
  mod_roster:
    versioning: false
  mod_disco: {}
  mod_ping: {}
  mod_vcard:
    search: false
  mod_muc:
    host: "${mucDomainOf(domain)}"
${cert.ca ? '' : '  mod_s2s_dialback: {}\n'}  mod_admin_extra: {}
`,
    );
    await writeFile(
      join(dir, 'ejabberdctl.cfg'),
      `POLL=true\nINET_DIST_INTERFACE=127.0.0.1\nERL_DIST_PORT=${distPort}\n`,
    );
    await run('chown', ['-R', 'ejabberd:ejabberd', dir]);
    await chmod(dir, 0o755);

    // unshare -m: private mount namespace (same network) with our hosts file as /etc/hosts. setsid
    // makes ejabberd one session and process group, which the watchdog ends as a whole: SIGTERM, then
    // it waits for the Erlang VM (not only ejabberdctl's shell, which dies first) to be gone, SIGKILL
    // after 15 s. (ERL_DIST_PORT above: no epmd daemon is started.)
    const watchdog = `setsid unshare -m sh -c 'mount --bind "$1/hosts" /etc/hosts && exec setpriv --reuid=ejabberd --regid=ejabberd --init-groups ejabberdctl --config "$1/ejabberd.yml" --ctl-config "$1/ejabberdctl.cfg" --logs "$1/logs" --spool "$1/spool" --node "$2" foreground' ejabberd "$1" "$3" >"$1/stdout.log" 2>&1 & child=$!
alive() { ps --sid $child -o stat= 2>/dev/null | grep -q '^[^Z]'; }
stop() {
  kill -TERM -$child 2>/dev/null; wait $child
  n=0; while alive && [ $n -lt 75 ]; do sleep 0.2; n=$((n+1)); done
  kill -KILL -$child 2>/dev/null; exit 0
}
trap stop TERM INT
while kill -0 "$2" 2>/dev/null && kill -0 $child 2>/dev/null; do sleep 0.5 & wait $!; done
stop`;
    const proc = spawn('sh', ['-c', watchdog, 'ejabberd-watchdog', dir, String(process.pid), node], {
      stdio: 'ignore',
      env: { ...process.env, HOME: join(dir, 'home') },
    });
    const killOnExit = () => proc.kill('SIGTERM');
    process.once('exit', killOnExit);
    const log = async () =>
      (await readFile(join(dir, 'stdout.log'), 'utf8').catch(() => '')) +
      (await readFile(join(dir, 'logs', 'ejabberd.log'), 'utf8').catch(() => '')) +
      (await readFile(join(dir, 'logs', 'error.log'), 'utf8').catch(() => ''));
    try {
      await waitForPorts([c2s, s2s, http], proc, 'ejabberd', log, 90_000);
    } catch (err) {
      process.off('exit', killOnExit);
      await stopProcess(proc, 20_000);
      throw err;
    }
    return {
      name: 'ejabberd',
      domain,
      mucDomain: mucDomainOf(domain),
      s2sRoute: `127.0.0.1:${s2s}`,
      port(kind) {
        if (kind !== 'c2s') throw new Error(`this ejabberd has no ${kind} listener`);
        return c2s;
      },
      async addUser(user, password) {
        const res = await fetch(`http://127.0.0.1:${http}/api/register`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ user, host: domain, password }),
          signal: AbortSignal.timeout(30_000),
        });
        if (!res.ok) throw new Error(`ejabberd register: HTTP ${res.status} ${await res.text()}`);
      },
      log,
      async stop() {
        process.off('exit', killOnExit);
        await stopProcess(proc, 20_000);
        if (!process.env.KEEP_PEER) await rm(dir, { recursive: true, force: true });
      },
    };
  } catch (err) {
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
}
