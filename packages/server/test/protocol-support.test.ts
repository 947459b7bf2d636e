import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { renderProtocolSupport } from '../src/protocol-support.js';

test('docs/protocol-support.md is generated from the modules and up to date (npm run docs:protocols)', () => {
  const committed = readFileSync(new URL('../../../docs/protocol-support.md', import.meta.url), 'utf8');
  assert.equal(committed, renderProtocolSupport());
});

test('XEP-0479 table: every provider is a spec number, and every module it names exists', async () => {
  const { XEP_0479 } = await import('../src/xep-0479.js');
  const { builtinModules } = await import('../src/modules/index.js');
  const names = new Set(builtinModules.map((m) => m.name));
  for (const cat of XEP_0479)
    for (const f of cat.features)
      for (const p of f.providers) {
        assert.match(p.spec, /^(XEP-\d{4}|RFC \d+)$/, `${cat.name} / ${f.name}`);
        if (p.module !== undefined) assert.ok(names.has(p.module), `${p.module} is a module`);
      }
});
