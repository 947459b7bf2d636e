import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import type { ConfigInput } from '../../src/config.js';
import type { Target } from './test-client.js';

const ROOT = fileURLToPath(new URL('../../../../', import.meta.url));
const CLI = join(ROOT, 'packages/server/src/cli.ts');

/** Polls `fn` every 20 ms; fails with the end of `log()` after `ms`. */
export async function until(fn: () => boolean, what: string, log: () => string, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!fn()) {
    if (Date.now() > end)
      throw new Error(`timed out waiting for ${what}\n--- log ---\n${log().slice(-4000)}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/**
 * A configuration file for one node of a cluster over Redis, in a new directory (pushed on
 * `dirs` for removal): PostgreSQL storage, a c2s listener on a free loopback port, `extra` merged
 * over the rest.
 */
export function clusterNodeConfig(
  dirs: string[],
  opts: { name: string; redis: string; prefix: string; postgres: string; extra?: Partial<ConfigInput> },
): string {
  const dir = mkdtempSync(join(tmpdir(), `natter-redis-${opts.name}-`));
  dirs.push(dir);
  const file = join(dir, 'natter.json');
  writeFileSync(
    file,
    JSON.stringify({
      hosts: ['localhost'],
      dataDir: dir,
      storage: { engine: 'postgres', url: opts.postgres },
      listeners: [{ type: 'c2s', port: 0, host: '127.0.0.1' }],
      s2s: { enabled: false },
      cluster: { nodeId: opts.name, redis: opts.redis, prefix: opts.prefix },
      modules: { ping: { idleMs: 0 } },
      log: { level: 'info' },
      ...opts.extra,
    }),
  );
  return file;
}

/** Deletes a test run's Redis keys. */
export async function removeRedisKeys(url: string, prefix: string): Promise<void> {
  const r = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 1 });
  try {
    await r.connect();
    const keys = await r.keys(`${prefix}:*`);
    if (keys.length > 0) await r.del(...keys);
  } finally {
    r.disconnect();
  }
}

/** One `natter serve --config FILE` process, a node of the cluster. */
export class NodeProcess {
  log = '';
  port = 0;
  node = '';
  exitCode: number | null | undefined = undefined;
  private child!: ChildProcess;
  private exited!: Promise<number | null>;
  private partial = '';

  constructor(readonly configFile: string) {}

  async start(): Promise<void> {
    this.log = '';
    this.port = 0;
    this.exitCode = undefined;
    this.child = spawn(
      process.execPath,
      ['--import', 'tsx', '--conditions=source', CLI, 'serve', '--config', this.configFile],
      { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    this.exited = new Promise((resolve) =>
      this.child.on('exit', (code, signal) => {
        this.exitCode = code ?? (signal ? -1 : null);
        resolve(code);
      }),
    );
    this.child.stdout!.on('data', (d: Buffer) => {
      this.log += d.toString();
      const lines = (this.partial + d.toString()).split('\n');
      this.partial = lines.pop()!;
      for (const line of lines) {
        if (!line.includes('"natter started"')) continue;
        const e = JSON.parse(line) as { listeners: string[]; node: string };
        this.port = Number(e.listeners.find((l) => l.startsWith('c2s:'))!.slice(4));
        this.node = e.node;
      }
    });
    this.child.stderr!.on('data', (d: Buffer) => (this.log += d.toString()));
    await this.until(() => this.port !== 0 || this.exitCode !== undefined, 'the node to start', 30_000);
    assert.notEqual(this.port, 0, `the node started\n${this.log}`);
  }

  get target(): Target {
    return { domain: 'localhost', port: () => this.port };
  }

  /** How many log lines contain `text`. */
  count(text: string): number {
    return this.log.split('\n').filter((l) => l.includes(text)).length;
  }

  until(fn: () => boolean, what: string, ms = 10_000): Promise<void> {
    return until(fn, what, () => this.log, ms);
  }

  /** Stops (SIGSTOP) or resumes (SIGCONT) the process: a node that stalls without dying. */
  pause(on: boolean): void {
    this.child.kill(on ? 'SIGSTOP' : 'SIGCONT');
  }

  kill9(): Promise<number | null> {
    this.child.kill('SIGKILL');
    return this.exited;
  }

  async stop(): Promise<number | null> {
    // Never started (a test failed before): nothing to stop.
    if (this.child === undefined) return 0;
    if (this.exitCode !== undefined) return this.exitCode;
    this.child.kill('SIGTERM');
    return this.exited;
  }
}
