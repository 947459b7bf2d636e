import { Element, xml } from '@natter/xml';
import { NS } from './namespaces.js';

/** RFC 6120 §8.3.3 stanza error conditions. */
export type StanzaErrorCondition =
  | 'bad-request'
  | 'conflict'
  | 'feature-not-implemented'
  | 'forbidden'
  | 'gone'
  | 'internal-server-error'
  | 'item-not-found'
  | 'jid-malformed'
  | 'not-acceptable'
  | 'not-allowed'
  | 'not-authorized'
  | 'policy-violation'
  | 'recipient-unavailable'
  | 'redirect'
  | 'registration-required'
  | 'remote-server-not-found'
  | 'remote-server-timeout'
  | 'resource-constraint'
  | 'service-unavailable'
  | 'subscription-required'
  | 'undefined-condition'
  | 'unexpected-request';

export type StanzaErrorType = 'auth' | 'cancel' | 'continue' | 'modify' | 'wait';

/** The error type RFC 6120 §8.3.3 recommends for each condition. */
export const DEFAULT_ERROR_TYPE: Record<StanzaErrorCondition, StanzaErrorType> = {
  'bad-request': 'modify',
  conflict: 'cancel',
  'feature-not-implemented': 'cancel',
  forbidden: 'auth',
  gone: 'cancel',
  'internal-server-error': 'cancel',
  'item-not-found': 'cancel',
  'jid-malformed': 'modify',
  'not-acceptable': 'modify',
  'not-allowed': 'cancel',
  'not-authorized': 'auth',
  'policy-violation': 'modify',
  'recipient-unavailable': 'wait',
  redirect: 'modify',
  'registration-required': 'auth',
  'remote-server-not-found': 'cancel',
  'remote-server-timeout': 'wait',
  'resource-constraint': 'wait',
  'service-unavailable': 'cancel',
  'subscription-required': 'auth',
  'undefined-condition': 'cancel',
  'unexpected-request': 'wait',
};

export interface StanzaErrorOptions {
  type?: StanzaErrorType;
  text?: string;
  /** Application-specific condition element (e.g. pubsub's `<invalid-jid/>`). */
  appCondition?: Element;
  /** For `gone`/`redirect`: the new address. */
  value?: string;
  /** Who generated the error (RFC 6120 §8.3.2 `by`). */
  by?: string;
}

/** A stanza-level error (RFC 6120 §8.3): thrown by handlers, turned into an error reply. */
export class StanzaError extends Error {
  override readonly name = 'StanzaError';
  readonly type: StanzaErrorType;
  readonly text: string | undefined;
  readonly appCondition: Element | undefined;
  readonly value: string | undefined;
  readonly by: string | undefined;

  constructor(
    readonly condition: StanzaErrorCondition,
    opts: StanzaErrorOptions = {},
  ) {
    super(opts.text ? `${condition}: ${opts.text}` : condition);
    this.type = opts.type ?? DEFAULT_ERROR_TYPE[condition];
    this.text = opts.text;
    this.appCondition = opts.appCondition;
    this.value = opts.value;
    this.by = opts.by;
  }

  /** The `<error/>` element. */
  toElement(): Element {
    return xml(
      'error',
      { type: this.type, by: this.by },
      xml(this.condition, { xmlns: NS.stanzas }, this.value),
      this.text !== undefined && xml('text', { xmlns: NS.stanzas, 'xml:lang': 'en' }, this.text),
      this.appCondition,
    );
  }

  /** Reads the `<error/>` child of an error stanza. */
  static fromStanza(stanza: Element): StanzaError {
    const err = stanza.getChild('error');
    let condition: StanzaErrorCondition = 'undefined-condition';
    let text: string | undefined;
    let app: Element | undefined;
    let value: string | undefined;
    if (err) {
      for (const c of err.elements()) {
        if (c.xmlns === NS.stanzas) {
          if (c.name === 'text') text = c.text();
          else if (c.name in DEFAULT_ERROR_TYPE) {
            condition = c.name as StanzaErrorCondition;
            value = c.text() || undefined;
          }
        } else app = c;
      }
    }
    const type = err?.attr('type') as StanzaErrorType | undefined;
    return new StanzaError(condition, {
      type: type ?? DEFAULT_ERROR_TYPE[condition],
      text,
      appCondition: app,
      value,
      by: err?.attr('by'),
    });
  }
}

/**
 * Builds the error reply to a stanza (RFC 6120 §8.3.1): same kind and id, addresses swapped,
 * type "error", the original payload kept for messages and presences (not for IQs).
 */
export function errorReply(stanza: Element, error: StanzaError): Element {
  const reply = xml(stanza.name, {
    xmlns: stanza.xmlns || NS.client,
    type: 'error',
    id: stanza.attr('id'),
    from: stanza.attr('to'),
    to: stanza.attr('from'),
  });
  if (stanza.name !== 'iq') {
    for (const c of stanza.children) if (typeof c !== 'string' && c.name !== 'error') reply.append(c.clone());
  } else {
    const payload = stanza.firstElement();
    if (payload && stanza.attr('type') !== 'result') reply.append(payload.clone());
  }
  reply.append(error.toElement());
  return reply;
}

/** RFC 6120 §4.9.3 stream error conditions. */
export type StreamErrorCondition =
  | 'bad-format'
  | 'bad-namespace-prefix'
  | 'conflict'
  | 'connection-timeout'
  | 'host-gone'
  | 'host-unknown'
  | 'improper-addressing'
  | 'internal-server-error'
  | 'invalid-from'
  | 'invalid-namespace'
  | 'invalid-xml'
  | 'not-authorized'
  | 'not-well-formed'
  | 'policy-violation'
  | 'remote-connection-failed'
  | 'reset'
  | 'resource-constraint'
  | 'restricted-xml'
  | 'see-other-host'
  | 'system-shutdown'
  | 'undefined-condition'
  | 'unsupported-encoding'
  | 'unsupported-feature'
  | 'unsupported-stanza-type'
  | 'unsupported-version';

/** A stream-level error (RFC 6120 §4.9): fatal for the stream. */
export class StreamError extends Error {
  override readonly name = 'StreamError';
  constructor(
    readonly condition: StreamErrorCondition,
    readonly text?: string,
  ) {
    super(text ? `${condition}: ${text}` : condition);
  }

  toElement(): Element {
    return xml(
      'error',
      { xmlns: NS.stream },
      xml(this.condition, { xmlns: NS.streams }),
      this.text !== undefined && xml('text', { xmlns: NS.streams, 'xml:lang': 'en' }, this.text),
    );
  }

  static fromElement(el: Element): StreamError {
    let condition: StreamErrorCondition = 'undefined-condition';
    let text: string | undefined;
    for (const c of el.elements()) {
      if (c.xmlns !== NS.streams) continue;
      if (c.name === 'text') text = c.text();
      else condition = c.name as StreamErrorCondition;
    }
    return new StreamError(condition, text);
  }
}
