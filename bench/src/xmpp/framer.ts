/**
 * Minimal incremental XMPP stream framer for the load generator.
 *
 * It does not build a tree: it only finds where each first-level child of `<stream:stream>` begins
 * and ends and hands over its raw text, which the generator then inspects with `indexOf`. Tags are
 * scanned quote-aware (a `>` inside an attribute value does not end a tag); character data between
 * tags is skipped with `indexOf('<')`, so the cost is proportional to the number of tags, not bytes.
 * Input must be text already decoded from UTF-8 (the socket's `setEncoding('utf8')` keeps multi-byte
 * characters split across chunks intact). Servers under test are trusted: no well-formedness checks.
 */
export interface FramerHandlers {
  streamOpen(header: string): void;
  element(xml: string): void;
  streamClose(): void;
}

export class Framer {
  private buf = '';
  private pos = 0;
  private level = 0;
  private start = 0;
  private open = false;

  constructor(private readonly h: FramerHandlers) {}

  /** Forget everything: the next input starts a new stream (after STARTTLS or SASL success). */
  reset(): void {
    this.buf = '';
    this.pos = 0;
    this.level = 0;
    this.start = 0;
    this.open = false;
  }

  push(chunk: string): void {
    this.buf = this.buf.length === 0 ? chunk : this.buf + chunk;
    const buf = this.buf;
    const n = buf.length;
    let i = this.pos;
    for (;;) {
      const lt = buf.indexOf('<', i);
      if (lt < 0) {
        i = n;
        break;
      }
      // Find the tag's closing '>' outside quotes.
      let j = lt + 1;
      let quote = 0;
      for (; j < n; j++) {
        const c = buf.charCodeAt(j);
        if (quote !== 0) {
          if (c === quote) quote = 0;
        } else if (c === 62 /* > */) break;
        else if (c === 39 /* ' */ || c === 34 /* " */) quote = c;
      }
      if (j >= n) {
        i = lt; // incomplete tag: wait for more input
        break;
      }
      const c1 = buf.charCodeAt(lt + 1);
      if (c1 === 63 /* ? */ || c1 === 33 /* ! */) {
        i = j + 1; // XML declaration or comment-like markup: ignored
        continue;
      }
      if (c1 === 47 /* / */) {
        if (this.level === 0) {
          this.h.streamClose();
          i = j + 1;
          continue;
        }
        this.level--;
        if (this.level === 0) this.h.element(buf.slice(this.start, j + 1));
        i = j + 1;
        if (this.buf !== buf) return; // a handler reset the framer
        continue;
      }
      if (!this.open) {
        this.open = true;
        this.h.streamOpen(buf.slice(lt, j + 1));
        i = j + 1;
        if (this.buf !== buf) return;
        continue;
      }
      const selfClosing = buf.charCodeAt(j - 1) === 47;
      if (this.level === 0) {
        this.start = lt;
        if (selfClosing) {
          this.h.element(buf.slice(lt, j + 1));
          i = j + 1;
          if (this.buf !== buf) return;
          continue;
        }
      }
      if (!selfClosing) this.level++;
      i = j + 1;
    }
    // Drop what has been consumed.
    const keepFrom = this.level > 0 ? this.start : i;
    this.buf = keepFrom >= n ? '' : buf.slice(keepFrom);
    this.pos = i - keepFrom;
    if (this.level > 0) this.start = 0;
  }
}

/** Value of attribute `name` in the first tag of `xml` (no entity decoding beyond &apos;/&quot;/&amp;). */
export function attr(xml: string, name: string): string | undefined {
  const end = tagEnd(xml);
  let from = 0;
  for (;;) {
    const k = xml.indexOf(name + '=', from);
    if (k < 0 || (end >= 0 && k > end)) return undefined;
    const before = xml.charCodeAt(k - 1);
    if (before !== 32 && before !== 9 && before !== 10 && before !== 13) {
      from = k + 1;
      continue;
    }
    const q = xml[k + name.length + 1];
    const vStart = k + name.length + 2;
    const vEnd = xml.indexOf(q ?? "'", vStart);
    return xml.slice(vStart, vEnd);
  }
}

/** Index of the '>' that ends the first tag, skipping quoted attribute values. */
function tagEnd(xml: string): number {
  let quote = 0;
  for (let j = 1; j < xml.length; j++) {
    const c = xml.charCodeAt(j);
    if (quote !== 0) {
      if (c === quote) quote = 0;
    } else if (c === 62) return j;
    else if (c === 39 || c === 34) quote = c;
  }
  return -1;
}

/** Text between the first `<tag>`/`<tag …>` and its `</tag>`, or undefined. */
export function childText(xml: string, tag: string): string | undefined {
  let k = xml.indexOf('<' + tag);
  while (k >= 0) {
    const c = xml.charCodeAt(k + tag.length + 1);
    if (c === 62 || c === 32 || c === 47) break;
    k = xml.indexOf('<' + tag, k + 1);
  }
  if (k < 0) return undefined;
  const gt = xml.indexOf('>', k);
  if (xml.charCodeAt(gt - 1) === 47) return '';
  const close = xml.indexOf('</' + tag + '>', gt);
  return close < 0 ? undefined : xml.slice(gt + 1, close);
}

/** The element's local name with any prefix, e.g. `message`, `stream:features`. */
export function elementName(xml: string): string {
  let e = 1;
  while (e < xml.length) {
    const c = xml.charCodeAt(e);
    if (c === 32 || c === 62 || c === 47 || c === 9 || c === 10 || c === 13) break;
    e++;
  }
  return xml.slice(1, e);
}

export function escapeXml(s: string): string {
  return s
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/'/g, '&apos;')
    .replace(/"/g, '&quot;');
}
