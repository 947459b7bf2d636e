// The few parts of @xmpp/component (npm, CommonJS, ships no types) the interop tests use.
declare module '@xmpp/component' {
  import type { EventEmitter } from 'node:events';

  export interface XmppElement {
    name: string;
    attrs: Record<string, string | undefined>;
    is(name: string, xmlns?: string): boolean;
    getChild(name: string, xmlns?: string): XmppElement | undefined;
    getChildText(name: string, xmlns?: string): string | null;
    toString(): string;
  }

  export interface XmppComponent extends EventEmitter {
    start(): Promise<unknown>;
    stop(): Promise<unknown>;
    send(el: XmppElement): Promise<void>;
    status: string;
  }

  export function component(options: { service: string; domain: string; password: string }): XmppComponent;
  export function xml(
    name: string,
    attrs?: Record<string, string | undefined> | null,
    ...children: (XmppElement | string)[]
  ): XmppElement;
}
