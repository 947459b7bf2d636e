import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { renderProtocolSupport } from '../src/protocol-support.js';

test('docs/protocol-support.md is generated from the modules and up to date (npm run docs:protocols)', () => {
  const committed = readFileSync(new URL('../../../docs/protocol-support.md', import.meta.url), 'utf8');
  assert.equal(committed, renderProtocolSupport());
});
