import { NS, StanzaError } from '@natter/protocol';
import { xml, type Element } from '@natter/xml';
import type { Component, IqHandler, IqRequest } from '../component.js';

/** A disco#info identity (XEP-0030 §3.1; categories and types from the XMPP registrar). */
export interface DiscoIdentity {
  category: string;
  type: string;
  name?: string;
}

/** An entry of disco#items. */
export interface DiscoItem {
  jid: string;
  node?: string;
  name?: string;
}

/** What a part of the SDK (rooms, commands, registration) contributes to disco. */
export interface DiscoProvider {
  /** Features on the domain. */
  features?(): string[];
  /** Items of the domain at `node` ('' for none); undefined when the node is not this provider's. */
  items?(node: string, req: IqRequest): DiscoItem[] | undefined;
  /** disco#info for another address or a node; undefined when not this provider's. */
  info?(req: IqRequest, node: string): { identities: DiscoIdentity[]; features: string[] } | undefined;
}

/**
 * XEP-0030 on the component's domain: disco#info lists the configured identities (a gateway by
 * default) and the features derived from what is registered (IQ handlers, registration, commands,
 * rooms); disco#items lists rooms and command nodes. Addresses other than the domain are asked
 * of the providers (rooms answer for themselves), then of a disco handler the gateway registered.
 */
export class Disco {
  readonly providers: DiscoProvider[] = [];
  readonly #identities: DiscoIdentity[];
  readonly #features: string[];

  constructor(
    private readonly gw: Component,
    opts: { identities?: DiscoIdentity[]; features?: string[] } = {},
  ) {
    this.#identities = opts.identities?.length
      ? opts.identities
      : [{ category: 'gateway', type: 'generic', name: gw.domain }];
    this.#features = opts.features ?? [];
  }

  /** The handler for a disco request the SDK answers itself, or undefined. */
  handlerFor(req: IqRequest): IqHandler | undefined {
    if (req.type !== 'get' || req.payload.name !== 'query') return undefined;
    if (req.payload.xmlns === NS.discoInfo) {
      const node = req.payload.attr('node') ?? '';
      if (req.to.toString() === this.gw.domain && node === '') return () => this.#domainInfo();
      for (const p of this.providers) {
        const info = p.info?.(req, node);
        if (info) return () => infoQuery(node, info.identities, info.features);
      }
      if (req.to.toString() === this.gw.domain)
        return () => Promise.reject(new StanzaError('item-not-found'));
      return undefined;
    }
    if (req.payload.xmlns === NS.discoItems) {
      const node = req.payload.attr('node') ?? '';
      const items: DiscoItem[] = [];
      let known = req.to.toString() === this.gw.domain && node === '';
      for (const p of this.providers) {
        const got = p.items?.(node, req);
        if (got) {
          known = true;
          items.push(...got);
        }
      }
      if (!known)
        return req.to.toString() === this.gw.domain
          ? () => Promise.reject(new StanzaError('item-not-found'))
          : undefined;
      return () =>
        xml(
          'query',
          { xmlns: NS.discoItems, node: node || undefined },
          items.map((i) => xml('item', { jid: i.jid, node: i.node, name: i.name })),
        );
    }
    return undefined;
  }

  #domainInfo(): Element {
    const features = new Set<string>([
      NS.discoInfo,
      NS.discoItems,
      ...this.#features,
      ...this.gw.handledNamespaces(),
    ]);
    for (const p of this.providers) for (const f of p.features?.() ?? []) features.add(f);
    return infoQuery('', this.#identities, [...features]);
  }
}

function infoQuery(node: string, identities: DiscoIdentity[], features: string[]): Element {
  return xml(
    'query',
    { xmlns: NS.discoInfo, node: node || undefined },
    identities.map((i) => xml('identity', { category: i.category, type: i.type, name: i.name })),
    [...new Set(features)].sort().map((f) => xml('feature', { var: f })),
  );
}
