import { xml, type Element } from '@natter/xml';
import type { Jid } from '@natter/jid';
import { NS, parseForm, type DataForm } from '@natter/protocol';
import { emitterWith, type Emitter } from '../core/emitter.js';
import type { PluginDefinition } from '../core/plugin.js';
import { capsVerification, type DiscoIdentity } from '../core/xep-0115-caps.js';

export interface DiscoInfo {
  identities: DiscoIdentity[];
  features: string[];
  /** XEP-0128 extended information. */
  forms: DataForm[];
}

export interface DiscoItem {
  jid: string;
  node?: string;
  name?: string;
}

export interface DiscoEvents {
  /** A contact's capabilities are known (XEP-0115 §6.3), from cache or after a verified disco#info query. */
  caps: { jid: string; ver: string; node: string; info: DiscoInfo };
}

export interface DiscoOptions {
  /** Query disco#info for unknown caps hashes seen in presence (default true). */
  resolveCaps?: boolean;
  /** Extra features to advertise. */
  features?: string[];
}

export interface DiscoApi extends Emitter<DiscoEvents> {
  /** disco#info of an entity (XEP-0030 §3). */
  info(jid: string | Jid | undefined, node?: string): Promise<DiscoInfo>;
  /** disco#items of an entity (XEP-0030 §4). */
  items(jid: string | Jid | undefined, node?: string): Promise<DiscoItem[]>;
  /** Whether an entity announces a feature. */
  supports(jid: string | Jid | undefined, feature: string): Promise<boolean>;
  /** Capabilities learned from presence, by full JID. */
  capsOf(jid: string | Jid): DiscoInfo | undefined;
  /** Our own features (from the active modules) and identity. */
  readonly ownFeatures: string[];
  readonly ownIdentity: DiscoIdentity;
  addFeature(feature: string): void;
}

export function parseDiscoInfo(query: Element | undefined): DiscoInfo {
  return {
    identities: (query?.getChildren('identity', NS.discoInfo) ?? []).map((i) => ({
      category: i.attr('category') ?? '',
      type: i.attr('type') ?? '',
      name: i.attr('name'),
      lang: i.attr('xml:lang'),
    })),
    features: (query?.getChildren('feature', NS.discoInfo) ?? []).map((f) => f.attr('var') ?? ''),
    forms: (query?.getChildren('x', NS.dataForms) ?? []).map(parseForm),
  };
}

/**
 * XEP-0030 service discovery queries and XEP-0115 capabilities of others. (Answering disco#info
 * about ourselves, with features generated from the active modules, is built into the client.)
 */
export function disco(options: DiscoOptions = {}): PluginDefinition<DiscoApi> {
  return {
    name: 'disco',
    setup(ctx) {
      const { client } = ctx;
      for (const f of options.features ?? []) ctx.addFeature(f);
      const byVer = new Map<string, DiscoInfo>();
      const byJid = new Map<string, DiscoInfo>();
      const resolving = new Set<string>();
      const api: DiscoApi = emitterWith<DiscoApi>(
        {
          async info(jid: string | Jid | undefined, node?: string) {
            const res = await client.request('get', jid, xml('query', { xmlns: NS.discoInfo, node }));
            return parseDiscoInfo(res);
          },
          async items(jid: string | Jid | undefined, node?: string) {
            const res = await client.request('get', jid, xml('query', { xmlns: NS.discoItems, node }));
            return (res?.getChildren('item', NS.discoItems) ?? []).map((i) => ({
              jid: i.attr('jid') ?? '',
              node: i.attr('node'),
              name: i.attr('name'),
            }));
          },
          async supports(jid: string | Jid | undefined, feature: string) {
            return (await api.info(jid)).features.includes(feature);
          },
          capsOf: (jid: string | Jid) => byJid.get(String(jid)),
          get ownFeatures() {
            return client.features;
          },
          get ownIdentity() {
            return client.identity;
          },
          addFeature: (f: string) => ctx.addFeature(f),
        },
        ctx.reportError,
      );
      client.on('presence', (p) => {
        const c = p.getChild('c', NS.caps);
        const from = p.attr('from');
        if (!c || !from || p.attr('type') !== undefined) return;
        const ver = c.attr('ver') ?? '';
        const node = c.attr('node') ?? '';
        const known = byVer.get(ver);
        if (known) {
          byJid.set(from, known);
          api.emit('caps', { jid: from, ver, node, info: known });
          return;
        }
        if (!(options.resolveCaps ?? true) || c.attr('hash') !== 'sha-1' || resolving.has(ver)) return;
        resolving.add(ver);
        api
          .info(from, `${node}#${ver}`)
          .then(async (info) => {
            // XEP-0115 §5.4: only cache what hashes to the advertised ver (forms are not hashed here, so skip entities with forms).
            if (info.forms.length === 0 && (await capsVerification(info.identities, info.features)) === ver)
              byVer.set(ver, info);
            byJid.set(from, info);
            api.emit('caps', { jid: from, ver, node, info });
          })
          .catch(() => undefined)
          .finally(() => resolving.delete(ver));
      });
      return api;
    },
  };
}
