// Runs the `natter` command from src/ (through tsx, with the "source" condition) in any working
// directory: tsx is named by its resolved URL, so the directory needs no node_modules.
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('../../../../', import.meta.url));
export const CLI = join(ROOT, 'packages/server/src/cli.ts');
const TSX = import.meta.resolve('tsx');

/** Starts `natter ARGS` in `cwd` (default: the repository), stdout and stderr piped. */
export function spawnNatter(args: string[], cwd = ROOT): ChildProcess {
  return spawn(process.execPath, ['--import', TSX, '--conditions=source', CLI, ...args], {
    cwd,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
}

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `natter ARGS` to its end (60 s at most). */
export function runNatter(args: string[], cwd = ROOT): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const p = spawnNatter(args, cwd);
    let stdout = '';
    let stderr = '';
    p.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
    p.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => {
      p.kill('SIGKILL');
      reject(new Error(`natter ${args.join(' ')} did not end within 60 s:\n${stdout}${stderr}`));
    }, 60_000);
    p.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}
