// The README's quick start, run as written (only environment variables differ) against Prosody's
// component port, with a real user talking to it.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';
import { createClient, xml } from '@natter/client';
import { startProsody } from '../../client/test/prosody.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const DOMAIN = 'echo.localhost';
const SECRET = 'quick-start-secret';

describe('README quick start (prosody)', () => {
  let prosody: Awaited<ReturnType<typeof startProsody>>;
  before(async () => {
    prosody = await startProsody({ users: 2, components: { [DOMAIN]: SECRET } });
  });
  after(async () => prosody?.stop());

  test('the echo gateway connects, echoes a message, answers a version query and stops on SIGINT', async () => {
    const readme = await readFile(join(root, 'README.md'), 'utf8');
    const code = /## Quick start[\s\S]*?```js\n([\s\S]*?)```/.exec(readme)?.[1];
    assert.ok(code, 'README has a ```js quick start block');
    // Inside the package so that `@natter/component` resolves as it would for a user.
    const file = join(root, 'test', `.quick-start-${process.pid}.mjs`);
    await writeFile(file, code);
    const child = spawn(process.execPath, ['--conditions=source', '--import', 'tsx', file], {
      cwd: root,
      env: {
        ...process.env,
        COMPONENT_SERVICE: `xmpp://127.0.0.1:${prosody.componentPort}`,
        COMPONENT_DOMAIN: DOMAIN,
        COMPONENT_SECRET: SECRET,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
    const online = new Promise<void>((resolve, reject) => {
      child.stdout.on('data', (d: Buffer) => {
        stdout += d.toString();
        if (stdout.includes(`online as ${DOMAIN}`)) resolve();
      });
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      void exited.then((code) => reject(new Error(`quick start exited (${code}): ${stdout}\n${stderr}`)));
    });
    const user = createClient({ service: prosody.service.tcp, tls: prosody.tls, ...prosody.users[0]! });
    try {
      await online;
      await user.connect();
      const echoed = user.waitFor('message', {
        timeout: 15_000,
        filter: (m) => m.getChildText('body') === 'echo: ping',
      });
      await user.sendMessage({ to: `echo@${DOMAIN}`, body: 'ping', type: 'chat' });
      assert.equal((await echoed).attr('from'), `echo@${DOMAIN}`);
      const version = await user.iq(
        xml('iq', { type: 'get', to: DOMAIN }, xml('query', { xmlns: 'jabber:iq:version' })),
      );
      assert.equal(version.getChild('query')?.getChildText('name'), 'echo-gateway');
      child.kill('SIGINT');
      assert.equal(await exited, 0, stderr);
      assert.match(stdout, /bye/);
    } finally {
      child.kill('SIGKILL');
      await user.disconnect().catch(() => {});
      await rm(file, { force: true });
    }
  });
});
