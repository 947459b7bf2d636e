// Minimal typings for @xmpp/client (xmpp.js ships none), covering what the interop tests use.
declare module '@xmpp/client' {
  import type { EventEmitter } from 'node:events';

  export interface LtxElement {
    name: string;
    attrs: Record<string, string>;
    children: (LtxElement | string)[];
    is(name: string, xmlns?: string): boolean;
    getChild(name: string, xmlns?: string): LtxElement | undefined;
    getChildren(name: string, xmlns?: string): LtxElement[];
    getChildText(name: string, xmlns?: string): string | null;
    getText(): string;
    toString(): string;
  }

  export function xml(
    name: string,
    attrs?: Record<string, string | undefined> | null,
    ...children: (LtxElement | string | null | undefined)[]
  ): LtxElement;

  export interface XmppClient extends EventEmitter {
    /** The full JID once online (with SASL2 + Bind2 the server chose the resource from the tag). */
    jid?: { toString(): string };
    start(): Promise<unknown>;
    stop(): Promise<void>;
    send(el: LtxElement): Promise<void>;
    reconnect: { stop(): void };
    iqCaller: { request(el: LtxElement, timeoutMs?: number): Promise<LtxElement> };
    on(event: 'stanza', listener: (s: LtxElement) => void): this;
    on(event: string, listener: (...args: any[]) => void): this;
  }

  export function client(options: {
    service: string;
    domain?: string;
    username?: string;
    password?: string;
    resource?: string;
    /** Milliseconds each step (stream open, STARTTLS, SASL…) may take; xmpp.js defaults to 2000. */
    timeout?: number;
  }): XmppClient;
}
