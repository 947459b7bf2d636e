/**
 * A strict, incremental tokenizer for XMPP's XML subset (RFC 6120 §11), built for speed: it scans
 * with indexOf over whole chunks instead of character by character. It replaced saxes as the
 * parser behind StreamParser (docs/decisions/0002-xml-parser.md has the measurements); saxes
 * remains the oracle of its differential fuzz tests.
 *
 * Well-formedness checks: element and attribute names, quoted attribute values without `<`,
 * duplicate attributes, matching end tags, namespace prefixes bound, only the predefined entities
 * and valid character references, no illegal characters, no `]]>` in text, nothing but
 * whitespace outside the root. Refused as restricted XML: comments, processing instructions
 * (the XML declaration excepted), DTDs.
 */

export type TokenizerErrorKind = 'not-well-formed' | 'restricted-xml';

export class TokenizerError extends Error {
  constructor(
    readonly kind: TokenizerErrorKind,
    message: string,
  ) {
    super(message);
  }
}

export interface QName {
  /** Resolved namespace URI ('' when none). */
  uri: string;
  local: string;
}

export interface TokenizerHandlers {
  /** `attrs` excludes namespace declarations; prefixed attribute names are kept qualified. */
  /** `defaultNs` is the default namespace in scope for the element's content. */
  open(
    name: QName,
    attrs: Record<string, string>,
    prefixedAttrs: { name: string; uri: string }[] | null,
    selfClosing: boolean,
    defaultNs: string,
  ): void;
  close(): void;
  text(text: string): void;
}

const XML_NS = 'http://www.w3.org/XML/1998/namespace';
const XMLNS_NS = 'http://www.w3.org/2000/xmlns/';

// XML 1.0 (5th ed.) Name production, BMP plus astral ranges via the u flag.
const NAME_START =
  'A-Z_a-z\\u00C0-\\u00D6\\u00D8-\\u00F6\\u00F8-\\u02FF\\u0370-\\u037D\\u037F-\\u1FFF\\u200C-\\u200D\\u2070-\\u218F\\u2C00-\\u2FEF\\u3001-\\uD7FF\\uF900-\\uFDCF\\uFDF0-\\uFFFD\\u{10000}-\\u{EFFFF}';
const NAME_CHAR = NAME_START + '\\-.0-9\\u00B7\\u0300-\\u036F\\u203F-\\u2040';
/** A name without colons (NCName) … */
// eslint-disable-next-line no-misleading-character-class -- ranges of combining marks, as the XML spec lists them
const NCNAME_RE = new RegExp(`^[${NAME_START}][${NAME_CHAR}]*$`, 'u');
/** … and a cheap ASCII test that covers nearly every real name. */
const ASCII_NCNAME_RE = /^[A-Za-z_][A-Za-z0-9_.-]*$/;
/** Characters XML 1.0 forbids (lone surrogates cannot come out of the UTF-8 decoder). */
// eslint-disable-next-line no-control-regex -- matching control characters is the point
const ILLEGAL_CHAR_RE = /[\x00-\x08\x0B\x0C\x0E-\x1F\uFFFE\uFFFF]/;
const ENTITY_RE = /&([^;&<]*);?/g;
const WS_RE = /^[ \t\r\n]*$/;

function isNcName(s: string): boolean {
  return ASCII_NCNAME_RE.test(s) || NCNAME_RE.test(s);
}

function validCodePoint(cp: number): boolean {
  return (
    cp === 0x9 ||
    cp === 0xa ||
    cp === 0xd ||
    (cp >= 0x20 && cp <= 0xd7ff) ||
    (cp >= 0xe000 && cp <= 0xfffd) ||
    (cp >= 0x10000 && cp <= 0x10ffff)
  );
}

