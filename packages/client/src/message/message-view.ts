import type { Element } from '@natter/xml';
import { tryParseJid, type Jid } from '@natter/jid';
import { NS, parseDateTime } from '@natter/protocol';

export type MessageType = 'chat' | 'normal' | 'groupchat' | 'headline' | 'error';

/** A XEP-0359 `<stanza-id/>`: the id `by` (an archive: an account or a room) gave the message. */
export interface StanzaId {
  by: string;
  id: string;
}

/** XEP-0203 delayed delivery: when the message was first sent, and who delayed it. */
export interface DelayInfo {
  stamp: Date;
  from?: string;
}

/** A typed, read-only view of a `<message/>` stanza; `element` is the stanza itself. */
export interface MessageView {
  readonly element: Element;
  /** The stanza's `id` attribute. */
  readonly id?: string;
  /** RFC 6121 §5.2.2: `normal` when the attribute is missing or unknown. */
  readonly type: MessageType;
  readonly from?: string;
  readonly to?: string;
  /** `from` parsed (undefined when missing or malformed). */
  readonly fromJid?: Jid;
  /** `to` parsed (undefined when missing or malformed). */
  readonly toJid?: Jid;
  readonly body?: string;
  readonly subject?: string;
  readonly thread?: string;
  /** XEP-0359 `<origin-id/>`: the id the sending client gave the message. */
  readonly originId?: string;
  /** XEP-0359 `<stanza-id/>`s, in document order. */
  readonly stanzaIds: readonly StanzaId[];
  /** XEP-0203 `<delay/>`, when present and well formed. */
  readonly delay?: DelayInfo;
}

const TYPES = new Set<string>(['chat', 'normal', 'groupchat', 'headline', 'error']);

/** Children in the stanza's own namespace (`jabber:client`, or none for elements built locally). */
function own(el: Element, name: string): Element | undefined {
  for (const c of el.children) {
    if (typeof c !== 'string' && c.name === name && (c.xmlns === el.xmlns || c.xmlns === NS.client)) return c;
  }
  return undefined;
}

/** Reads a `<message/>` into a typed view (nothing is copied: `element` is the stanza given). */
export function readMessage(el: Element): MessageView {
  const type = el.attr('type');
  const from = el.attr('from');
  const to = el.attr('to');
  const delayEl = el.getChild('delay', NS.delay);
  const stamp = parseDateTime(delayEl?.attr('stamp'));
  const stanzaIds: StanzaId[] = [];
  for (const s of el.getChildren('stanza-id', NS.sid)) {
    const by = s.attr('by');
    const id = s.attr('id');
    if (by && id) stanzaIds.push({ by, id });
  }
  const view: {
    -readonly [K in keyof MessageView]: MessageView[K];
  } = {
    element: el,
    type: type !== undefined && TYPES.has(type) ? (type as MessageType) : 'normal',
    stanzaIds,
  };
  const id = el.attr('id');
  if (id !== undefined) view.id = id;
  if (from !== undefined) {
    view.from = from;
    const j = tryParseJid(from);
    if (j) view.fromJid = j;
  }
  if (to !== undefined) {
    view.to = to;
    const j = tryParseJid(to);
    if (j) view.toJid = j;
  }
  const body = own(el, 'body')?.text();
  if (body !== undefined) view.body = body;
  const subject = own(el, 'subject')?.text();
  if (subject !== undefined) view.subject = subject;
  const thread = own(el, 'thread')?.text();
  if (thread !== undefined) view.thread = thread;
  const originId = el.getChild('origin-id', NS.sid)?.attr('id');
  if (originId) view.originId = originId;
  if (delayEl && stamp) {
    const delayFrom = delayEl.attr('from');
    view.delay = delayFrom === undefined ? { stamp } : { stamp, from: delayFrom };
  }
  return view;
}

/** The id `by` (a bare JID) gave the message (XEP-0359), if it did. */
export function stanzaIdBy(view: MessageView, by: string | Jid): string | undefined {
  const want = String(by);
  return view.stanzaIds.find((s) => s.by === want)?.id;
}
