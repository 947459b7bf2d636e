import { XmlTokenizer, TokenizerError } from './xml-tokenizer.js';
import { Element } from './element.js';
import { XmlError } from './stream-parser.js';

/** Where an element opens: its name and namespace, and those of its ancestors (root first). */
export interface DocumentPath {
  name: string;
  xmlns: string;
  attrs: Record<string, string>;
  /** Ancestors, the root first; each without children. */
  ancestors: readonly Element[];
}

export interface DocumentReaderHandlers {
  /**
   * An element opens. Return true to receive it whole (with its subtree) in `element` once it
   * closes; otherwise only its start and end are told (`start`, `end`) and its text is dropped.
   */
  collect(path: DocumentPath): boolean;
  /** A collected element, complete. */
  element(el: Element, ancestors: readonly Element[]): void;
  /** An element not collected opened (attributes only, no children). */
  start?(el: Element, ancestors: readonly Element[]): void;
  /** That element closed. */
  end?(el: Element, ancestors: readonly Element[]): void;
}

export interface DocumentReaderLimits {
  /** Largest collected element, in characters of markup and text (a lower bound of its bytes). */
  maxElementChars: number;
  /** Deepest nesting, the root counting as 1. */
  maxDepth: number;
  maxAttributes: number;
}

const DEFAULTS: DocumentReaderLimits = { maxElementChars: 16 * 1024 * 1024, maxDepth: 64, maxAttributes: 64 };

class LimitError extends Error {}

/**
 * Reads a whole XML document (a file) incrementally with the strict tokenizer of the stream parser
 * (no DTDs, so no entity expansion): the caller chooses which subtrees are built, so memory is
 * bounded by the largest of them and not by the document. Errors are thrown as XmlError from
 * `write` and `end`.
 */
export class DocumentReader {
  private readonly tokenizer: XmlTokenizer;
  private readonly decoder = new TextDecoder('utf-8', { fatal: true });
  private readonly limits: DocumentReaderLimits;
  /** Open elements not collected (root first). */
  private readonly outer: Element[] = [];
  /** The element being collected, innermost last. */
  private readonly building: Element[] = [];
  private chars = 0;
  private done = false;

  constructor(
    private readonly handlers: DocumentReaderHandlers,
    limits: Partial<DocumentReaderLimits> = {},
  ) {
    this.limits = { ...DEFAULTS, ...limits };
    this.tokenizer = new XmlTokenizer({
      // A self-closing element is followed by close() from the tokenizer.
      open: (name, attrs, prefixed) => this.open(name.uri, name.local, attrs, prefixed),
      close: () => this.close(),
      text: (t) => this.text(t),
    });
  }

  /** Feeds bytes (UTF-8) or text. */
  write(chunk: Uint8Array | string): void {
    let text: string;
    if (typeof chunk === 'string') text = chunk;
    else {
      try {
        text = this.decoder.decode(chunk, { stream: true });
      } catch {
        throw new XmlError('not-well-formed', 'input is not valid UTF-8');
      }
    }
    try {
      this.tokenizer.write(text);
    } catch (e) {
      if (e instanceof TokenizerError) throw new XmlError(e.kind, e.message);
      if (e instanceof LimitError) throw new XmlError('policy-violation', e.message);
      throw e;
    }
    if (this.building.length > 0 && this.chars + this.tokenizer.pending > this.limits.maxElementChars)
      throw new XmlError('policy-violation', `an element exceeds ${this.limits.maxElementChars} characters`);
  }

  /** The input is over: throws unless the document was complete. */
  end(): void {
    if (!this.done) throw new XmlError('not-well-formed', 'the document ends before its root element closes');
  }

  private open(
    uri: string,
    local: string,
    attrs: Record<string, string>,
    prefixed: { name: string; uri: string }[] | null,
  ): void {
    if (this.done) throw new XmlError('not-well-formed', 'content after the root element');
    const depth = this.outer.length + this.building.length + 1;
    if (depth > this.limits.maxDepth) throw new LimitError(`nesting deeper than ${this.limits.maxDepth}`);
    if (Object.keys(attrs).length > this.limits.maxAttributes)
      throw new LimitError(`more than ${this.limits.maxAttributes} attributes`);
    if (prefixed)
      for (const p of prefixed)
        if (!p.name.startsWith('xml:')) attrs[`xmlns:${p.name.slice(0, p.name.indexOf(':'))}`] = p.uri;
    const el = new Element(local, uri, attrs);
    el.inheritsNs = false;
    const parent = this.building[this.building.length - 1];
    if (parent) {
      parent.children.push(el);
      this.building.push(el);
      this.count(local.length * 2 + 5);
      for (const k in attrs) this.count(k.length + attrs[k]!.length + 4);
      return;
    }
    if (this.handlers.collect({ name: local, xmlns: uri, attrs, ancestors: this.outer })) {
      this.building.push(el);
      this.chars = 0;
      return;
    }
    this.handlers.start?.(el, this.outer);
    this.outer.push(el);
  }

  private close(): void {
    const el = this.building.pop();
    if (el) {
      if (this.building.length === 0) {
        if (this.outer.length === 0) this.done = true; // the root itself was collected
        this.handlers.element(el, this.outer);
      }
      return;
    }
    const outer = this.outer.pop();
    if (!outer) return;
    this.handlers.end?.(outer, this.outer);
    if (this.outer.length === 0) this.done = true;
  }

  private text(text: string): void {
    const parent = this.building[this.building.length - 1];
    if (!parent) return;
    this.count(text.length);
    const last = parent.children.length - 1;
    if (last >= 0 && typeof parent.children[last] === 'string') parent.children[last] += text;
    else parent.children.push(text);
  }

  private count(n: number): void {
    this.chars += n;
    if (this.chars > this.limits.maxElementChars)
      throw new LimitError(`an element exceeds ${this.limits.maxElementChars} characters`);
  }
}
