import { xml, type Element } from '@natter/xml';
import { tryParseJid, type Jid } from '@natter/jid';
import { NS, buildForm, parseForm, type DataForm } from '@natter/protocol';
import type { Client } from '../core/client.js';
import { emitterWith, type Emitter } from '../core/emitter.js';
import type { PluginDefinition } from '../core/plugin.js';

/** Node configuration or publish options: field values by `var` (the FORM_TYPE is added). */
export type FormValues = Record<string, string | string[] | boolean | number>;

export interface PubSubItem {
  id: string | undefined;
  /** The item's payload element. */
  payload: Element | undefined;
  publisher?: string;
}

export interface PubSubEvents {
  /** A published item was notified (XEP-0060 §7.1.2.1). */
  item: { service: string; node: string; item: PubSubItem; element: Element };
  retract: { service: string; node: string; id: string; element: Element };
  purge: { service: string; node: string; element: Element };
  delete: { service: string; node: string; element: Element };
  configuration: { service: string; node: string; element: Element };
  subscription: { service: string; node: string; jid: string; state: string; element: Element };
}

function toForm(formType: string, values: FormValues): Element {
  const form: DataForm & { formType: string } = {
    type: 'submit',
    formType,
    fields: Object.entries(values).map(([k, v]) => ({
      var: k,
      values: Array.isArray(v) ? v : [typeof v === 'boolean' ? (v ? '1' : '0') : String(v)],
    })),
  };
  return buildForm(form);
}

function str(to: string | Jid | undefined): string | undefined {
  return to === undefined ? undefined : String(to);
}

/** Low-level XEP-0060 requests, usable without activating the module (avatar and PEP use them). */
export const pubsubRequests = {
  async publish(
    client: Client,
    service: string | Jid | undefined,
    node: string,
    payload: Element,
    opts: { id?: string; publishOptions?: FormValues } = {},
  ): Promise<string | undefined> {
    const res = await client.request(
      'set',
      service,
      xml(
        'pubsub',
        { xmlns: NS.pubsub },
        xml('publish', { node }, xml('item', { id: opts.id }, payload)),
        opts.publishOptions &&
          xml(
            'publish-options',
            null,
            toForm('http://jabber.org/protocol/pubsub#publish-options', opts.publishOptions),
          ),
      ),
    );
    return res?.getChild('publish', NS.pubsub)?.getChild('item', NS.pubsub)?.attr('id') ?? opts.id;
  },
  async items(
    client: Client,
    service: string | Jid | undefined,
    node: string,
    opts: { max?: number; ids?: string[] } = {},
  ): Promise<PubSubItem[]> {
    const res = await client.request(
      'get',
      service,
      xml(
        'pubsub',
        { xmlns: NS.pubsub },
        xml(
          'items',
          { node, max_items: opts.max },
          (opts.ids ?? []).map((id) => xml('item', { id })),
        ),
      ),
    );
    return (res?.getChild('items', NS.pubsub)?.getChildren('item', NS.pubsub) ?? []).map(parseItem);
  },
};

function parseItem(el: Element): PubSubItem {
  return { id: el.attr('id'), payload: el.firstElement(), publisher: el.attr('publisher') };
}

export interface PubSubApi extends Emitter<PubSubEvents> {
  /** Creates a node (XEP-0060 §8.1); `node` undefined asks for an instant node. Resolves with the node name. */
  create(service: string | Jid, node?: string, config?: FormValues): Promise<string>;
  /** The node's configuration form (§8.2). */
  getConfig(service: string | Jid, node: string): Promise<DataForm>;
  configure(service: string | Jid, node: string, values: FormValues): Promise<void>;
  delete(service: string | Jid, node: string): Promise<void>;
  purge(service: string | Jid, node: string): Promise<void>;
  /** Subscribes our bare JID (or `jid`) to a node (§6.1); resolves with the subscription state. */
  subscribe(
    service: string | Jid,
    node: string,
    jid?: string | Jid,
  ): Promise<{ state: string; subid?: string }>;
  unsubscribe(
    service: string | Jid,
    node: string,
    opts?: { jid?: string | Jid; subid?: string },
  ): Promise<void>;
  /** Publishes an item (§7.1); resolves with its id. */
  publish(
    service: string | Jid,
    node: string,
    payload: Element,
    opts?: { id?: string; publishOptions?: FormValues },
  ): Promise<string | undefined>;
  /** Deletes an item (§7.2); `notify` asks the service to tell subscribers. */
  retract(service: string | Jid, node: string, id: string, notify?: boolean): Promise<void>;
  /** Fetches items (§6.5): all, the last `max`, or by id. */
  items(service: string | Jid, node: string, opts?: { max?: number; ids?: string[] }): Promise<PubSubItem[]>;
  /** Nodes of a service (disco#items). */
  nodes(service: string | Jid): Promise<{ node?: string; name?: string }[]>;
  /** XEP-0163 helpers on our own account's PEP service. */
  readonly pep: {
    publish(
      node: string,
      payload: Element,
      opts?: { id?: string; publishOptions?: FormValues },
    ): Promise<string | undefined>;
    items(owner: string | Jid, node: string, opts?: { max?: number; ids?: string[] }): Promise<PubSubItem[]>;
    retract(node: string, id: string, notify?: boolean): Promise<void>;
    /** Asks for notifications of `node` (adds `node+notify` to our capabilities). */
    notify(node: string): void;
  };
}

