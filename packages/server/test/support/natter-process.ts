import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { connect as netConnect } from 'node:net';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import { NS } from '@natter/protocol';
import { generate } from 'selfsigned';

const ROOT = fileURLToPath(new URL('../../../../', import.meta.url));
const CLI = join(ROOT, 'packages/server/src/cli.ts');

/** `natter <args>` as an operator runs it (TypeScript through tsx). */
export function spawnNatter(args: string[]): ChildProcess {
  return spawn(process.execPath, ['--import', 'tsx', '--conditions=source', CLI, ...args], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
}

/** Runs a `natter` command to its end: exit code, stdout, stderr. */
export function runNatter(args: string[]): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((resolve) => {
    const p = spawnNatter(args);
    let out = '';
    let err = '';
    p.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    p.stderr!.on('data', (d: Buffer) => (err += d.toString()));
    p.on('exit', (code) => resolve({ code, out, err }));
  });
}

/** A JSON log line of `natter serve`. */
export type LogLine = Record<string, unknown> & { msg?: string; level?: number };

/**
 * `natter serve` in a child process: its JSON log lines, parsed as they come, and waits on them
 * (no fixed sleeps). `mark()` then `waitFor(pred, mark)` waits for a line written after the mark.
 */
export class ServeProcess {
  readonly lines: LogLine[] = [];
  text = '';
  readonly exited: Promise<number | null>;
  private partial = '';
  private waiters: { from: number; pred: (l: LogLine) => boolean; resolve: (l: LogLine) => void }[] = [];

  private constructor(private readonly child: ChildProcess) {
    this.exited = new Promise((resolve) => child.on('exit', (code) => resolve(code)));
    child.stdout!.on('data', (d: Buffer) => this.onData(d.toString()));
    child.stderr!.on('data', (d: Buffer) => (this.text += d.toString()));
  }

  get pid(): number {
    return this.child.pid!;
  }

  /** Starts `natter serve --config FILE [args]` and waits for its "started" line. */
  static async start(
    configFile: string,
    args: string[] = [],
    what = 'natter started',
  ): Promise<ServeProcess> {
    const p = new ServeProcess(spawnNatter(['serve', '--config', configFile, ...args]));
    const started = p.waitFor((l) => l.msg === what, 0, 90_000);
    const failed = p.exited.then((code) => {
      throw new Error(`natter serve exited (${code}) before starting:\n${p.text.slice(-4000)}`);
    });
    await Promise.race([started, failed]);
    return p;
  }

  private onData(chunk: string): void {
    this.text += chunk;
    const parts = (this.partial + chunk).split('\n');
    this.partial = parts.pop()!;
    for (const part of parts) {
      if (!part.startsWith('{')) continue;
      this.lines.push(JSON.parse(part) as LogLine);
    }
    this.check();
  }

  private check(): void {
    this.waiters = this.waiters.filter((w) => {
      const hit = this.lines.slice(w.from).find(w.pred);
      if (hit) w.resolve(hit);
      return !hit;
    });
  }

  /** The number of lines so far: pass it to `waitFor` to wait for a line written later. */
  mark(): number {
    return this.lines.length;
  }

  waitFor(pred: (l: LogLine) => boolean, from = 0, ms = 20_000, what = 'a log line'): Promise<LogLine> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`timed out waiting for ${what}\n--- log ---\n${this.text.slice(-4000)}`)),
        ms,
      );
      this.waiters.push({
        from,
        pred,
        resolve: (l) => {
          clearTimeout(timer);
          resolve(l);
        },
      });
      this.check();
    });
  }

  /** The port of the first listener of a kind, from the "natter started" line (`kind:port`). */
  port(kind: string): number {
    const started = this.lines.find((l) => l.msg === 'natter started');
    const entry = (started?.listeners as string[] | undefined)?.find((l) => l.startsWith(`${kind}:`));
    if (!entry) throw new Error(`no ${kind} listener in the log`);
    return Number(entry.split(':')[1]);
  }

  signal(sig: NodeJS.Signals): void {
    this.child.kill(sig);
  }

  async stop(): Promise<number | null> {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGTERM');
    return this.exited;
  }
}

