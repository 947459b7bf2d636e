// @natter/component/testing: the README's example test, run as written, and the harness's options.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, test } from 'node:test';
import { startHarness } from '@natter/component/testing';

const run = promisify(execFile);
const root = fileURLToPath(new URL('..', import.meta.url));

describe('@natter/component/testing', () => {
  test("the README's example gateway test passes as written", async () => {
    const readme = await readFile(join(root, 'README.md'), 'utf8');
    const code = /## Testing your gateway[\s\S]*?```js\n([\s\S]*?)```/.exec(readme)?.[1];
    assert.ok(code, 'README has a ```js block under "Testing your gateway"');
    const file = join(root, 'test', `.harness-example-${process.pid}.mjs`);
    await writeFile(file, code);
    try {
      const { stdout, stderr } = await run(
        process.execPath,
        ['--conditions=source', '--import', 'tsx', '--test', file],
        {
          cwd: root,
          // a nested runner that sees NODE_TEST_CONTEXT reports to its parent instead of printing TAP
          env: Object.fromEntries(Object.entries(process.env).filter(([k]) => k !== 'NODE_TEST_CONTEXT')),
          timeout: 60_000,
        },
      );
      assert.match(stdout, /# pass 1/, `${stdout}\n${stderr}`);
      assert.match(stdout, /# fail 0/);
    } finally {
      await rm(file, { force: true });
    }
  });

  test('connect: false lets the gateway register handlers first; users see its puppets and disco', async () => {
    const started = Date.now();
    const h = await startHarness({
      connect: false,
      component: { disco: { identities: [{ category: 'gateway', type: 'test' }] } },
    });
    try {
      assert.equal(h.component.status, 'offline');
      h.component.puppets.add('bot', { status: 'ready' });
      await h.component.connect();
      const alice = await h.user('alice');
      // diagnostic only: the harness is meant to boot in about a second
      console.log(`# harness: server + component + user in ${Date.now() - started} ms`);
      const seen = alice.waitFor('presence', {
        timeout: 10_000,
        filter: (p) => p.attr('from') === 'bot@gw.localhost' && p.getChildText('status') === 'ready',
      });
      await alice.sendPresence({ to: 'bot@gw.localhost', type: 'subscribe' });
      await seen;
      const again = await h.user('alice');
      assert.notEqual(
        again.jid?.toString(),
        alice.jid?.toString(),
        'a second client is another resource of the same account',
      );
      assert.equal(h.componentOptions.domain, 'gw.localhost');
      assert.match(h.componentOptions.service, /^xmpp:\/\/127\.0\.0\.1:\d+$/);
    } finally {
      await h.stop();
    }
  });

  test('a gateway that uses no puppets receives probes and subscription requests as presence events', async () => {
    const h = await startHarness();
    try {
      const seen = new Promise<{ type: string | undefined; to: string; from: string }>((resolve, reject) => {
        setTimeout(() => reject(new Error('no subscribe presence event within 15 s')), 15_000).unref();
        h.component.on('presence', (p) => {
          if (p.type === 'subscribe')
            resolve({ type: p.type, to: p.to.toString(), from: p.from.toBareString() });
        });
      });
      const alice = await h.user('alice');
      await alice.sendPresence({ to: 'topic@gw.localhost', type: 'subscribe' });
      assert.deepEqual(await seen, {
        type: 'subscribe',
        to: 'topic@gw.localhost',
        from: alice.jid!.bare.toString(),
      });
    } finally {
      await h.stop();
    }
  });
});
