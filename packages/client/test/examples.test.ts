// The examples run: the Node bot logs in to a real Natter and answers a message; the browser
// page's code bundles for browsers (the React Native screen needs React Native: not run here).
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { build } from 'esbuild';
import { createClient } from '../src/index.node.js';
import { clientRoot } from './browser-bundle.js';
import { startNatter } from './natter.js';
import type { Target } from './target.js';

describe('examples', () => {
  let target: Target;
  let dir: string;
  before(async () => {
    target = await startNatter({ users: 2 });
    dir = await mkdtemp(join(tmpdir(), 'natter-examples-'));
  });
  after(async () => {
    await target?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  test('examples/node-bot.ts: logs in, answers a chat message reversed, stops on SIGTERM', async () => {
    const ca = join(dir, 'ca.pem');
    await writeFile(ca, String(target.tls.ca));
    const bot = target.users[0]!;
    const proc = spawn(process.execPath, ['--import', 'tsx', '--conditions=source', 'examples/node-bot.ts'], {
      cwd: clientRoot,
      env: {
        ...process.env,
        XMPP_JID: bot.jid,
        XMPP_PASSWORD: bot.password,
        XMPP_SERVICE: target.service.tcp,
        XMPP_CA_FILE: ca,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    proc.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    proc.stderr!.on('data', (d: Buffer) => (out += d.toString()));
    const exited = new Promise<number | null>((r) => proc.once('exit', (code) => r(code)));
    const user = createClient({ service: target.service.tcp, tls: target.tls, ...target.users[1]! });
    try {
      await new Promise<void>((resolve, reject) => {
        const t = setTimeout(() => reject(new Error(`the bot did not get ready:\n${out}`)), 20_000);
        const check = () => {
          if (out.includes('ready')) {
            clearTimeout(t);
            resolve();
          }
        };
        proc.stdout!.on('data', check);
        void exited.then(() => reject(new Error(`the bot exited:\n${out}`)));
        check();
      });
      // Bind2 (XEP-0386): the server's resource starts with the one asked for.
      const botJid = new RegExp(`online as (${bot.jid}/bot\\.\\S+)`).exec(out)?.[1];
      assert.ok(botJid, out);
      await user.connect();
      const reply = user.waitFor('message', {
        filter: (m) => m.getChildText('body') === 'olleh',
        timeout: 10_000,
      });
      await user.sendMessage({ to: botJid, body: 'hello' });
      assert.equal((await reply).attr('from'), botJid);
      proc.kill('SIGTERM');
      assert.equal(await exited, 0, out);
    } finally {
      proc.kill('SIGKILL');
      await user.disconnect();
    }
  });

  test('examples/browser/chat.ts bundles for browsers with no Node built-in', async () => {
    const out = await build({
      entryPoints: [join(clientRoot, 'examples/browser/chat.ts')],
      bundle: true,
      write: false,
      format: 'esm',
      platform: 'browser',
      conditions: ['source'],
      metafile: true,
      logLevel: 'silent',
    });
    const inputs = Object.keys(out.metafile.inputs);
    assert.deepEqual(
      inputs.filter((i) => i.startsWith('node:') || /\.node\.ts$/.test(i)),
      [],
    );
    assert.ok(inputs.some((i) => i.endsWith('src/mam/indexeddb-message-store.ts')));
  });
});