/** Connects with TLS (any certificate accepted) and resolves once the handshake is done. */
export function tlsHandshake(port: number, servername?: string): Promise<TLSSocket> {
  return new Promise((resolve, reject) => {
    const s = tlsConnect({
      host: '127.0.0.1',
      port,
      rejectUnauthorized: false,
      ...(servername ? { servername } : {}),
    });
    s.once('secureConnect', () => resolve(s));
    s.once('error', reject);
  });
}

/** The SHA-256 fingerprint of the certificate a TLS server presents (and closes the connection). */
export async function servedFingerprint(port: number, servername?: string): Promise<string> {
  const s = await tlsHandshake(port, servername);
  try {
    return s.getPeerX509Certificate()!.fingerprint256;
  } finally {
    s.destroy();
  }
}

/**
 * The SHA-256 fingerprint of the certificate a stream gets on a STARTTLS port for `domain` (sent
 * as SNI too, unless `sni` is false): a client stream, or with `ns` 'jabber:server' a
 * server-to-server one. Closes the connection.
 */
export function startTlsFingerprint(
  port: number,
  domain: string,
  ns: 'jabber:client' | 'jabber:server' = 'jabber:client',
  sni = true,
): Promise<string> {
  return new Promise((resolve, reject) => {
    const raw = netConnect({ host: '127.0.0.1', port });
    raw.once('error', reject);
    let seen = '';
    const onData = (d: Buffer) => {
      seen += d.toString();
      if (seen.includes('</stream:features>') && !seen.includes('proceed')) {
        raw.write(`<starttls xmlns='${NS.tls}'/>`);
      } else if (seen.includes('<proceed')) {
        raw.off('data', onData);
        const s = tlsConnect({
          socket: raw,
          ...(sni ? { servername: domain } : {}),
          rejectUnauthorized: false,
        });
        s.once('secureConnect', () => {
          resolve(s.getPeerX509Certificate()!.fingerprint256);
          s.destroy();
        });
        s.once('error', reject);
      }
    };
    raw.on('data', onData);
    raw.write(
      `<?xml version='1.0'?><stream:stream xmlns='${ns}' xmlns:stream='${NS.stream}' to='${domain}' version='1.0'>`,
    );
  });
}

/**
 * A self-signed certificate for `names` (the first is the CN) valid from `notBefore` to `notAfter`,
 * written to `<dir>/<stem>.crt` and `.key`; returns the paths and the PEM.
 */
export async function datedCertificate(
  dir: string,
  stem: string,
  names: string[],
  notBefore: Date,
  notAfter: Date,
): Promise<{ cert: string; key: string; certPem: string; keyPem: string }> {
  await mkdir(dir, { recursive: true });
  const pems = await generate([{ name: 'commonName', value: names[0]! }], {
    keyType: 'ec',
    curve: 'P-256',
    algorithm: 'sha256',
    notBeforeDate: notBefore,
    notAfterDate: notAfter,
    extensions: [
      { name: 'basicConstraints', cA: false },
      { name: 'keyUsage', digitalSignature: true, keyEncipherment: true },
      { name: 'extKeyUsage', serverAuth: true, clientAuth: true },
      { name: 'subjectAltName', altNames: names.map((value) => ({ type: 2 as const, value })) },
    ],
  });
  const files = { cert: join(dir, `${stem}.crt`), key: join(dir, `${stem}.key`) };
  await writeFile(files.cert, pems.cert);
  await writeFile(files.key, pems.private, { mode: 0o600 });
  return { ...files, certPem: pems.cert, keyPem: pems.private };
}

export const DAY_MS = 24 * 3600 * 1000;
