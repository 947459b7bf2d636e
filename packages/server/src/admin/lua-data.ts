// A strict reader for the Lua data Prosody's internal storage writes (util/serialization and
// util/datamanager): `return <value>;` files (.dat) and `item(<value>);` lists (.list). It parses
// literals only — tables, strings, numbers, booleans, nil — and never evaluates anything: an
// identifier other than the `item` of a list, a call, an operator, is an error. Sizes are bounded.

export type LuaValue = string | number | boolean | null | LuaTable;

/** A Lua table: string keys, and array/number or boolean keys (Prosody's roster uses `[false]`). */
export class LuaTable {
  readonly entries = new Map<string | number | boolean, LuaValue>();

  get(key: string | number | boolean): LuaValue | undefined {
    return this.entries.get(key);
  }

  /** The string value at `key`, or undefined. */
  str(key: string | number | boolean): string | undefined {
    const v = this.entries.get(key);
    return typeof v === 'string' ? v : undefined;
  }

  num(key: string): number | undefined {
    const v = this.entries.get(key);
    return typeof v === 'number' ? v : undefined;
  }

  table(key: string | number | boolean): LuaTable | undefined {
    const v = this.entries.get(key);
    return v instanceof LuaTable ? v : undefined;
  }

  /** Values at 1, 2, 3… in order (the array part). */
  array(): LuaValue[] {
    const out: LuaValue[] = [];
    for (let i = 1; this.entries.has(i); i++) out.push(this.entries.get(i)!);
    return out;
  }
}

export class LuaDataError extends Error {
  readonly code = 'LUA_DATA_INVALID';
}

export interface LuaLimits {
  /** Largest input, in characters. */
  maxChars: number;
  /** Deepest table nesting. */
  maxDepth: number;
  /** Most entries in all tables together. */
  maxEntries: number;
}

export const LUA_DEFAULT_LIMITS: LuaLimits = {
  maxChars: 64 * 1024 * 1024,
  maxDepth: 64,
  maxEntries: 2_000_000,
};

const ESCAPES: Record<string, string> = {
  a: '\u0007',
  b: '\b',
  f: '\f',
  n: '\n',
  r: '\r',
  t: '\t',
  v: '\v',
  '\\': '\\',
  '"': '"',
  "'": "'",
  '\n': '\n',
};

class Parser {
  private pos = 0;
  private entries = 0;
  /** Bytes of strings being decoded: Lua strings are bytes, Prosody's are UTF-8. */
  private readonly decoder = new TextDecoder('utf-8', { fatal: false });

  constructor(
    private readonly s: string,
    private readonly limits: LuaLimits,
  ) {
    if (s.length > limits.maxChars) throw new LuaDataError(`the data exceeds ${limits.maxChars} characters`);
  }

  fail(what: string): never {
    const line = this.s.slice(0, this.pos).split('\n').length;
    throw new LuaDataError(`${what} at line ${line}`);
  }

  /** Skips whitespace and comments (`-- …`, which Prosody does not write but editors may). */
  ws(): void {
    for (;;) {
      const c = this.s.charCodeAt(this.pos);
      if (c === 32 || c === 9 || c === 10 || c === 13) this.pos++;
      else if (c === 45 && this.s.charCodeAt(this.pos + 1) === 45) {
        if (this.s.startsWith('[[', this.pos + 2) || this.s.startsWith('[=', this.pos + 2))
          this.fail('long comments are not supported');
        const nl = this.s.indexOf('\n', this.pos);
        this.pos = nl < 0 ? this.s.length : nl + 1;
      } else return;
    }
  }

  eof(): boolean {
    this.ws();
    return this.pos >= this.s.length;
  }

  expect(token: string): void {
    this.ws();
    if (!this.s.startsWith(token, this.pos)) this.fail(`expected "${token}"`);
    this.pos += token.length;
  }

  accept(token: string): boolean {
    this.ws();
    if (!this.s.startsWith(token, this.pos)) return false;
    this.pos += token.length;
    return true;
  }

  /** An identifier (a bare word), without consuming it when it is not `word`. */
  word(word: string): boolean {
    this.ws();
    if (!this.s.startsWith(word, this.pos)) return false;
    const next = this.s[this.pos + word.length];
    if (next !== undefined && /[A-Za-z0-9_]/.test(next)) return false;
    this.pos += word.length;
    return true;
  }

  value(depth: number): LuaValue {
    this.ws();
    const c = this.s[this.pos];
    if (c === '{') return this.table(depth + 1);
    if (c === '"' || c === "'") return this.string();
    if (c === '(') return this.special();
    if (c === '-' || (c !== undefined && /[0-9.]/.test(c))) return this.number();
    if (this.word('true')) return true;
    if (this.word('false')) return false;
    if (this.word('nil')) return null;
    return this.fail('unexpected input (only literal data is read)');
  }

