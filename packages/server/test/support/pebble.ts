// Pebble, Let's Encrypt's ACME test server (Debian's `pebble` package, installed on demand), with
// pebble-challtestsrv from the same package as its DNS server: every name resolves to 127.0.0.1
// (IPv4 only) unless a test says otherwise. Pebble validates HTTP-01 challenges by fetching
// http://<name>:<httpPort>/.well-known/acme-challenge/<token>, as Let's Encrypt does on port 80.
import { spawn, type ChildProcess } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { request as httpRequest } from 'node:http';
import { request } from 'node:https';
import { join } from 'node:path';
import { readFileSync } from 'node:fs';
import { ensureDebianPackages } from '../../../../test/support/debian-packages.js';
import { freePort } from './federation-peers.js';
import { makeTestCa } from './test-ca.js';

export const PEBBLE = '/usr/bin/pebble';

/** Installs Debian's pebble when missing; a reason to skip when that fails, else undefined. */
export async function ensurePebble(): Promise<string | undefined> {
  try {
    await ensureDebianPackages(PEBBLE, ['pebble']);
    return undefined;
  } catch (err) {
    return `pebble could not be installed with apt: ${(err as Error).message}`;
  }
}

export interface Pebble {
  /** The ACME directory URL. */
  directory: string;
  /** The CA file that signs Pebble's own HTTPS certificate (`tls.acme.caFile`). */
  caFile: string;
  /** The root that signs the certificates Pebble issues (fetched from its management API). */
  issuingRoot(): Promise<string>;
  /** Makes `name` resolve to `address` instead of 127.0.0.1. */
  resolve(name: string, address: string): Promise<void>;
  stop(): Promise<void>;
}

/** Waits for a line matching `ready` on the process's output; fails if it exits first. */
function started(child: ChildProcess, ready: RegExp, what: string, ms = 20_000): Promise<void> {
  return new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`${what} did not start:\n${out}`)), ms);
    const onData = (d: Buffer) => {
      out += d.toString();
      if (ready.test(out)) {
        clearTimeout(timer);
        resolve();
      }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${what} exited (${code}) before it was ready:\n${out}`));
    });
  });
}

function stopProcess(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    child.once('exit', () => resolve());
    child.kill('SIGTERM');
  });
}

/** GET over HTTPS trusting `ca`, or POST `body` as JSON. */
function fetchText(url: string, ca: Buffer, body?: unknown): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = request(url, { ca, method: body === undefined ? 'GET' : 'POST' }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (text += d));
      res.on('end', () =>
        (res.statusCode ?? 0) < 300 ? resolve(text) : reject(new Error(`${url}: ${res.statusCode} ${text}`)),
      );
    });
    req.on('error', reject);
    req.end(body === undefined ? undefined : JSON.stringify(body));
  });
}

/** POSTs `body` as JSON over plain HTTP (challtestsrv's management API). */
function postJson(url: string, body: unknown): Promise<void> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { method: 'POST' }, (res) => {
      res.resume();
      res.on('end', () =>
        (res.statusCode ?? 0) < 300 ? resolve() : reject(new Error(`${url}: ${res.statusCode}`)),
      );
    });
    req.on('error', reject);
    req.end(JSON.stringify(body));
  });
}

/**
 * Starts challtestsrv and Pebble (in `dir`), Pebble validating HTTP-01 on `httpPort`. Ports are
 * chosen free; should one be taken meanwhile, the start is tried again with others.
 */
export async function startPebble(dir: string, httpPort: number): Promise<Pebble> {
  const tls = await makeTestCa(join(dir, 'pebble-tls'), ['127.0.0.1']);
  const caFile = tls.caCert;
  const ca = readFileSync(caFile);
  let lastError: Error | undefined;
  for (let attempt = 0; attempt < 3; attempt++) {
    const [dnsPort, dnsManagement, listen, management] = [
      await freePort(),
      await freePort(),
      await freePort(),
      await freePort(),
    ];
    const dns = spawn(
      'pebble-challtestsrv',
      [
        '-dns01',
        `127.0.0.1:${dnsPort}`,
        '-http01',
        '',
        '-https01',
        '',
        '-tlsalpn01',
        '',
        '-management',
        `127.0.0.1:${dnsManagement}`,
        '-defaultIPv4',
        '127.0.0.1',
        '-defaultIPv6',
        '',
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    try {
      await started(dns, /Starting management server/, 'pebble-challtestsrv');
    } catch (err) {
      lastError = err as Error;
      await stopProcess(dns);
      continue;
    }
    const config = join(dir, `pebble-${attempt}.json`);
    await writeFile(
      config,
      JSON.stringify({
        pebble: {
          listenAddress: `127.0.0.1:${listen}`,
          managementListenAddress: `127.0.0.1:${management}`,
          certificate: tls.certs['127.0.0.1']!.cert,
          privateKey: tls.certs['127.0.0.1']!.key,
          httpPort,
          tlsPort: 5001,
          ocspResponderURL: '',
          externalAccountBindingRequired: false,
        },
      }),
    );
    const pebble = spawn(PEBBLE, ['-config', config, '-dnsserver', `127.0.0.1:${dnsPort}`], {
      stdio: ['ignore', 'pipe', 'pipe'],
      // No random sleep before each validation (up to 15 s otherwise).
      env: { ...process.env, PEBBLE_VA_NOSLEEP: '1' },
    });
    try {
      await started(pebble, /ACME directory available at/, 'pebble');
    } catch (err) {
      lastError = err as Error;
      await stopProcess(pebble);
      await stopProcess(dns);
      continue;
    }
    return {
      directory: `https://127.0.0.1:${listen}/dir`,
      caFile,
      issuingRoot: () => fetchText(`https://127.0.0.1:${management}/roots/0`, ca),
      resolve: (name, address) =>
        postJson(`http://127.0.0.1:${dnsManagement}/add-a`, { host: `${name}.`, addresses: [address] }),
      async stop() {
        await stopProcess(pebble);
        await stopProcess(dns);
      },
    };
  }
  throw lastError ?? new Error('pebble did not start');
}
