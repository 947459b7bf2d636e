// Runs software nobody here wrote (Debian packages) as real processes beside a test server:
// installs the package on demand, starts the program under a watchdog that ends it with the test
// process, waits for a port, and stops it. Used by the component interop tests.
import { spawn, type ChildProcess } from 'node:child_process';
import net from 'node:net';

export { ensureDebianPackages } from '../../../../test/support/debian-packages.js';

/** Resolves when something accepts TCP connections on host:port. */
export async function waitForPort(
  host: string,
  port: number,
  proc: ChildProcess,
  output: () => string,
  timeoutMs = 20_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (proc.exitCode !== null) throw new Error(`process exited (${proc.exitCode}):\n${output()}`);
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect(port, host, () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`nothing listened on ${host}:${port} within ${timeoutMs} ms:\n${output()}`);
}

/** True when nothing listens on host:port (so a program of ours may bind it). */
export function portIsFree(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.once('error', () => resolve(false));
    srv.listen(port, host, () => srv.close(() => resolve(true)));
  });
}

/**
 * A loopback address of its own (all of 127.0.0.0/8 is on `lo`) where `port` is free, so a program
 * that insists on a well-known port (biboumi looks for IRC on 6697, 6670 then 6667) can have it
 * without colliding with anything else on the machine.
 */
export async function freeLoopbackAddress(port: number): Promise<string> {
  for (let i = 0; i < 50; i++) {
    const host = `127.${1 + Math.floor(Math.random() * 250)}.${Math.floor(Math.random() * 250)}.${2 + Math.floor(Math.random() * 250)}`;
    if (await portIsFree(host, port)) return host;
  }
  throw new Error(`no loopback address with port ${port} free`);
}

export interface Managed {
  proc: ChildProcess;
  /** stdout and stderr so far. */
  output(): string;
  /** Resolves when `text` appears in the output (bounded). */
  waitForOutput(text: string | RegExp, timeoutMs?: number): Promise<void>;
  stop(): Promise<void>;
}

/**
 * Starts `command args` under a small shell watchdog that ends it when told (SIGTERM) or when this
 * test process is gone however it ended (a runner's timeout kills us without exit handlers).
 */
export function startManaged(command: string, args: string[], opts: { cwd?: string } = {}): Managed {
  // SIGTERM first (biboumi says goodbye to its IRC servers), SIGKILL after three seconds.
  const watchdog = `"$@" & child=$!
end() { kill $child 2>/dev/null; i=0; while kill -0 $child 2>/dev/null && [ $i -lt 30 ]; do sleep 0.1; i=$((i+1)); done; kill -9 $child 2>/dev/null; wait $child; }
trap 'end; exit 0' TERM INT
while kill -0 ${process.pid} 2>/dev/null && kill -0 $child 2>/dev/null; do sleep 0.5 & wait $!; done
end`;
  const proc = spawn('sh', ['-c', watchdog, 'natter-watchdog', command, ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    cwd: opts.cwd,
  });
  let out = '';
  const listeners = new Set<() => void>();
  const onData = (d: Buffer) => {
    out += d.toString();
    if (out.length > 1_000_000) out = out.slice(-500_000);
    for (const l of listeners) l();
  };
  proc.stdout?.on('data', onData);
  proc.stderr?.on('data', onData);
  const killOnExit = () => proc.kill('SIGTERM');
  process.once('exit', killOnExit);
  return {
    proc,
    output: () => out,
    waitForOutput(text, timeoutMs = 20_000) {
      const seen = () => (typeof text === 'string' ? out.includes(text) : text.test(out));
      if (seen()) return Promise.resolve();
      return new Promise((resolve, reject) => {
        const done = () => {
          listeners.delete(check);
          proc.off('exit', exited);
          clearTimeout(timer);
        };
        const check = () => {
          if (seen()) {
            done();
            resolve();
          }
        };
        const exited = () => {
          done();
          reject(new Error(`${command} exited before printing ${String(text)}:\n${out}`));
        };
        const timer = setTimeout(() => {
          done();
          reject(new Error(`${command} did not print ${String(text)} within ${timeoutMs} ms:\n${out}`));
        }, timeoutMs);
        listeners.add(check);
        proc.once('exit', exited);
      });
    },
    async stop() {
      process.off('exit', killOnExit);
      if (proc.exitCode !== null || proc.signalCode !== null) return;
      const exited = new Promise((r) => proc.once('exit', r));
      proc.kill('SIGTERM');
      const t = setTimeout(() => proc.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(t);
    },
  };
}

/**
 * Runs a scripted client (a Python script of this folder) to its end: it prints one JSON object
 * per line and finishes with `done`, or prints `{"error": …}`. Resolves with the objects; rejects
 * with the whole output when it failed or did not finish within `timeoutMs`.
 */
export async function runScriptedClient(
  script: string,
  args: string[],
  timeoutMs = 60_000,
): Promise<{ lines: Record<string, unknown>[]; output: string }> {
  const proc = startManaged('/usr/bin/python3', ['-u', script, ...args]);
  try {
    await proc.waitForOutput(/^(done|\{"error".*)$/m, timeoutMs);
  } finally {
    await proc.stop();
  }
  const output = proc.output();
  const lines = output
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>);
  if (lines.some((l) => 'error' in l)) throw new Error(`${script} failed:\n${output}`);
  return { lines, output };
}
