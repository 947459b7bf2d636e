import { xml, type Element } from '@natter/xml';
import { StanzaError, errorReply, NS } from '@natter/protocol';
import type { RouteEvent, MaybePromise } from './hooks.js';

/** What an IQ handler returns: the result payload, or nothing for an empty result. */
export type IqHandler = (req: IqRequest) => MaybePromise<Element | void | undefined>;

export interface IqRequest extends RouteEvent {
  /** The IQ's only child. */
  payload: Element;
  type: 'get' | 'set';
}

/**
 * IQ handlers by type and payload (namespace + element name), as xmpp.js and ejabberd do: a
 * returned element becomes the result, a thrown StanzaError an error reply, any other throw
 * `internal-server-error`; an IQ no handler claims is not answered here (the caller decides).
 */
export class IqDispatcher {
  private readonly handlers = new Map<string, { fn: IqHandler; owner: string }>();

  constructor(private readonly onCrash: (owner: string, err: unknown, stanza: Element) => void) {}

  private static key(type: string, xmlns: string, name: string): string {
    return `${type} ${xmlns} ${name}`;
  }

  on(type: 'get' | 'set', xmlns: string, name: string, fn: IqHandler, owner = 'core'): () => void {
    const key = IqDispatcher.key(type, xmlns, name);
    if (this.handlers.has(key))
      throw new Error(
        `IQ ${type} <${name} xmlns='${xmlns}'/> already has a handler (${this.handlers.get(key)!.owner})`,
      );
    this.handlers.set(key, { fn, owner });
    return () => this.handlers.delete(key);
  }

  /** Namespaces with a handler (disco features derive from them). */
  namespaces(): string[] {
    return [...new Set([...this.handlers.keys()].map((k) => k.split(' ')[1]!))];
  }

  /** Finds the handler for a request IQ; undefined when nobody handles it. */
  find(stanza: Element): { fn: IqHandler; owner: string; payload: Element } | undefined {
    const type = stanza.attrs.type;
    if (type !== 'get' && type !== 'set') return undefined;
    const payload = stanza.firstElement();
    if (!payload) return undefined;
    const h = this.handlers.get(IqDispatcher.key(type, payload.xmlns, payload.name));
    return h && { ...h, payload };
  }

  /**
   * Runs the handler for `ev` and returns the reply stanza (result or error), or undefined when no
   * handler is registered for it.
   */
  dispatch(ev: RouteEvent): MaybePromise<Element> | undefined {
    const found = this.find(ev.stanza);
    if (!found) return undefined;
    const req: IqRequest = { ...ev, payload: found.payload, type: ev.stanza.attrs.type as 'get' | 'set' };
    try {
      const r = found.fn(req);
      if (r instanceof Promise)
        return r.then(
          (v) => resultReply(ev.stanza, v),
          (err: unknown) => this.failure(found.owner, ev.stanza, err),
        );
      return resultReply(ev.stanza, r);
    } catch (err) {
      return this.failure(found.owner, ev.stanza, err);
    }
  }

  private failure(owner: string, stanza: Element, err: unknown): Element {
    if (err instanceof StanzaError) return errorReply(stanza, err);
    this.onCrash(owner, err, stanza);
    return errorReply(stanza, new StanzaError('internal-server-error'));
  }
}

export function resultReply(iq: Element, payload: Element | void | undefined): Element {
  return xml(
    'iq',
    { xmlns: NS.client, type: 'result', id: iq.attrs.id, from: iq.attrs.to, to: iq.attrs.from },
    payload ?? null,
  );
}
