import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LuaTable } from './lua-data.js';
import { listEntries, ProsodyDataError } from './prosody-data.js';

const entry = (key: string, body: string) =>
  `item({\n\t{\n\t\t"${body}";\n\t\t["attr"] = {};\n\t\t["name"] = "body";\n\t};\n\t["key"] = "${key}";\n\t["when"] = 1796657257;\n\t["attr"] = {\n\t\t["from"] = "a@localhost/x";\n\t};\n\t["name"] = "message";\n});\n`;

async function collect(path: string, max?: number): Promise<LuaTable[]> {
  const out: LuaTable[] = [];
  for await (const v of listEntries(path, max)) out.push(v as LuaTable);
  return out;
}

test('listEntries: a .list file read one entry at a time, whatever its strings hold', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'natter-list-'));
  try {
    const path = join(dir, 'alice.list');
    // Escaped newlines and "item(" inside strings do not start an entry; nor do the runs of
    // spaces a failed append leaves behind.
    writeFileSync(
      path,
      entry('k1', 'first\\nitem({ not an entry') +
        '      \n' +
        entry('k2', 'caf\\195\\169') +
        entry('k3', '<3 & more'),
    );
    const items = await collect(path);
    assert.deepEqual(
      items.map((i) => i.str('key')),
      ['k1', 'k2', 'k3'],
    );
    assert.equal((items[0]!.array()[0] as LuaTable).array()[0], 'first\nitem({ not an entry');
    assert.equal((items[1]!.array()[0] as LuaTable).array()[0], 'café');
    assert.deepEqual(await collect(join(dir, 'none.list')), [], 'a missing file has no entries');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('listEntries: many entries stream through; an entry past the bound or a broken one is an error', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'natter-list-'));
  try {
    const path = join(dir, 'big.list');
    writeFileSync(path, Array.from({ length: 20_000 }, (_, i) => entry(`k${i}`, `message ${i}`)).join(''));
    let n = 0;
    for await (const v of listEntries(path)) {
      assert.equal((v as LuaTable).str('key'), `k${n}`);
      n++;
    }
    assert.equal(n, 20_000);
    await assert.rejects(collect(path, 100), ProsodyDataError);
    const broken = join(dir, 'broken.list');
    writeFileSync(broken, entry('k1', 'ok') + 'item({ ["key"] = "k2"; \n');
    const seen: string[] = [];
    await assert.rejects(async () => {
      for await (const v of listEntries(broken)) seen.push((v as LuaTable).str('key')!);
    });
    assert.deepEqual(seen, ['k1'], 'the entries before the broken one were read');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
