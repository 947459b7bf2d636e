import { parseArgs } from 'node:util';
import type { Config } from '../config.js';
import { createLogger } from '../core/logger.js';
import { startServer } from '../server.js';
import { AdminActionError } from './actions.js';
import { ADMIN_COMMANDS } from './commands.js';
import { coerceInput, fieldKind, runCommand, type AdminCommand } from './registry.js';
import { adminBaseUrl, adminToken } from './user-commands.js';

/**
 * The registry's commands on the command line: `natter WORD WORD [POSITIONAL] [--field value …]`.
 * The running server is asked through its admin listener (`/api/…`), so that it acts on its live
 * sessions; when none answers there, the command runs here on the storage, with the modules loaded
 * and no listener (what it changes is then seen by the next server to start).
 */

/** The command whose words start `argv`, if any. */
export function findCliCommand(argv: readonly string[]): AdminCommand | undefined {
  return ADMIN_COMMANDS.find((c) => c.cli.words[0] === argv[0] && c.cli.words[1] === argv[1]);
}

/** One usage line per command, for `natter --help`. */
export function cliUsage(): string {
  return ADMIN_COMMANDS.map((c) => {
    const shape = c.input.shape as Record<string, import('zod').ZodType>;
    const opts = Object.keys(shape)
      .filter((k) => k !== c.cli.positional && k !== c.cli.secret)
      .map((k) => {
        const opt = fieldKind(shape[k]!) === 'boolean' ? `--${k}` : `--${k} ${k.toUpperCase()}`;
        return shape[k]!.safeParse(undefined).success ? `[${opt}]` : opt;
      });
    const pos = c.cli.positional
      ? c.cli.positional === 'jid'
        ? ' USER@HOST'
        : ` [${c.cli.positional.toUpperCase()}]`
      : '';
    const line = `  natter ${c.cli.words.join(' ')}${pos}${opts.length ? ' ' + opts.join(' ') : ''}`;
    return `${line.padEnd(47)}${line.length >= 47 ? '\n' + ' '.repeat(47) : ''}${c.summary.charAt(0).toLowerCase() + c.summary.slice(1)}`;
  }).join('\n');
}

type Asked = { reached: true; status: number; body: unknown } | { reached: false; why: string };

/** Sends the command to the running server's admin API; `reached: false` when nothing listens. */
async function ask(
  config: Config,
  url: string | undefined,
  token: string | undefined,
  command: AdminCommand,
  input: Record<string, unknown>,
): Promise<Asked> {
  const base = adminBaseUrl(config, url);
  if (!base) return { reached: false, why: 'no admin listener is configured (pass --url)' };
  const bearer = adminToken(config, token);
  const headers: Record<string, string> = bearer ? { authorization: `Bearer ${bearer}` } : {};
  let target = `${base}${command.http.path}`;
  const init: RequestInit = { method: command.http.method, headers };
  if (command.http.method === 'GET') {
    const q = new URLSearchParams(Object.entries(input).map(([k, v]) => [k, String(v)]));
    if (q.size) target += `?${q.toString()}`;
  } else {
    headers['content-type'] = 'application/json';
    init.body = JSON.stringify(input);
  }
  let res: Response;
  try {
    res = await fetch(target, init);
  } catch (err) {
    const cause = (err as { cause?: { code?: string } }).cause;
    if (cause?.code === 'ECONNREFUSED') return { reached: false, why: `nothing listens at ${base}` };
    throw new Error(`cannot reach the server at ${base}: ${(err as Error).message}`);
  }
  const text = await res.text();
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    body = { error: `${res.status} ${res.statusText}: ${text.trim()}` };
  }
  // A server from before the API (404 on /api/…) is not this command's server: say so.
  if (res.status === 404 && (body as { error?: string }).error === 'not found')
    throw new Error(`the server at ${base} has no ${command.http.path} (an older version?)`);
  return { reached: true, status: res.status, body };
}

export interface CliRunOptions {
  /** Reads a secret field at the terminal (unseen, twice) or from stdin, when no option gives it. */
  readSecret(given: string | undefined): Promise<string>;
  /** Loads the configuration (after the command's own options are parsed: `--config`). */
  loadConfig(path: string | undefined): Config;
}

