// The rules of the house that imports can show (DESIGN.md; docs/dev/house-rules.md) are enforced by
// `no-restricted-imports` in eslint.config.js. Patterns can silently stop matching (a moved
// folder, a later config block replacing an earlier one): this lints in-memory code under made-up
// file names with the repository's real configuration and asserts that each rule still fires,
// and that what the rules allow stays allowed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { ESLint } from 'eslint';

const root = fileURLToPath(new URL('../..', import.meta.url));
// The real configuration, minus type information (the probe files exist only in memory, so the
// TypeScript project service cannot load them) and minus every rule but the one under test.
const eslint = new ESLint({
  cwd: root,
  overrideConfig: { languageOptions: { parserOptions: { projectService: false, project: null } } },
  ruleFilter: ({ ruleId }) => ruleId === 'no-restricted-imports',
});

/** Messages of `no-restricted-imports` for `code` linted as if it were `file` (repo-relative). */
async function restricted(file: string, code: string): Promise<string[]> {
  const [result] = await eslint.lintText(code, { filePath: `${root}/${file}` });
  assert.ok(result, `no lint result for ${file}`);
  const fatal = result.messages.filter((m) => m.fatal);
  assert.deepEqual(fatal, [], `parse error in ${file}`);
  return result.messages.filter((m) => m.ruleId === 'no-restricted-imports').map((m) => m.message);
}

const imp = (source: string) => `import '${source}';\n`;

const violations: [rule: string, file: string, source: string][] = [
  ['rule 1', 'packages/xml/src/house-rules-probe.ts', '@natter/server'],
  ['rule 1', 'packages/jid/src/house-rules-probe.ts', '../../client/src/index.js'],
  ['rule 1', 'packages/protocol/src/house-rules-probe.ts', '@natter/component'],
  ['rule 2', 'packages/client/src/house-rules-probe.ts', '@natter/server'],
  ['rule 2', 'packages/client/src/house-rules-probe.node.ts', '../../server/src/core/router.js'],
  ['rule 2', 'packages/client/src/roster/house-rules-probe.ts', '../transport/tcp.node.js'],
  ['rule 2', 'packages/client/src/core/house-rules-probe.ts', '../disco/xep-0030-disco.js'],
  ['rule 2', 'packages/client/src/core/house-rules-probe.ts', '../stream-management/sm.js'],
  ['rule 3', 'packages/server/src/core/house-rules-probe.ts', '../modules/index.js'],
  ['rule 3', 'packages/server/src/core/house-rules-probe.ts', '../listeners/listeners.js'],
  ['rule 4', 'packages/server/src/accounts/house-rules-probe.ts', '../core/server-core.js'],
  ['rule 4', 'packages/server/src/storage/house-rules-probe.ts', '../core/module.js'],
  ['rule 5', 'packages/server/src/modules/ping/house-rules-probe.ts', '../../core/server-core.js'],
  ['rule 5', 'packages/server/src/modules/ping/house-rules-probe.ts', '../../core/module.js'],
  ['rule 5', 'packages/server/src/modules/ping/house-rules-probe.ts', '../../config.js'],
  ['rule 5', 'packages/server/src/modules/ping/house-rules-probe.ts', '../roster/roster-store.js'],
  ['rule 5', 'packages/server/src/modules/ping/house-rules-probe.ts', '../index.js'],
  ['rule 5', 'packages/server/src/modules/pubsub/commands/house-rules-probe.ts', '../../../core/router.js'],
  ['rule 5', 'packages/server/src/modules/pubsub/commands/house-rules-probe.ts', '../../pep/pep.js'],
  ['rule 8', 'packages/server/src/modules/ping/house-rules-probe.ts', '../../../test/support/test-client.js'],
  ['rule 8', 'packages/client/src/house-rules-probe.ts', '../test/support.js'],
  ['rule 8', 'packages/xml/src/house-rules-probe.ts', '../test/fixtures.js'],
];

for (const [rule, file, source] of violations) {
  test(`${rule}: ${file} may not import ${source}`, async () => {
    const messages = await restricted(file, imp(source));
    assert.ok(
      messages.some((m) => m.includes(`${rule}:`)),
      `expected a "${rule}" error, got ${JSON.stringify(messages)}`,
    );
  });
}

test('the browser rule still fires next to the house rules', async () => {
  for (const file of [
    'packages/client/src/house-rules-probe.ts',
    'packages/client/src/core/house-rules-probe.ts',
    'packages/xml/src/house-rules-probe.ts',
  ]) {
    const messages = await restricted(file, imp('node:net'));
    assert.ok(
      messages.some((m) => m.includes('browser code')),
      `${file}: ${JSON.stringify(messages)}`,
    );
  }
});

const allowed: [file: string, source: string][] = [
  ['packages/server/src/modules/ping/house-rules-probe.ts', '../../core/module-api.js'],
  ['packages/server/src/modules/limits/house-rules-probe.ts', '../../util/ip-key.js'],
  ['packages/server/src/modules/ping/house-rules-probe.ts', '../roster/api.js'],
  ['packages/server/src/modules/ping/house-rules-probe.ts', './ping.js'],
  ['packages/server/src/modules/ping/house-rules-probe.ts', '@natter/protocol'],
  ['packages/server/src/modules/pubsub/commands/house-rules-probe.ts', '../pubsub-service.js'],
  ['packages/server/src/modules/pubsub/commands/house-rules-probe.ts', '../../../core/module-api.js'],
  ['packages/server/src/modules/pubsub/commands/house-rules-probe.ts', '../../roster/api.js'],
  ['packages/server/src/core/house-rules-probe.ts', '../storage/database.js'],
  ['packages/client/src/disco/house-rules-probe.ts', '../core/xep-0115-caps.js'],
  ['packages/client/src/core/house-rules-probe.ts', '../transport/transport.js'],
  ['packages/client/src/transport/house-rules-probe.node.ts', 'node:net'],
  ['packages/server/src/modules/ping/house-rules-probe.test.ts', '../../../test/support/test-client.js'],
];

for (const [file, source] of allowed) {
  test(`${file} may import ${source}`, async () => {
    assert.deepEqual(await restricted(file, imp(source)), []);
  });
}
