// A stand-in for the XMPP side in the bridge's own tests: stanzas "from users" are handed to the
// gateway the way @natter/component hands them over, and what the gateway sends is recorded.
// End-to-end tests with a real XMPP server and client are in e2e.test.ts.
import { parseJid } from '@natter/jid';
import { parseElement } from '@natter/xml';
import type { Element } from '@natter/xml';
import type { GatewayComponent, IncomingStanza } from '../../src/gateway.js';

type Handler = (arg: IncomingStanza) => void;

export class LoopbackComponent implements GatewayComponent {
  readonly sent: Element[] = [];
  private readonly handlers = new Map<string, Handler[]>();
  private readonly waiters = new Set<{ match: (el: Element) => boolean; resolve: (el: Element) => void }>();

  on(event: 'message' | 'presence' | 'online', handler: Handler | (() => void)): void {
    const list = this.handlers.get(event) ?? [];
    list.push(handler as Handler);
    this.handlers.set(event, list);
  }

  send(element: Element): void {
    this.sent.push(element);
    for (const w of this.waiters) {
      if (w.match(element)) {
        this.waiters.delete(w);
        w.resolve(element);
      }
    }
  }

  /** Delivers a stanza written as XML to the gateway. */
  deliver(stanza: string): void {
    const element = parseElement(stanza);
    const from = parseJid(element.attr('from') ?? '');
    const to = parseJid(element.attr('to') ?? '');
    for (const h of this.handlers.get(element.name) ?? []) h({ from, to, element });
  }

  online(): void {
    for (const h of this.handlers.get('online') ?? []) (h as () => void)();
  }

  /** The first stanza sent (already, or within `timeoutMs`) that matches; each is taken once. */
  async receive(match: (el: Element) => boolean, timeoutMs = 10_000): Promise<Element> {
    const i = this.sent.findIndex(match);
    if (i >= 0) return this.sent.splice(i, 1)[0]!;
    return new Promise((resolve, reject) => {
      const w = {
        match,
        resolve: (el: Element) => {
          clearTimeout(timer);
          this.sent.splice(this.sent.indexOf(el), 1);
          resolve(el);
        },
      };
      const timer = setTimeout(() => {
        this.waiters.delete(w);
        reject(new Error(`nothing matching was sent within ${timeoutMs} ms; sent: ${this.sent.join('\n')}`));
      }, timeoutMs);
      this.waiters.add(w);
    });
  }
}

/** A matcher on a stanza's name, type and addresses. */
export function stanza(name: string, attrs: Record<string, string | undefined>): (el: Element) => boolean {
  return (el) =>
    el.name === name &&
    Object.entries(attrs).every(([k, v]) => (v === undefined ? el.attr(k) === undefined : el.attr(k) === v));
}