function decodeEntities(s: string): string {
  return s.replace(ENTITY_RE, (match: string, name: string) => {
    if (!match.endsWith(';'))
      throw new TokenizerError('not-well-formed', "'&' must start an entity reference ending with ';'");
    switch (name) {
      case 'amp':
        return '&';
      case 'lt':
        return '<';
      case 'gt':
        return '>';
      case 'quot':
        return '"';
      case 'apos':
        return "'";
    }
    let cp = NaN;
    if (/^#x[0-9A-Fa-f]{1,6}$/.test(name)) cp = parseInt(name.slice(2), 16);
    else if (/^#[0-9]{1,7}$/.test(name)) cp = parseInt(name.slice(1), 10);
    else throw new TokenizerError('not-well-formed', `undefined entity &${name.slice(0, 40)};`);
    if (!validCodePoint(cp))
      throw new TokenizerError(
        'not-well-formed',
        `character reference &${name}; is not a legal XML character`,
      );
    return String.fromCodePoint(cp);
  });
}

interface Frame {
  qname: string;
  /** Default namespace in scope. */
  ns: string;
  /** Prefix bindings in scope (shared with the parent unless this element declares some). */
  prefixes: Map<string, string> | null;
}

const ROOT_PREFIXES = new Map([['xml', XML_NS]]);

/**
 * The root element's frame lives as long as its stream (hours, for a client), so its strings are
 * copied out of the input (a slice would keep the whole stream header alive) and shared: the same
 * few names and namespaces open every stream, and its prefix map (maps are never changed once
 * made) is shared by every root that binds the same prefixes. Both tables are bounded; past the
 * bound, roots get their own copies.
 */
const KEPT_MAX = 64;
const keptStrings = new Map<string, string>();
const keptPrefixes = new Map<string, Map<string, string>>();

/**
 * Longest string, and most bindings, shared through the tables: they are filled by unauthenticated
 * input, so a long or odd header is copied for its stream but never kept for everyone.
 */
const KEPT_CHARS = 64;
const KEPT_BINDINGS = 3;

function keepString(s: string): string {
  const kept = keptStrings.get(s);
  if (kept !== undefined) return kept;
  // A string parsed anew is a string of its own, not a view into the input.
  const copy = JSON.parse(JSON.stringify(s)) as string;
  if (keptStrings.size < KEPT_MAX && copy.length <= KEPT_CHARS) keptStrings.set(copy, copy);
  return copy;
}

function keepPrefixes(prefixes: Map<string, string>): Map<string, string> {
  if (prefixes === ROOT_PREFIXES) return prefixes;
  let key = '';
  for (const [p, uri] of prefixes) key += `${p}\u0000${uri}\u0000`;
  const kept = keptPrefixes.get(key);
  if (kept !== undefined) return kept;
  const copy = new Map<string, string>();
  for (const [p, uri] of prefixes) copy.set(keepString(p), keepString(uri));
  if (keptPrefixes.size < KEPT_MAX && prefixes.size <= KEPT_BINDINGS && key.length <= 4 * KEPT_CHARS)
    keptPrefixes.set(key, copy);
  return copy;
}

export class XmlTokenizer {
  private buf = '';
  private stack: Frame[] = [];
  private seenRoot = false;
  private rootClosed = false;
  private started = false;

  constructor(private readonly h: TokenizerHandlers) {}

  /** Characters buffered while waiting for the end of a construct. */
  get pending(): number {
    return this.buf.length;
  }

  get depth(): number {
    return this.stack.length;
  }

  /** True while an incomplete construct (a tag, a reference, text other than whitespace) is buffered. */
  get partial(): boolean {
    return this.buf.length > 0 && this.buf.trim().length > 0;
  }

  /** Feeds text; throws TokenizerError on the first violation. */
  write(chunk: string): void {
    let s = this.buf.length === 0 ? chunk : this.buf + chunk;
    let pos = 0;
    const len = s.length;
    const h = this.h;
    try {
      while (pos < len) {
        const lt = s.indexOf('<', pos);
        if (lt === -1) {
          // Text up to the end: emit what is certainly complete (an '&' may be cut).
          const amp = s.lastIndexOf('&');
          const semi = s.lastIndexOf(';');
          const end = amp >= pos && amp > semi ? amp : len;
          if (end > pos) this.emitText(s.slice(pos, end));
          pos = end;
          break;
        }
        if (lt > pos) this.emitText(s.slice(pos, lt));
        pos = lt;
        if (pos + 1 >= len) break; // need the next character
        const c = s.charCodeAt(pos + 1);
        if (c === 47 /* / */) {
          const gt = s.indexOf('>', pos + 2);
          if (gt === -1) break;
          this.endTag(s.slice(pos + 2, gt));
          pos = gt + 1;
        } else if (c === 33 /* ! */) {
          if (s.startsWith('<![CDATA[', pos)) {
            if (this.stack.length === 0)
              throw new TokenizerError('not-well-formed', 'CDATA outside the root element');
            const end = s.indexOf(']]>', pos + 9);
            if (end === -1) break;
            const data = s.slice(pos + 9, end);
            if (ILLEGAL_CHAR_RE.test(data))
              throw new TokenizerError('not-well-formed', 'illegal character in CDATA');
            if (data.length > 0) h.text(data.includes('\r') ? data.replace(/\r\n?/g, '\n') : data);
            pos = end + 3;
          } else if (len - pos < 9 && '<![CDATA['.startsWith(s.slice(pos, len))) {
            break;
          } else if (s.startsWith('<!--', pos) || (len - pos < 4 && '<!--'.startsWith(s.slice(pos, len)))) {
            throw new TokenizerError('restricted-xml', 'comments are not allowed in XMPP');
          } else {
            throw new TokenizerError(
              'restricted-xml',
              'DTDs and markup declarations are not allowed in XMPP',
            );
          }
        } else if (c === 63 /* ? */) {
          const end = s.indexOf('?>', pos + 2);
          const isDecl =
            !this.started && s.startsWith('<?xml', pos) && (len - pos < 6 || /[ \t\r\n?]/.test(s[pos + 5]!));
          if (!isDecl) {
            if (!this.started && len - pos < 6 && '<?xml '.startsWith(s.slice(pos, len))) break;
            throw new TokenizerError('restricted-xml', 'processing instructions are not allowed in XMPP');
          }
          if (end === -1) break;
          this.xmlDecl(s.slice(pos + 5, end));
          pos = end + 2;
          this.started = true;
        } else {
          const next = this.startTag(s, pos);
          if (next === -1) break;
          pos = next;
        }
      }
    } catch (e) {
      this.buf = '';
      throw e;
    }
    this.buf = pos < len ? s.slice(pos) : '';
    s = '';
  }

  private xmlDecl(body: string): void {
    if (
      !/^\s+version\s*=\s*(['"])1\.[0-9]+\1(\s+encoding\s*=\s*(['"])[A-Za-z][A-Za-z0-9._-]*\3)?(\s+standalone\s*=\s*(['"])(yes|no)\5)?\s*$/.test(
        body,
      )
    ) {
      throw new TokenizerError('not-well-formed', 'malformed XML declaration');
    }
    const enc = /encoding\s*=\s*['"]([^'"]+)/.exec(body)?.[1];
    if (enc && enc.toLowerCase() !== 'utf-8')
      throw new TokenizerError('not-well-formed', 'XMPP streams must be UTF-8');
  }

  private emitText(t: string): void {
    this.started = true;
    if (this.stack.length === 0) {
      if (!WS_RE.test(t)) throw new TokenizerError('not-well-formed', 'text outside the root element');
      return;
    }
    if (ILLEGAL_CHAR_RE.test(t)) throw new TokenizerError('not-well-formed', 'illegal XML character in text');
    if (t.includes(']]>')) throw new TokenizerError('not-well-formed', "']]>' is not allowed in text");
    // XML 1.0 §2.11: a literal CRLF or CR is a line feed (a &#13; reference stays a CR).
    if (t.includes('\r')) t = t.replace(/\r\n?/g, '\n');
    this.h.text(t.includes('&') ? decodeEntities(t) : t);
  }

  /** Parses a start tag at `start`; returns the position after it, or -1 when incomplete. */
  private startTag(s: string, start: number): number {
    const len = s.length;
    let i = start + 1;
    // element name
    while (i < len) {
      const c = s.charCodeAt(i);
      if (c === 32 || c === 62 || c === 47 || c === 9 || c === 10 || c === 13) break;
      i++;
    }
    if (i >= len) return -1;
    const qname = s.slice(start + 1, i);
    if (this.rootClosed) throw new TokenizerError('not-well-formed', 'content after the root element');
    let raw: [string, string][] | null = null;
    let selfClosing = false;
    for (;;) {
      // skip whitespace
      let sawSpace = false;
      while (i < len) {
        const c = s.charCodeAt(i);
        if (c !== 32 && c !== 9 && c !== 10 && c !== 13) break;
        sawSpace = true;
        i++;
      }
      if (i >= len) return -1;
      const c = s.charCodeAt(i);
      if (c === 62 /* > */) {
        i++;
        break;
      }
      if (c === 47 /* / */) {
        if (i + 1 >= len) return -1;
        if (s.charCodeAt(i + 1) !== 62) throw new TokenizerError('not-well-formed', "expected '>' after '/'");
        selfClosing = true;
        i += 2;
        break;
      }
      if (!sawSpace)
        throw new TokenizerError('not-well-formed', 'attributes must be separated by whitespace');
      // attribute name
      const nameStart = i;
      while (i < len) {
        const d = s.charCodeAt(i);
        if (d === 61 || d === 32 || d === 9 || d === 10 || d === 13 || d === 62 || d === 47) break;
        i++;
      }
      if (i >= len) return -1;
      const name = s.slice(nameStart, i);
      while (
        i < len &&
        (s.charCodeAt(i) === 32 || s.charCodeAt(i) === 9 || s.charCodeAt(i) === 10 || s.charCodeAt(i) === 13)
      )
        i++;
      if (i >= len) return -1;
      if (s.charCodeAt(i) !== 61)
        throw new TokenizerError('not-well-formed', `attribute ${name.slice(0, 40)} has no value`);
      i++;
      while (
        i < len &&
        (s.charCodeAt(i) === 32 || s.charCodeAt(i) === 9 || s.charCodeAt(i) === 10 || s.charCodeAt(i) === 13)
      )
        i++;
      if (i >= len) return -1;
      const q = s.charCodeAt(i);
      if (q !== 34 && q !== 39)
        throw new TokenizerError('not-well-formed', 'attribute values must be quoted');
      const end = s.indexOf(q === 34 ? '"' : "'", i + 1);
      if (end === -1) return -1;
      let value = s.slice(i + 1, end);
      i = end + 1;
      if (value.includes('<'))
        throw new TokenizerError('not-well-formed', "'<' is not allowed in attribute values");
      if (ILLEGAL_CHAR_RE.test(value))
        throw new TokenizerError('not-well-formed', 'illegal XML character in an attribute value');
      // XML 1.0 §2.11 then §3.3.3: CRLF and CR are one line end, and each line end or tab is a space.
      if (/[\t\n\r]/.test(value)) value = value.replace(/\r\n|[\t\n\r]/g, ' ');
      if (value.includes('&')) value = decodeEntities(value);
      (raw ??= []).push([name, value]);
    }
    this.openElement(qname, raw, selfClosing);
    return i;
  }

  private openElement(qname: string, raw: [string, string][] | null, selfClosing: boolean): void {
    this.started = true;
    if (this.stack.length === 0) {
      if (this.seenRoot) throw new TokenizerError('not-well-formed', 'only one root element is allowed');
      this.seenRoot = true;
    }
    const parent = this.stack[this.stack.length - 1];
    let ns = parent ? parent.ns : '';
    let prefixes = parent ? parent.prefixes : ROOT_PREFIXES;
    const attrs: Record<string, string> = {};
    let plain: [string, string][] | null = null;
    if (raw) {
      for (let a = 0; a < raw.length; a++) {
        const [name, value] = raw[a]!;
        for (let b = 0; b < a; b++) {
          if (raw[b]![0] === name)
            throw new TokenizerError('not-well-formed', `duplicate attribute ${name.slice(0, 40)}`);
        }
        if (name === 'xmlns') {
          if (value === XML_NS || value === XMLNS_NS)
            throw new TokenizerError('not-well-formed', 'reserved namespace as default');
          ns = value;
        } else if (name.startsWith('xmlns:')) {
          const p = name.slice(6);
          if (!isNcName(p))
            throw new TokenizerError('not-well-formed', `bad namespace prefix ${p.slice(0, 40)}`);
          if (p === 'xmlns' || (p === 'xml' && value !== XML_NS) || value === '') {
            throw new TokenizerError('not-well-formed', `cannot bind prefix ${p}`);
          }
          if (prefixes === (parent ? parent.prefixes : ROOT_PREFIXES)) prefixes = new Map(prefixes);
          prefixes!.set(p, value);
        } else {
          (plain ??= []).push([name, value]);
        }
      }
    }
    if (!parent) {
      qname = keepString(qname);
      ns = keepString(ns);
      prefixes = keepPrefixes(prefixes!);
    }
    // element name
    const colon = qname.indexOf(':');
    let uri: string;
    let local: string;
    if (colon === -1) {
      if (!isNcName(qname))
        throw new TokenizerError('not-well-formed', `invalid element name ${qname.slice(0, 40)}`);
      uri = ns;
      local = qname;
    } else {
      const p = qname.slice(0, colon);
      local = qname.slice(colon + 1);
      if (!isNcName(p) || !isNcName(local))
        throw new TokenizerError('not-well-formed', `invalid element name ${qname.slice(0, 40)}`);
      const bound = prefixes!.get(p);
      if (bound === undefined)
        throw new TokenizerError('not-well-formed', `unbound namespace prefix ${p.slice(0, 40)}`);
      uri = bound;
    }
    let prefixed: { name: string; uri: string }[] | null = null;
    if (plain) {
      for (const [name, value] of plain) {
        const c = name.indexOf(':');
        if (c === -1) {
          if (!isNcName(name))
            throw new TokenizerError('not-well-formed', `invalid attribute name ${name.slice(0, 40)}`);
        } else {
          const p = name.slice(0, c);
          const l = name.slice(c + 1);
          if (!isNcName(p) || !isNcName(l))
            throw new TokenizerError('not-well-formed', `invalid attribute name ${name.slice(0, 40)}`);
          const bound = prefixes!.get(p);
          if (bound === undefined)
            throw new TokenizerError('not-well-formed', `unbound namespace prefix ${p.slice(0, 40)}`);
          if (prefixed) {
            for (const x of prefixed)
              if (x.uri === bound && x.name.slice(x.name.indexOf(':') + 1) === l)
                throw new TokenizerError('not-well-formed', 'duplicate attribute');
          }
          (prefixed ??= []).push({ name, uri: bound });
        }
        attrs[name] = value;
      }
    }
    this.stack.push({ qname, ns, prefixes });
    this.h.open({ uri, local }, attrs, prefixed, selfClosing, ns);
    if (selfClosing) this.closeElement();
  }

  private endTag(body: string): void {
    let name = body;
    const last = body.charCodeAt(body.length - 1);
    if (last === 32 || last === 9 || last === 10 || last === 13) name = body.trimEnd();
    const top = this.stack[this.stack.length - 1];
    if (!top) throw new TokenizerError('not-well-formed', `unexpected end tag </${name.slice(0, 40)}>`);
    if (top.qname !== name)
      throw new TokenizerError(
        'not-well-formed',
        `end tag </${name.slice(0, 40)}> does not match <${top.qname.slice(0, 40)}>`,
      );
    this.closeElement();
  }

  private closeElement(): void {
    this.stack.pop();
    if (this.stack.length === 0) this.rootClosed = true;
    this.h.close();
  }
}