export interface PubSubOptions {
  /** PEP nodes to receive notifications for (`+notify`, XEP-0163 §4). */
  notify?: string[];
}

/** XEP-0060 publish-subscribe and XEP-0163 PEP (XMPPPubSub's equivalent). */
export function pubsub(options: PubSubOptions = {}): PluginDefinition<PubSubApi> {
  return {
    name: 'pubsub',
    setup(ctx) {
      const { client } = ctx;
      for (const n of options.notify ?? []) ctx.addFeature(`${n}+notify`);
      const owner = (service: string | Jid | undefined, payload: Element) =>
        client.request('set', service, xml('pubsub', { xmlns: NS.pubsubOwner }, payload));
      const ps = (type: 'get' | 'set', service: string | Jid | undefined, payload: Element) =>
        client.request(type, service, xml('pubsub', { xmlns: NS.pubsub }, payload));
      const api: PubSubApi = emitterWith<PubSubApi>(
        {
          async create(service: string | Jid, node?: string, config?: FormValues) {
            const res = await ps('set', service, xml('create', { node }));
            if (config) {
              // Configure after creation: portable across services that reject <configure/> with create.
              const created = res?.getChild('create', NS.pubsub)?.attr('node') ?? node;
              if (created) await api.configure(service, created, config);
            }
            return res?.getChild('create', NS.pubsub)?.attr('node') ?? node ?? '';
          },
          async getConfig(service: string | Jid, node: string) {
            const res = await client.request(
              'get',
              service,
              xml('pubsub', { xmlns: NS.pubsubOwner }, xml('configure', { node })),
            );
            const x = res?.getChild('configure', NS.pubsubOwner)?.getChild('x', NS.dataForms);
            return x ? parseForm(x) : { type: 'form' as const, fields: [] };
          },
          async configure(service: string | Jid, node: string, values: FormValues) {
            await owner(
              service,
              xml('configure', { node }, toForm('http://jabber.org/protocol/pubsub#node_config', values)),
            );
          },
          async delete(service: string | Jid, node: string) {
            await owner(service, xml('delete', { node }));
          },
          async purge(service: string | Jid, node: string) {
            await owner(service, xml('purge', { node }));
          },
          async subscribe(service: string | Jid, node: string, jid?: string | Jid) {
            const res = await ps(
              'set',
              service,
              xml('subscribe', { node, jid: str(jid) ?? client.account.toString() }),
            );
            const sub = res?.getChild('subscription', NS.pubsub);
            return { state: sub?.attr('subscription') ?? 'subscribed', subid: sub?.attr('subid') };
          },
          async unsubscribe(
            service: string | Jid,
            node: string,
            opts: { jid?: string | Jid; subid?: string } = {},
          ) {
            await ps(
              'set',
              service,
              xml('unsubscribe', {
                node,
                jid: str(opts.jid) ?? client.account.toString(),
                subid: opts.subid,
              }),
            );
          },
          publish: (service: string | Jid, node: string, payload: Element, opts = {}) =>
            pubsubRequests.publish(client, service, node, payload, opts),
          async retract(service: string | Jid, node: string, id: string, notify = true) {
            await ps(
              'set',
              service,
              xml('retract', { node, notify: notify ? 'true' : undefined }, xml('item', { id })),
            );
          },
          items: (service: string | Jid, node: string, opts = {}) =>
            pubsubRequests.items(client, service, node, opts),
          async nodes(service: string | Jid) {
            const res = await client.request('get', service, xml('query', { xmlns: NS.discoItems }));
            return (res?.getChildren('item') ?? []).map((i) => ({
              node: i.attr('node'),
              name: i.attr('name'),
            }));
          },
          pep: {
            publish: (node: string, payload: Element, opts = {}) =>
              pubsubRequests.publish(client, undefined, node, payload, opts),
            items: (ownerJid: string | Jid, node: string, opts = {}) =>
              pubsubRequests.items(client, tryParseJid(String(ownerJid))?.bare.toString(), node, opts),
            async retract(node: string, id: string, notify = true) {
              await ps(
                'set',
                undefined,
                xml('retract', { node, notify: notify ? 'true' : undefined }, xml('item', { id })),
              );
            },
            notify: (node: string) => ctx.addFeature(`${node}+notify`),
          },
        },
        ctx.reportError,
      );
      client.on('message', (m) => {
        const event = m.getChild('event', NS.pubsubEvent);
        if (!event) return;
        const service = m.attr('from') ?? client.account.toString();
        for (const c of event.elements()) {
          const node = c.attr('node') ?? '';
          if (c.name === 'items') {
            for (const it of c.getChildren('item', NS.pubsubEvent))
              api.emit('item', { service, node, item: parseItem(it), element: m });
            for (const r of c.getChildren('retract', NS.pubsubEvent))
              api.emit('retract', { service, node, id: r.attr('id') ?? '', element: m });
          } else if (c.name === 'purge') api.emit('purge', { service, node, element: m });
          else if (c.name === 'delete') api.emit('delete', { service, node, element: m });
          else if (c.name === 'configuration') api.emit('configuration', { service, node, element: m });
          else if (c.name === 'subscription')
            api.emit('subscription', {
              service,
              node,
              jid: c.attr('jid') ?? '',
              state: c.attr('subscription') ?? '',
              element: m,
            });
        }
      });
      return api;
    },
  };
}