/**
 * Runs a registry command from `argv` (starting with its two words): prints its text (or JSON with
 * `--json`) and resolves with the exit code. Errors throw (the CLI prints them, exit 2).
 */
export async function runCliCommand(
  command: AdminCommand,
  argv: readonly string[],
  opts: CliRunOptions,
): Promise<number> {
  const shape = command.input.shape as Record<string, import('zod').ZodType>;
  const fields = Object.fromEntries(
    Object.keys(shape).map((k) => [
      k,
      { type: fieldKind(shape[k]!) === 'boolean' ? ('boolean' as const) : ('string' as const) },
    ]),
  );
  const { values, positionals } = parseArgs({
    args: argv.slice(2),
    allowPositionals: true,
    options: {
      ...fields,
      config: { type: 'string', short: 'c' },
      url: { type: 'string' },
      token: { type: 'string' },
      json: { type: 'boolean' },
    },
  });
  const {
    config: configPath,
    url,
    token,
    json,
    ...given
  } = values as Record<string, string | boolean | undefined>;
  const config = opts.loadConfig(configPath as string | undefined);
  const strings: Record<string, string> = {};
  for (const [k, v] of Object.entries(given)) if (typeof v === 'string') strings[k] = v;
  const input: Record<string, unknown> = coerceInput(command, strings);
  for (const [k, v] of Object.entries(given)) if (typeof v === 'boolean') input[k] = v;
  if (positionals.length > (command.cli.positional ? 1 : 0))
    throw new Error(`too many arguments for natter ${command.cli.words.join(' ')}: ${positionals.join(' ')}`);
  if (command.cli.positional && positionals[0] !== undefined) {
    let v = positionals[0];
    // USER without @HOST: an account of the first hosted domain.
    if (command.cli.positional === 'jid' && !v.includes('@')) v = `${v}@${config.hosts[0]!}`;
    input[command.cli.positional] = v;
  }
  if (command.cli.positional === 'jid' && input.jid === undefined) throw new Error('missing USER@HOST');
  // Before anything is typed: a bad input (not a hosted domain, a missing field) fails now.
  const draft = command.input.safeParse({
    ...input,
    ...(command.cli.secret ? { [command.cli.secret]: 'x' } : {}),
  });
  if (!draft.success)
    throw new Error(draft.error.issues.map((i) => `${i.path.join('.') || 'input'}: ${i.message}`).join('; '));
  if (typeof input.jid === 'string') {
    const domain = input.jid
      .slice(input.jid.lastIndexOf('@') + 1)
      .split('/')[0]!
      .toLowerCase();
    const hosts = config.hosts.map((h) => h.toLowerCase());
    if (!hosts.includes(domain))
      throw new Error(
        `${domain} is not hosted by this server (hosts: ${hosts.join(', ')}); add it to "hosts" in the configuration first`,
      );
  }
  if (command.cli.secret)
    input[command.cli.secret] = await opts.readSecret(input[command.cli.secret] as string | undefined);

  const print = (out: unknown, note?: string) => {
    if (json) console.log(JSON.stringify(out, null, 2));
    else
      console.log(
        (command.text ? command.text(out as never) : JSON.stringify(out, null, 2)) +
          (note ? `\n(${note})` : ''),
      );
  };
  const asked = await ask(config, url as string | undefined, token as string | undefined, command, input);
  if (asked.reached) {
    if (asked.status !== 200)
      throw new Error((asked.body as { error?: string }).error ?? `the server answered ${asked.status}`);
    print(asked.body);
    return 0;
  }
  // No server: the command on the storage, with the modules loaded (their hooks run).
  const server = await startServer(
    { ...config, listeners: [] },
    { logger: createLogger('warn', process.stderr), shutdownTimeoutMs: 10_000 },
  );
  let out: unknown;
  try {
    out = await runCommand(server.core, command, input, { via: 'cli' });
  } catch (err) {
    if (err instanceof AdminActionError) throw new Error(err.message);
    throw err;
  } finally {
    await server.stop();
  }
  print(out, command.mutates ? `no running server: ${asked.why}` : undefined);
  return 0;
}
