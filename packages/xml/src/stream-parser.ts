import { XmlTokenizer, TokenizerError, type QName, type TokenizerHandlers } from './xml-tokenizer.js';
import { Element } from './element.js';

/** Stream error conditions (RFC 6120 §4.9.3) a parser can raise. */
export type XmlErrorCondition = 'not-well-formed' | 'restricted-xml' | 'policy-violation' | 'bad-format';

export class XmlError extends Error {
  override readonly name = 'XmlError';
  constructor(
    readonly condition: XmlErrorCondition,
    message: string,
  ) {
    super(message);
  }
}

export interface ParserLimits {
  /**
   * Largest stanza, in bytes of input, counted as a lower bound (markup at its shortest, text as
   * decoded): a stanza under the limit is never refused. Default 256 KiB.
   */
  maxStanzaBytes: number;
  /** Deepest nesting, counting the stream root as 1. Default 32. */
  maxDepth: number;
  /** Most attributes on one element. Default 64. */
  maxAttributes: number;
}

export const DEFAULT_LIMITS: ParserLimits = { maxStanzaBytes: 256 * 1024, maxDepth: 32, maxAttributes: 64 };

export interface StreamHeader {
  name: string;
  xmlns: string;
  attrs: Record<string, string>;
  /** The default namespace declared for the stream's content (`jabber:client` for c2s). */
  contentNs: string;
}

export interface StreamParserHandlers {
  /** The stream root opened (`<stream:stream …>`, or the WebSocket framing's synthetic root). */
  streamStart(header: StreamHeader): void;
  /** A complete first-level child of the stream: a stanza or a nonza. */
  element(el: Element): void;
  /** The stream root was closed (`</stream:stream>`). */
  streamEnd(): void;
  /** Input was refused; the parser accepts nothing more. */
  error(err: XmlError): void;
}

/**
 * Incremental parser for XMPP's XML subset (RFC 6120 §11): accepts input split anywhere (also
 * inside a multi-byte UTF-8 sequence), refuses comments, processing instructions, DTDs and thus
 * entity declarations with `restricted-xml`, and enforces size, depth and attribute limits with
 * `policy-violation`. See docs/decisions/0002-xml-parser.md for why it has its own tokenizer.
 */
/**
 * One decoder for every parser: each call decodes complete UTF-8 sequences only (a parser keeps
 * the incomplete tail of a chunk itself), so no parser holds a decoder, and its native converter,
 * for as long as its connection lives. A byte-order mark is kept here and dropped by the parser,
 * at the start of its input only. Made at the first bytes decoded, not when the module loads: a
 * runtime without TextDecoder (Hermes without its polyfill) must be able to import the package and
 * be told what is missing.
 */
let utf8: TextDecoder | undefined;
function UTF8(): TextDecoder {
  return (utf8 ??= new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }));
}

/**
 * How many bytes at the end of `b` begin a UTF-8 sequence that the next chunk completes (0 when
 * the chunk ends on a boundary, or with bytes no continuation can make valid: the decoder refuses those).
 */
function incompleteTail(b: Uint8Array): number {
  const n = b.length;
  for (let k = 1; k <= 3 && k <= n; k++) {
    const c = b[n - k]!;
    if (c < 0x80) return 0; // ASCII
    if (c < 0xc0) continue; // a continuation byte: the lead is further back
    const need = c >= 0xf0 ? (c <= 0xf4 ? 4 : 0) : c >= 0xe0 ? 3 : c >= 0xc2 ? 2 : 0;
    return need > k ? k : 0;
  }
  return 0;
}

export class StreamParser {
  /**
   * The tokenizer's callbacks: one small object per parser rather than a closure per callback
   * (a server keeps a parser per connection, idle or not).
   */
  private static readonly TokenizerSink = class implements TokenizerHandlers {
    constructor(private readonly p: StreamParser) {}
    open(
      name: QName,
      attrs: Record<string, string>,
      prefixed: { name: string; uri: string }[] | null,
      selfClosing: boolean,
      defaultNs: string,
    ): void {
      this.p.open(name.uri, name.local, attrs, prefixed, selfClosing, defaultNs);
    }
    close(): void {
      this.p.close();
    }
    text(t: string): void {
      this.p.text(t);
    }
  };

  private readonly tokenizer: XmlTokenizer;
  /** The start of a UTF-8 sequence that the previous chunk ended in, if any. */
  private carry: Uint8Array | undefined;
  /** Bytes were decoded already (a byte-order mark is dropped at the start only). */
  private decoding = false;
  private readonly stack: Element[] = [];
  private failed: XmlError | null = null;
  private ended = false;
  /** Characters of the stanza being received that were already consumed. */
  private stanzaChars = 0;
  private readonly limits: ParserLimits;
  private root: { uri: string; local: string } | undefined;

  constructor(
    private readonly handlers: StreamParserHandlers,
    limits: Partial<ParserLimits> = {},
  ) {
    this.limits = { ...DEFAULT_LIMITS, ...limits };
    this.tokenizer = new XmlTokenizer(new StreamParser.TokenizerSink(this));
  }

