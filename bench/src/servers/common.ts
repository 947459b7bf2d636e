/** Shared plumbing for server adapters: ports, processes, apt, certificates. */
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { createServer, connect } from 'node:net';
import { existsSync, openSync, writeFileSync, chmodSync, unlinkSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { ServerTarget } from './types.js';

export const execFileP = promisify(execFile);

export class AdapterError extends Error {
  override readonly name = 'AdapterError';
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/** A free TCP port in 20000–32000 (below Linux's ephemeral range, never 5222/5280). */
export async function freePort(taken: Set<number> = new Set()): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const port = 20000 + Math.floor(Math.random() * 12000);
    if (taken.has(port)) continue;
    const ok = await new Promise<boolean>((resolve) => {
      const s = createServer();
      s.once('error', () => resolve(false));
      s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
    });
    if (ok) {
      taken.add(port);
      return port;
    }
  }
  throw new AdapterError('no-port', 'no free port found in 20000-32000');
}

/** Three distinct free ports: client (plain/STARTTLS), client direct TLS, HTTP. */
export async function freePorts(): Promise<[number, number, number]> {
  const taken = new Set<number>();
  return [await freePort(taken), await freePort(taken), await freePort(taken)];
}

/** Resolves when something accepts TCP connections on host:port. */
export async function waitForPort(
  port: number,
  timeoutMs: number,
  alive: () => boolean = () => true,
  host = '127.0.0.1',
): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    if (!alive()) throw new AdapterError('exited', `server process exited before listening on ${port}`);
    const ok = await new Promise<boolean>((resolve) => {
      const s = connect({ host, port });
      s.once('connect', () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new AdapterError('start-timeout', `nothing listening on ${host}:${port} after ${timeoutMs} ms`);
}

export interface Spawned {
  child: ChildProcess;
  exited: boolean;
}

/**
 * Starts `argv` through `sh -c 'ulimit -n <hard>; exec …'` so the server gets the full open-files
 * limit; output goes to `logFile`. `prefix` runs before the shell (e.g. setpriv to drop privileges).
 */
export function spawnServer(
  argv: string[],
  opts: { cwd: string; env?: NodeJS.ProcessEnv; logFile: string; prefix?: string[] },
): Spawned {
  const fd = openSync(opts.logFile, 'a');
  const shell = ['/bin/sh', '-c', 'ulimit -n "$(ulimit -Hn)" && exec "$0" "$@"', ...argv];
  const full = [...(opts.prefix ?? []), ...shell];
  const child = spawn(full[0]!, full.slice(1), {
    cwd: opts.cwd,
    env: opts.env ?? process.env,
    stdio: ['ignore', fd, fd],
    detached: true,
  });
  const s: Spawned = { child, exited: false };
  child.once('exit', () => (s.exited = true));
  return s;
}

/** SIGTERM to the process group, SIGKILL after `graceMs`. */
export async function stopSpawned(s: Spawned | null, graceMs = 10_000): Promise<void> {
  if (!s || s.exited || s.child.pid === undefined) return;
  const pid = s.child.pid;
  const done = new Promise<void>((resolve) => s.child.once('exit', () => resolve()));
  try {
    process.kill(-pid, 'SIGTERM');
  } catch {
    /* gone */
  }
  const timer = setTimeout(() => {
    try {
      process.kill(-pid, 'SIGKILL');
    } catch {
      /* gone */
    }
  }, graceMs);
  await done;
  clearTimeout(timer);
}

/**
 * Installs Debian packages without starting their services: apt runs under the shared lock
 * /tmp/natter-apt.lock, with a policy-rc.d that forbids service starts (kept if one already exists).
 */
export async function aptInstall(packages: string[]): Promise<void> {
  if (process.getuid?.() !== 0)
    throw new AdapterError('not-root', `cannot install ${packages.join(' ')}: not root`);
  const policy = '/usr/sbin/policy-rc.d';
  const ours = !existsSync(policy);
  if (ours) {
    writeFileSync(policy, '#!/bin/sh\nexit 101\n');
    chmodSync(policy, 0o755);
  }
  try {
    const script =
      'apt-get install -y --no-install-recommends ' +
      packages.join(' ') +
      ' || (apt-get update && apt-get install -y --no-install-recommends ' +
      packages.join(' ') +
      ')';
    await execFileP('flock', ['/tmp/natter-apt.lock', 'sh', '-c', script], {
      env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
      timeout: 600_000,
      maxBuffer: 64 * 1024 * 1024,
    });
  } catch (e) {
    throw new AdapterError(
      'apt',
      `apt-get install ${packages.join(' ')} failed: ${(e as Error).message.slice(0, 500)}`,
    );
  } finally {
    if (ours) unlinkSync(policy);
  }
}

export function which(cmd: string): boolean {
  return ['/usr/bin', '/usr/sbin', '/usr/local/bin', '/bin', '/sbin'].some((d) => existsSync(join(d, cmd)));
}

/** Self-signed ECDSA P-256 certificate for `domain` (and *.domain); returns the file paths. */
export async function makeCert(
  dir: string,
  domain: string,
): Promise<{ cert: string; key: string; pem: string }> {
  mkdirSync(dir, { recursive: true });
  const cert = join(dir, `${domain}.crt`);
  const key = join(dir, `${domain}.key`);
  await execFileP('openssl', [
    'req',
    '-x509',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:prime256v1',
    '-nodes',
    '-days',
    '30',
    '-subj',
    `/CN=${domain}`,
    '-addext',
    `subjectAltName=DNS:${domain},DNS:*.${domain}`,
    '-keyout',
    key,
    '-out',
    cert,
  ]);
  const pem = join(dir, `${domain}.pem`);
  const { readFileSync } = await import('node:fs');
  writeFileSync(pem, readFileSync(cert, 'utf8') + readFileSync(key, 'utf8'));
  return { cert, key, pem };
}

/** Runs `job` over `items` with at most `k` in flight. */
export async function parallel<T>(items: T[], k: number, job: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(k, items.length) }, async () => {
      while (next < items.length) await job(items[next++]!);
    }),
  );
}

/** The target a started local server offers the scenarios (loopback, MUC on conference.<domain>). */
export function localTarget(
  name: string,
  port: number,
  tlsPort: number | undefined,
  domain: string,
  pid: number,
): ServerTarget {
  return { name, host: '127.0.0.1', port, tlsPort, domain, mucDomain: 'conference.' + domain, pid };
}
