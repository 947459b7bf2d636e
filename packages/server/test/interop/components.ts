// Third-party XEP-0114 components run as real processes against a Natter component listener:
// slixmpp's ComponentXMPP (Debian `python3-slixmpp`) and biboumi, the XMPP↔IRC gateway (Debian
// `biboumi`). Each starts on demand and is stopped by the test (or by its watchdog).
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ensureDebianPackages, startManaged, type Managed } from './third-party.js';

const here = fileURLToPath(new URL('.', import.meta.url));

export interface RunningComponent {
  /** stdout and stderr of the process so far. */
  output(): string;
  waitForOutput(text: string | RegExp, timeoutMs?: number): Promise<void>;
  stop(): Promise<void>;
}

/** The echo component of `slixmpp-echo-component.py`; resolves once its handshake succeeded. */
export async function startSlixmppEcho(opts: {
  domain: string;
  secret: string;
  port: number;
  host?: string;
}): Promise<RunningComponent> {
  await ensureDebianPackages('/usr/lib/python3/dist-packages/slixmpp/componentxmpp.py', ['python3-slixmpp']);
  const proc = startManaged('/usr/bin/python3', [
    '-u',
    join(here, 'slixmpp-echo-component.py'),
    opts.domain,
    opts.secret,
    opts.host ?? '127.0.0.1',
    String(opts.port),
  ]);
  try {
    await proc.waitForOutput(/^ready$/m, 30_000);
  } catch (err) {
    await proc.stop();
    throw err;
  }
  return proc;
}

/**
 * biboumi with its own config file (it reads exactly one) and SQLite database; identd off (it would
 * want port 113). Resolves once biboumi is connected and authenticated to the XMPP server.
 */
export async function startBiboumi(opts: {
  domain: string;
  secret: string;
  port: number;
  host?: string;
}): Promise<RunningComponent & { dir: string }> {
  await ensureDebianPackages('/usr/bin/biboumi', ['biboumi']);
  const dir = await mkdtemp(join(tmpdir(), 'natter-biboumi-'));
  const config = join(dir, 'biboumi.cfg');
  await writeFile(
    config,
    [
      `hostname=${opts.domain}`,
      `password=${opts.secret}`,
      `xmpp_server_ip=${opts.host ?? '127.0.0.1'}`,
      `port=${opts.port}`,
      `db_name=${join(dir, 'biboumi.sqlite')}`,
      'policy_directory=/etc/biboumi',
      'identd_port=0',
      'realname_customization=true',
      'log_level=0',
      '',
    ].join('\n'),
  );
  const proc: Managed = startManaged('/usr/bin/biboumi', [config], { cwd: dir });
  try {
    await proc.waitForOutput('Authenticated with the XMPP server', 30_000);
  } catch (err) {
    await proc.stop();
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
  return {
    dir,
    output: proc.output,
    waitForOutput: proc.waitForOutput,
    async stop() {
      await proc.stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
