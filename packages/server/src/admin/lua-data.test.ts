import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { LuaDataError, LuaTable, parseLuaDat, parseLuaList } from './lua-data.js';
import { elementFromLua, prosodyDecode, prosodyEncode } from './prosody-data.js';

const table = (v: unknown): LuaTable => {
  assert.ok(v instanceof LuaTable);
  return v;
};

describe("Prosody's Lua data (util/serialization subset)", () => {
  test('an internal_hashed account file as Prosody 0.12 writes it', () => {
    const t = table(
      parseLuaDat(`return {
	["iteration_count"] = 10000;
	["salt"] = "c9a0b6e1-0d4f-4c2e-9a31-2f6a0e1c7b11";
	["server_key"] = "2b1f7c6d4e3a2918f0e1d2c3b4a5968778695a4b";
	["stored_key"] = "0a1b2c3d4e5f60718293a4b5c6d7e8f901234567";
};
`),
    );
    assert.equal(t.num('iteration_count'), 10000);
    assert.equal(t.str('salt'), 'c9a0b6e1-0d4f-4c2e-9a31-2f6a0e1c7b11');
  });

  test('a roster: the [false] entry, nested tables, escapes as serialization.lua writes them', () => {
    const t = table(
      parseLuaDat(`return {
	[false] = {
		["version"] = 3;
		["pending"] = {
			["tybalt@example.com"] = true;
		};
	};
	["juliet@example.com"] = {
		["groups"] = {
			["Caf\\195\\169 \\"du\\" coin\\n"] = true;
		};
		["name"] = "Juliet\\9\\092";
		["subscription"] = "both";
	};
};
`),
    );
    assert.equal(table(t.get(false)).num('version'), 3);
    const juliet = table(t.get('juliet@example.com'));
    assert.equal(juliet.str('name'), 'Juliet\t\\');
    assert.deepEqual([...table(juliet.get('groups')).entries.keys()], ['Café "du" coin\n']);
  });

  test('numbers: integers, %.18g floats, infinities, NaN, negative, hex', () => {
    const t = table(parseLuaDat('{ 1, -2, 1.5e+09, 0.25, (1/0), (-1/0), 0x1F, [10] = 3 }'));
    assert.deepEqual(t.array().slice(0, 4), [1, -2, 1.5e9, 0.25]);
    assert.equal(t.get(5), Infinity);
    assert.equal(t.get(6), -Infinity);
    assert.equal(t.get(7), 31);
    assert.equal(t.get(10), 3);
  });

  test('a list file: item(…); lines, as datamanager.list_append writes them', () => {
    const items = parseLuaList(
      `item({["key"] = "a";["when"] = 1700000000.5;["name"] = "message";["attr"] = {["to"] = "u@h";};[1] = {["name"] = "body";["attr"] = {};[1] = "hi";};});\n` +
        `item({["name"] = "message";["attr"] = {};});\n`,
    );
    assert.equal(items.length, 2);
    const m = elementFromLua(items[0]!, 'jabber:client');
    assert.equal(m.xmlns, 'jabber:client');
    assert.equal(m.attrs.to, 'u@h');
    assert.equal(m.getChildText('body', 'jabber:client'), 'hi');
  });

  test('a preserialized stanza: namespaces inherited, xml:lang kept, other namespaced attributes dropped', () => {
    const el = elementFromLua(
      parseLuaDat(
        `{ ["name"] = "vCard"; ["attr"] = { ["xmlns"] = "vcard-temp"; ["http://www.w3.org/XML/1998/namespace\\1lang"] = "en"; ["urn:x\\1y"] = "z" }; { ["name"] = "FN"; ["attr"] = {}; "Romeo" } }`,
      ),
    );
    assert.equal(el.xmlns, 'vcard-temp');
    assert.equal(el.attrs['xml:lang'], 'en');
    assert.equal(el.attrs['urn:x\u0001y'], undefined);
    assert.equal(el.getChild('FN', 'vcard-temp')?.text(), 'Romeo');
  });

  test('host and user folder names: every byte but letters and digits as %xx', () => {
    assert.equal(prosodyEncode('example.com'), 'example%2ecom');
    assert.equal(prosodyDecode('example%2ecom'), 'example.com');
    assert.equal(prosodyDecode(prosodyEncode('zoë.o-k')), 'zoë.o-k');
  });

  describe('hostile input: nothing is evaluated, sizes are bounded', () => {
    const refused = [
      ['a function call', 'return os.execute("touch /tmp/pwned")'],
      ['a global', 'return { x = io }'],
      ['a function', 'return { f = function() end }'],
      ['concatenation', 'return { "a" .. "b" }'],
      ['arithmetic', 'return { 1 + 2 }'],
      ['a long string', 'return { [[text]] }'],
      ['a long comment', '--[[ x ]] return {}'],
      ['two values', 'return {} {}'],
      ['an unterminated string', 'return { "abc'],
      ['an unterminated table', 'return { 1, 2'],
      ['a nil key', 'return { [nil] = 1 }'],
      ['a table key', 'return { [{}] = 1 }'],
      ['an escape beyond a byte', 'return { "\\300" }'],
      ['a newline inside a string', 'return { "a\nb" }'],
      ['a method call on a string', 'return ("x"):rep(1e9)'],
    ] as const;
    for (const [what, text] of refused)
      test(`refuses ${what}`, () => assert.throws(() => parseLuaDat(text), LuaDataError));

    test('refuses a list item that is a call of anything but item()', () => {
      assert.throws(() => parseLuaList('item({}); os.exit(1);'), LuaDataError);
      assert.throws(() => parseLuaList('items({});'), LuaDataError);
    });

    test('bounds nesting, entries and size', () => {
      assert.throws(() => parseLuaDat('{'.repeat(100) + '}'.repeat(100)), /nested deeper/);
      assert.throws(() => parseLuaDat(`{ ${'1,'.repeat(50)} }`, { maxEntries: 10 }), /more than 10 entries/);
      assert.throws(() => parseLuaDat('{ "xxxxxxxxxxxx" }', { maxChars: 8 }), /exceeds 8 characters/);
    });

    test('an element nested too deep or with a bad name is refused, not built', () => {
      let deep = '{ ["name"] = "a"; ["attr"] = {} }';
      for (let i = 0; i < 60; i++) deep = `{ ["name"] = "a"; ["attr"] = {}; ${deep} }`;
      assert.throws(() => elementFromLua(parseLuaDat(deep), ''), /too deep/);
      assert.throws(
        () => elementFromLua(parseLuaDat('{ ["name"] = "a b"; ["attr"] = {} }')),
        /no valid name/,
      );
    });
  });
});
