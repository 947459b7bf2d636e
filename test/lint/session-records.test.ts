// Rule 6 of the house (DESIGN.md, docs/decisions/0009): modules deliver through one verb
// (`ctx.deliver`) and see session records, not live sessions, so that a session may live on another
// node. The live `Session` type stays with the few modules whose work is the node's own streams.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../..', import.meta.url));
const modules = join(root, 'packages/server/src/modules');

/** Modules that handle the streams of this node: pinging them, stream management, flow control of
 * offline delivery at login, per-session presence bookkeeping and last-activity statuses (both only
 * touched by hooks that fire on the session's own node). */
const NODE_LOCAL = new Set(['ping', 'sm', 'offline', 'presence', 'last']);

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true, recursive: true })
    .filter((e) => e.isFile() && e.name.endsWith('.ts') && !e.name.endsWith('.test.ts'))
    .map((e) => join(e.parentPath, e.name));
}

test('rule 6: no module delivers to a session except through ctx.deliver', () => {
  const offenders = sources(modules).filter((f) => /\brouter\.deliver\(/.test(readFileSync(f, 'utf8')));
  assert.deepEqual(
    offenders.map((f) => relative(root, f)),
    [],
  );
});

test('rule 6: only node-local modules use the live Session type; the others read SessionRecord', () => {
  const users = new Set<string>();
  for (const f of sources(modules)) {
    const text = readFileSync(f, 'utf8');
    // Every import from the module API, single- or multi-line, `import type { … }` or `type X` inside.
    for (const m of text.matchAll(/import\s+(?:type\s+)?\{([^}]*)\}\s+from\s+'[./]*core\/module-api\.js'/g)) {
      const names = m[1]!.split(',').map((n) => n.replace(/\btype\b/, '').trim());
      if (names.includes('Session')) users.add(relative(modules, f).split('/')[0]!);
    }
  }
  assert.deepEqual(
    [...users].filter((m) => !NODE_LOCAL.has(m)),
    [],
  );
});
