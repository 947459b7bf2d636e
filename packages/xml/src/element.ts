/**
 * The element model shared by server and client.
 *
 * Every element carries its resolved namespace (`xmlns`). An element built without a namespace
 * (`xmlns === ''` and `inheritsNs`) takes its parent's namespace when appended, so builders read
 * like the XML they produce. Namespace declarations of the default namespace never appear in
 * `attrs`; prefixed attributes (`xml:lang`) keep their qualified names.
 */
export type Node = Element | string;
export type Attrs = Record<string, string>;

export class Element {
  name: string;
  xmlns: string;
  attrs: Attrs;
  children: Node[];
  /** true when the namespace was not given and is taken from the parent. */
  inheritsNs: boolean;

  constructor(name: string, xmlns = '', attrs: Attrs = {}, children: Node[] = []) {
    this.name = name;
    this.xmlns = xmlns;
    this.inheritsNs = xmlns === '';
    this.attrs = attrs;
    this.children = children;
  }

  /** Value of an attribute, or undefined. */
  attr(name: string): string | undefined {
    return this.attrs[name];
  }

  /** Sets (or with `undefined`, removes) an attribute; returns this for chaining. */
  setAttr(name: string, value: string | undefined): this {
    if (value === undefined) delete this.attrs[name];
    else this.attrs[name] = value;
    return this;
  }

  /** Appends a child; a child element without a namespace inherits this one's. */
  append(child: Node): this {
    if (typeof child !== 'string' && child.inheritsNs && this.xmlns !== '') adoptNs(child, this.xmlns);
    this.children.push(child);
    return this;
  }

  /** First child element with this local name (and namespace, if given). */
  getChild(name: string, xmlns?: string): Element | undefined {
    for (const c of this.children) {
      if (typeof c !== 'string' && c.name === name && (xmlns === undefined || c.xmlns === xmlns)) return c;
    }
    return undefined;
  }

  /** All child elements with this local name (and namespace, if given). */
  getChildren(name: string, xmlns?: string): Element[] {
    const out: Element[] = [];
    for (const c of this.children) {
      if (typeof c !== 'string' && c.name === name && (xmlns === undefined || c.xmlns === xmlns)) out.push(c);
    }
    return out;
  }

  /** First child element in a namespace, whatever its name. */
  getChildByNs(xmlns: string): Element | undefined {
    for (const c of this.children) if (typeof c !== 'string' && c.xmlns === xmlns) return c;
    return undefined;
  }

  /** Child elements only (text nodes skipped). */
  elements(): Element[] {
    const out: Element[] = [];
    for (const c of this.children) if (typeof c !== 'string') out.push(c);
    return out;
  }

  /** First child element, whatever its name: the payload of an IQ. */
  firstElement(): Element | undefined {
    for (const c of this.children) if (typeof c !== 'string') return c;
    return undefined;
  }

  /** Concatenated text content of direct text children. */
  text(): string {
    const { children } = this;
    if (children.length === 1 && typeof children[0] === 'string') return children[0];
    let s = '';
    for (const c of children) if (typeof c === 'string') s += c;
    return s;
  }

  /** Text of the first child with this name (and namespace), or undefined when absent. */
  getChildText(name: string, xmlns?: string): string | undefined {
    return this.getChild(name, xmlns)?.text();
  }

  /** Removes every child element with this name (and namespace). */
  removeChildren(name: string, xmlns?: string): this {
    this.children = this.children.filter(
      (c) => typeof c === 'string' || c.name !== name || (xmlns !== undefined && c.xmlns !== xmlns),
    );
    return this;
  }

  /** Deep copy. */
  clone(): Element {
    const copy = new Element(this.name, this.xmlns, { ...this.attrs });
    copy.inheritsNs = this.inheritsNs;
    copy.children = this.children.map((c) => (typeof c === 'string' ? c : c.clone()));
    return copy;
  }

  /** Is this element `name` in namespace `xmlns`? */
  is(name: string, xmlns?: string): boolean {
    return this.name === name && (xmlns === undefined || this.xmlns === xmlns);
  }

  toString(): string {
    return serialize(this, '');
  }
}

function adoptNs(el: Element, xmlns: string): void {
  el.xmlns = xmlns;
  el.inheritsNs = false;
  for (const c of el.children) if (typeof c !== 'string' && c.inheritsNs) adoptNs(c, xmlns);
}

export type Child = Node | null | undefined | false | readonly Child[];

/**
 * Builds an element: `xml('iq', { type: 'get', xmlns: 'jabber:client' }, xml('ping', { xmlns: 'urn:xmpp:ping' }))`.
 * `xmlns` in attrs sets the namespace; `undefined` attribute values are dropped; children may be
 * nested arrays and falsy values (skipped), which keeps conditional building readable.
 */
