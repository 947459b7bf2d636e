// The README's quick start, run as written (only environment variables differ) against a real server.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { clientRoot } from './browser-bundle.js';
import type { Target } from './target.js';
import { targets } from './targets.js';

const run = promisify(execFile);

for (const factory of targets) {
  describe(`README quick start (${factory.name})`, () => {
    let target: Target;
    before(async () => {
      target = await factory.start();
    });
    after(async () => target?.stop());

    test('the quick start connects, lists the roster, and gets a delivery receipt', async () => {
      const readme = await readFile(join(clientRoot, 'README.md'), 'utf8');
      const code = /## Quick start[\s\S]*?```js\n([\s\S]*?)```/.exec(readme)?.[1];
      assert.ok(code, 'README has a ```js quick start block');
      // Inside the package so that `@natter/client` resolves as it would for a user.
      const file = join(clientRoot, 'test', `.quick-start-${process.pid}.mjs`);
      const ca = join(clientRoot, 'test', `.quick-start-ca-${process.pid}.pem`);
      await writeFile(file, code);
      await writeFile(ca, String(target.tls.ca ?? ''));
      try {
        const account = target.users[target.users.length - 1]!;
        const { stdout } = await run(process.execPath, ['--conditions=source', '--import', 'tsx', file], {
          env: {
            ...process.env,
            XMPP_SERVICE: target.service.tcp,
            XMPP_JID: account.jid,
            XMPP_PASSWORD: account.password,
            NODE_EXTRA_CA_CERTS: ca,
          },
          timeout: 30_000,
        });
        assert.match(stdout, new RegExp(`online as ${account.jid}/quick-start`));
        assert.match(stdout, /roster: /);
        assert.match(stdout, /message from .*: Hello from Natter/);
        assert.match(stdout, /delivered/);
      } finally {
        await rm(file, { force: true });
        await rm(ca, { force: true });
      }
    });
  });
}