  /** Feeds bytes or text. After an error, further input is ignored. */
  write(chunk: Uint8Array | string): void {
    if (this.failed || this.ended) return;
    let text: string;
    if (typeof chunk === 'string') text = chunk;
    else {
      try {
        text = this.decode(chunk);
      } catch {
        this.fail('not-well-formed', 'input is not valid UTF-8');
        return;
      }
    }
    try {
      this.tokenizer.write(text);
    } catch (e) {
      if (e instanceof TokenizerError) this.fail(e.kind, e.message);
      else if (e instanceof LimitError) this.fail('policy-violation', e.message);
      else if (e instanceof BadFormatError) this.fail('bad-format', e.message);
      else if (e !== STOP) throw e;
      return;
    }
    // A construct still incomplete (an open tag or text) counts towards the limit too.
    const pending = this.tokenizer.depth >= 2 ? this.stanzaChars : 0;
    if (pending + this.tokenizer.pending > this.limits.maxStanzaBytes) {
      this.fail('policy-violation', `stanza exceeds ${this.limits.maxStanzaBytes} bytes`);
    }
  }

  /** UTF-8 decoding across chunks, as a streaming TextDecoder would do it (byte-order mark included). */
  private decode(chunk: Uint8Array): string {
    let bytes = chunk;
    if (this.carry) {
      bytes = new Uint8Array(this.carry.length + chunk.length);
      bytes.set(this.carry);
      bytes.set(chunk, this.carry.length);
      this.carry = undefined;
    }
    const tail = incompleteTail(bytes);
    if (tail > 0) {
      // A copy: a view would keep the whole read buffer alive while the connection idles.
      this.carry = new Uint8Array(bytes.subarray(bytes.length - tail));
      bytes = bytes.subarray(0, bytes.length - tail);
    }
    let text = UTF8().decode(bytes);
    if (!this.decoding && bytes.length > 0) {
      this.decoding = true;
      if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
    }
    return text;
  }

  get error(): XmlError | null {
    return this.failed;
  }

  /**
   * True when the input so far ends inside a first-level element (its start tag, content or end
   * tag incomplete). RFC 7395 framing requires every WebSocket message to hold complete elements.
   */
  get midElement(): boolean {
    return this.stack.length > 0 || this.tokenizer.partial;
  }

  private open(
    uri: string,
    local: string,
    attrs: Record<string, string>,
    prefixed: { name: string; uri: string }[] | null,
    selfClosing: boolean,
    defaultNs: string,
  ): void {
    const depth = this.tokenizer.depth; // the stream root counts as 1
    if (depth > this.limits.maxDepth) throw new LimitError(`nesting deeper than ${this.limits.maxDepth}`);
    let count = 0;
    // The fewest bytes this start tag (and its end tag) can have taken: `<a/>`, ` k="v"` each.
    let markup = selfClosing ? 3 + local.length : 5 + 2 * local.length;
    for (const k in attrs) {
      if (++count > this.limits.maxAttributes)
        throw new LimitError(`more than ${this.limits.maxAttributes} attributes`);
      markup += k.length + attrs[k]!.length + 4;
    }
    if (prefixed)
      for (const p of prefixed)
        if (!p.name.startsWith('xml:')) attrs[`xmlns:${p.name.slice(0, p.name.indexOf(':'))}`] = p.uri;
    if (this.tokenizer.depth === 1) {
      // the stream root: not kept on the stack of elements
      this.root = { uri, local };
      this.handlers.streamStart({ name: local, xmlns: uri, attrs, contentNs: defaultNs });
      this.stanzaChars = 0;
      if (this.failed) throw STOP;
      return;
    }
    // A second stream header inside the stream (RFC 6120 §4.9.3.1): refused at its start tag, not
    // buffered as a stanza that swallows everything after it.
    if (depth === 2 && this.root && local === this.root.local && uri === this.root.uri)
      throw new BadFormatError(`a <${local}/> cannot open inside the stream`);
    const el = new Element(local, uri, attrs);
    el.inheritsNs = false;
    const parent = this.stack[this.stack.length - 1];
    if (parent) parent.children.push(el);
    this.stack.push(el);
    // A lower bound of the input bytes, so that no stanza under the limit is refused (entities,
    // prefixes and whitespace inside tags are not counted; text is counted as decoded).
    this.stanzaChars += markup;
    if (this.stanzaChars > this.limits.maxStanzaBytes)
      throw new LimitError(`stanza exceeds ${this.limits.maxStanzaBytes} bytes`);
  }

  private close(): void {
    if (this.tokenizer.depth === 0) {
      this.ended = true;
      this.handlers.streamEnd();
      throw STOP;
    }
    const el = this.stack.pop();
    if (el && this.stack.length === 0) {
      // Emptied this way the array gives its storage back: an idle stream keeps none.
      this.stack.length = 0;
      this.stanzaChars = 0;
      this.handlers.element(el);
      if (this.failed || this.ended) throw STOP;
    }
  }

  private text(text: string): void {
    const parent = this.stack[this.stack.length - 1];
    if (parent) {
      this.stanzaChars += text.length;
      if (this.stanzaChars > this.limits.maxStanzaBytes)
        throw new LimitError(`stanza exceeds ${this.limits.maxStanzaBytes} bytes`);
      const last = parent.children.length - 1;
      if (last >= 0 && typeof parent.children[last] === 'string') parent.children[last] += text;
      else parent.children.push(text);
    } else if (text.trim() !== '') {
      throw new TokenizerError('not-well-formed', 'text is not allowed between stanzas');
    }
  }

  private fail(condition: XmlErrorCondition, message: string): void {
    if (this.failed) return;
    this.failed = new XmlError(condition, message);
    this.handlers.error(this.failed);
  }
}

class LimitError extends Error {}
class BadFormatError extends Error {}
/** Unwinds the tokenizer after the stream ended or a handler failed the stream. */
const STOP = Symbol('stop');