export function xml(
  name: string,
  attrs?: Record<string, string | number | undefined> | null,
  ...children: Child[]
): Element {
  const clean: Attrs = {};
  let ns = '';
  if (attrs) {
    for (const key in attrs) {
      const v = attrs[key];
      if (v === undefined) continue;
      if (key === 'xmlns') ns = String(v);
      else clean[key] = String(v);
    }
  }
  const el = new Element(name, ns, clean);
  appendAll(el, children);
  return el;
}

function appendAll(el: Element, children: readonly Child[]): void {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    if (Array.isArray(c)) appendAll(el, c as readonly Child[]);
    else el.append(c as Node);
  }
}

// ---------------------------------------------------------------------------------------------
// Serialisation

const TEXT_RE = /[&<>\r]/;
const ATTR_RE = /[&<>"\n\r\t]/;

export function escapeText(s: string): string {
  if (!TEXT_RE.test(s)) return s;
  // A CR is written as a reference: a literal one would reach the reader as a line feed (XML §2.11).
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/\r/g, '&#13;');
}

export function escapeAttr(s: string): string {
  if (!ATTR_RE.test(s)) return s;
  return s
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/\n/g, '&#10;')
    .replace(/\r/g, '&#13;')
    .replace(/\t/g, '&#9;');
}

export const NS_STREAM = 'http://etherx.jabber.org/streams';
/** XEP-0220; server stream headers declare it as `xmlns:db`. */
const NS_DIALBACK = 'jabber:server:dialback';
const STANZA_NAMESPACES = new Set(['jabber:client', 'jabber:server', 'jabber:component:accept']);

/**
 * Serialises an element. `contextNs` is the default namespace in force where it is written (the
 * stream's, e.g. `jabber:client`; `''` for a standalone document such as a WebSocket frame).
 * A top-level stanza in any of the stanza namespaces takes the stream's namespace, so a stanza
 * received on a client stream can be written to a server or component stream unchanged.
 */
export function serialize(el: Element, contextNs: string, streamPrefixDeclared = false): string {
  let ns = el.xmlns;
  let remap: Remap | undefined;
  if (contextNs !== '' && (ns === '' || STANZA_NAMESPACES.has(ns)) && STANZA_NAMESPACES.has(contextNs)) {
    // The stanza's own children (body, subject, error, …) move with it: a <body/> parsed on a
    // client stream is jabber:client, and must not stay so on a component stream.
    if (ns !== '' && ns !== contextNs) remap = { from: ns, to: contextNs };
    ns = contextNs;
  } else if (ns === '' && contextNs === '' && el.inheritsNs && isStanzaName(el.name)) ns = 'jabber:client';
  return write(el, ns, contextNs, streamPrefixDeclared, remap);
}

/** A stanza namespace rewritten to the stream's, for the stanza and its children in that namespace. */
interface Remap {
  from: string;
  to: string;
}

function isStanzaName(name: string): boolean {
  return name === 'message' || name === 'presence' || name === 'iq';
}

function write(el: Element, ns: string, parentNs: string, streamDeclared: boolean, remap?: Remap): string {
  let s: string;
  let tag: string;
  let childNs = ns;
  if (ns === NS_STREAM) {
    tag = `stream:${el.name}`;
    s = `<${tag}`;
    if (!streamDeclared) s += ` xmlns:stream="${NS_STREAM}"`;
    streamDeclared = true;
    childNs = parentNs; // children of stream elements keep the surrounding default namespace
  } else if (ns === NS_DIALBACK && parentNs === 'jabber:server' && streamDeclared) {
    // XEP-0220 elements on a server stream use the db: prefix its header declares: ejabberd
    // recognises <db:result/> and <db:verify/> by that name and drops the same elements written
    // with a default namespace.
    tag = `db:${el.name}`;
    s = `<${tag}`;
    childNs = parentNs; // their children (<error/>) are in the stream's namespace
  } else {
    tag = el.name;
    s = `<${tag}`;
    if (ns !== parentNs) s += ` xmlns="${escapeAttr(ns)}"`;
  }
  const { attrs } = el;
  for (const k in attrs) s += ` ${k}="${escapeAttr(attrs[k] as string)}"`;
  const { children } = el;
  if (children.length === 0) return s + '/>';
  s += '>';
  for (const c of children) {
    if (typeof c === 'string') s += escapeText(c);
    else {
      let cns = c.inheritsNs && c.xmlns === '' ? childNs : c.xmlns;
      // only where the stanza namespace is in force: a message forwarded inside keeps jabber:client
      if (remap && cns === remap.from && childNs === remap.to) cns = remap.to;
      s += write(c, cns, childNs, streamDeclared, remap);
    }
  }
  return s + `</${tag}>`;
}