  /** `(1/0)`, `(-1/0)`, `(0/0)`: how Prosody writes infinities and NaN. */
  special(): number {
    for (const [text, v] of [
      ['(1/0)', Infinity],
      ['(-1/0)', -Infinity],
      ['(0/0)', NaN],
    ] as const) {
      if (this.s.startsWith(text, this.pos)) {
        this.pos += text.length;
        return v;
      }
    }
    return this.fail('unexpected "("');
  }

  number(): number {
    const m = /^-?(?:0[xX][0-9a-fA-F]+|(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?)/.exec(
      this.s.slice(this.pos, this.pos + 64),
    );
    if (!m) return this.fail('malformed number');
    this.pos += m[0].length;
    const n = Number(m[0].replace(/^(-?)0[xX]/, '$10x'));
    if (Number.isNaN(n)) return this.fail('malformed number');
    return n;
  }

  string(): string {
    const quote = this.s[this.pos]!;
    this.pos++;
    const bytes: number[] = [];
    const push = (text: string) => {
      for (const b of Buffer.from(text, 'utf8')) bytes.push(b);
    };
    for (;;) {
      const c = this.s[this.pos];
      if (c === undefined) this.fail('unterminated string');
      if (c === quote) {
        this.pos++;
        break;
      }
      if (c === '\n') this.fail('newline in a string');
      if (c !== '\\') {
        // copy a run of plain characters at once
        let end = this.pos + 1;
        while (end < this.s.length && this.s[end] !== quote && this.s[end] !== '\\' && this.s[end] !== '\n')
          end++;
        push(this.s.slice(this.pos, end));
        this.pos = end;
        continue;
      }
      const e = this.s[this.pos + 1];
      if (e === undefined) this.fail('unterminated string');
      if (/[0-9]/.test(e)) {
        const m = /^[0-9]{1,3}/.exec(this.s.slice(this.pos + 1, this.pos + 4))!;
        const code = Number(m[0]);
        if (code > 255) this.fail('escape beyond \\255');
        bytes.push(code);
        this.pos += 1 + m[0].length;
      } else if (e === 'x') {
        const m = /^[0-9a-fA-F]{2}/.exec(this.s.slice(this.pos + 2, this.pos + 4));
        if (!m) this.fail('malformed \\x escape');
        bytes.push(parseInt(m[0], 16));
        this.pos += 4;
      } else if (ESCAPES[e] !== undefined) {
        push(ESCAPES[e]);
        this.pos += 2;
      } else this.fail(`unknown escape \\${e}`);
    }
    return this.decoder.decode(new Uint8Array(bytes));
  }

  table(depth: number): LuaTable {
    if (depth > this.limits.maxDepth) this.fail(`tables nested deeper than ${this.limits.maxDepth}`);
    this.expect('{');
    const t = new LuaTable();
    let next = 1;
    for (;;) {
      if (this.accept('}')) return t;
      if (++this.entries > this.limits.maxEntries) this.fail(`more than ${this.limits.maxEntries} entries`);
      let key: string | number | boolean;
      this.ws();
      if (this.s[this.pos] === '[' && this.s[this.pos + 1] !== '[' && this.s[this.pos + 1] !== '=') {
        this.pos++;
        const k = this.value(depth);
        if (k === null || k instanceof LuaTable || (typeof k === 'number' && Number.isNaN(k)))
          this.fail('a table key must be a string, a number or a boolean');
        key = k;
        this.expect(']');
        this.expect('=');
      } else {
        const m = /^[A-Za-z_][A-Za-z0-9_]*/.exec(this.s.slice(this.pos, this.pos + 256));
        const after = m ? this.s.slice(this.pos + m[0].length).match(/^[ \t\r\n]*=(?!=)/) : null;
        if (m && after && !['true', 'false', 'nil'].includes(m[0])) {
          key = m[0];
          this.pos += m[0].length + after[0].length;
        } else key = next++;
      }
      const v = this.value(depth);
      if (v !== null) t.entries.set(key, v);
      if (!this.accept(';') && !this.accept(',')) {
        this.expect('}');
        return t;
      }
    }
  }
}

/** Reads a `.dat` file: `return <value>;` (the `return` and `;` optional). */
export function parseLuaDat(text: string, limits: Partial<LuaLimits> = {}): LuaValue {
  const p = new Parser(text.replace(/^\uFEFF/, ''), { ...LUA_DEFAULT_LIMITS, ...limits });
  p.word('return');
  const v = p.value(0);
  p.accept(';');
  if (!p.eof()) p.fail('unexpected input after the value');
  return v;
}

/** Reads a `.list` file: a sequence of `item(<value>);`. */
export function parseLuaList(text: string, limits: Partial<LuaLimits> = {}): LuaValue[] {
  const p = new Parser(text.replace(/^\uFEFF/, ''), { ...LUA_DEFAULT_LIMITS, ...limits });
  const items: LuaValue[] = [];
  while (!p.eof()) {
    if (!p.word('item')) p.fail('expected item(…)');
    p.expect('(');
    items.push(p.value(0));
    p.expect(')');
    p.accept(';');
  }
  return items;
}
