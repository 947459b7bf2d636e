import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startTestServer } from './support/test-server.js';

/**
 * Makes a directory unwritable for this process: mode 0555 for an ordinary user; root ignores
 * modes, so there the immutable attribute (chattr +i) is used. Returns the undo, or undefined when
 * neither is possible here.
 */
function makeReadOnly(dir: string): (() => void) | undefined {
  if (process.getuid?.() !== 0) {
    chmodSync(dir, 0o555);
    return () => chmodSync(dir, 0o755);
  }
  try {
    execFileSync('chattr', ['+i', dir], { stdio: 'ignore' });
    return () => execFileSync('chattr', ['-i', dir], { stdio: 'ignore' });
  } catch {
    return undefined;
  }
}

test('a read-only data directory is refused with an error that names the path', async (t) => {
  const dataDir = mkdtempSync(join(tmpdir(), 'natter-ro-'));
  const undo = makeReadOnly(dataDir);
  if (!undo) {
    t.skip('cannot make a directory read-only here (root without chattr)');
    rmSync(dataDir, { recursive: true, force: true });
    return;
  }
  try {
    await assert.rejects(startTestServer({ storage: { engine: 'sqlite' } }, { dataDir }), (err: Error) => {
      assert.match(err.message, new RegExp(dataDir.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')));
      assert.match(err.message, /writable/);
      return true;
    });
  } finally {
    undo();
    rmSync(dataDir, { recursive: true, force: true });
  }
});
