import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository's root, and the CLI as `npm run natter` runs it (from the sources, through tsx). */
export const ROOT = fileURLToPath(new URL('../../../../', import.meta.url));
export const CLI = join(ROOT, 'packages/server/src/cli.ts');
const NODE_ARGS = ['--import', 'tsx', '--conditions=source', CLI];

/** Quotes a word for `sh -c`. */
export const shellWord = (a: string): string => `'${a.replace(/'/g, `'\\''`)}'`;

/**
 * `natter <args>` as a child process, its stdout and stderr collected as they arrive, from the
 * repository's root. `via`: `pipe` (stdout is a pipe, as under a service manager or a container),
 * `terminal` (under util-linux `script`, which gives it a real pseudo-terminal: stdout is a TTY and
 * stdin is the terminal, where a written "\x03" is Ctrl-C), or `shell`, a shell command line
 * running `$NATTER` (e.g. `umask 077; exec $NATTER`), stdout a pipe.
 */
export class CliProcess {
  stdout = '';
  stderr = '';
  readonly child: ChildProcess;
  readonly exited: Promise<number | null>;
  private waiters: (() => void)[] = [];

  constructor(args: string[], via: 'pipe' | 'terminal' | { shell: string } = 'pipe') {
    const command = [process.execPath, ...NODE_ARGS, ...args].map(shellWord).join(' ');
    this.child =
      via === 'pipe'
        ? spawn(process.execPath, [...NODE_ARGS, ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] })
        : via === 'terminal'
          ? // script runs the command with $SHELL -c (sh when unset, as on CI): `exec` makes Natter
            // the terminal's foreground process itself, so Ctrl-C reaches it and no shell in
            // between dies of the SIGINT (exit 130) while Natter shuts down cleanly.
            spawn('script', ['-qec', `exec ${command}`, '/dev/null'], {
              cwd: ROOT,
              stdio: ['pipe', 'pipe', 'pipe'],
              env: { ...process.env, SHELL: '/bin/sh' },
            })
          : spawn('sh', ['-c', via.shell.replace('$NATTER', command)], {
              cwd: ROOT,
              stdio: ['ignore', 'pipe', 'pipe'],
            });
    this.child.stdout!.on('data', (d: Buffer) => {
      this.stdout += d.toString();
      this.wake();
    });
    this.child.stderr!.on('data', (d: Buffer) => {
      this.stderr += d.toString();
      this.wake();
    });
    this.exited = new Promise((resolve) =>
      this.child.on('exit', (code) => {
        resolve(code);
        this.wake();
      }),
    );
  }

  private wake(): void {
    for (const w of this.waiters.splice(0)) w();
  }

  /**
   * Resolves once `done(stdout)` holds, checked each time output arrives; fails if the process
   * exits first or nothing satisfies it within `ms` (a bound on a hung start, not a delay).
   */
  async waitFor(done: (stdout: string) => boolean, what: string, ms = 60_000): Promise<void> {
    const deadline = Date.now() + ms;
    while (!done(this.stdout)) {
      if (this.child.exitCode !== null || this.child.signalCode !== null)
        throw new Error(`natter exited before ${what}\n${this.transcript()}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for ${what}\n${this.transcript()}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  transcript(): string {
    return `--- stdout ---\n${this.stdout}\n--- stderr ---\n${this.stderr}`;
  }

  /** Stops it as an operator would (SIGTERM; Ctrl-C at a terminal) and returns its exit code. */
  async stop(): Promise<number | null> {
    if (this.child.exitCode === null) {
      if (this.child.stdin) this.child.stdin.write('\x03');
      else this.child.kill('SIGTERM');
    }
    return this.exited;
  }
}
