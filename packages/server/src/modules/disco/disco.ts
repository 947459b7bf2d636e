import { z } from 'zod';
import { xml, type Element } from '@natter/xml';
import { NS, StanzaError, formType, parseForm } from '@natter/protocol';
import { defineModule, type Identity } from '../../core/module-api.js';
import type { PepApi } from '../pep/api.js';
import type { DiscoApi, HostNodeProvider } from './api.js';
import { capsVer } from '../../util/caps.js';

/** The XEP-0115 node naming this software in the server's capabilities. */
const CAPS_NODE = 'https://natter.dev/server';

function info(
  node: string | undefined,
  identities: Identity[],
  features: Iterable<string>,
  extensions: Element[] = [],
) {
  return xml(
    'query',
    { xmlns: NS.discoInfo, node },
    identities.map((i) => xml('identity', { category: i.category, type: i.type, name: i.name })),
    [...new Set([NS.discoInfo, ...features])].sort().map((v) => xml('feature', { var: v })),
    extensions,
  );
}

/** The FORM_TYPE of a XEP-0128 extension form; throws when `form` is not one. */
function extensionFormType(form: Element): string {
  if (!form.is('x', NS.dataForms) || form.attrs.type !== 'result')
    throw new Error("a disco#info extension must be an <x xmlns='jabber:x:data' type='result'/> form");
  const parsed = parseForm(form);
  const type = formType(parsed);
  if (!type || parsed.fields.find((f) => f.var === 'FORM_TYPE')?.type !== 'hidden')
    throw new Error('a disco#info extension form needs a hidden FORM_TYPE field (XEP-0128, XEP-0068)');
  return type;
}

/** Service discovery (XEP-0030) for the domain and for accounts; features derive from registered handlers. */
export default defineModule({
  name: 'disco',
  description:
    'Service discovery: identities and features of the server and of accounts, items for services, extension forms of the server',
  specs: ['XEP-0030', 'XEP-0128', 'XEP-0115 (the server’s own capabilities in stream features)'],
  enabledByDefault: true,
  options: z.object({}).strict().prefault({}),
  setup(ctx) {
    const { host } = ctx;
    // XEP-0128 extension forms of the server's disco#info, by FORM_TYPE (peers add them: api.ts).
    const extensions = new Map<string, Element>();
    /** Peers answering for nodes of the server's JID (api.ts `addHostNodes`). */
    const providers: HostNodeProvider[] = [];
    const api: DiscoApi = {
      addHostNodes(provider) {
        providers.push(provider);
        return () => {
          const i = providers.indexOf(provider);
          if (i >= 0) providers.splice(i, 1);
        };
      },
      addHostExtension(form) {
        const type = extensionFormType(form);
        if (extensions.has(type))
          throw new Error(`the server's disco#info already has an extension form of type ${type}`);
        const own = form.clone();
        extensions.set(type, own);
        return () => {
          if (extensions.get(type) === own) extensions.delete(type);
        };
      },
    };
    ctx.provide<DiscoApi>('disco', api);
    const hostInfo = (node?: string) => {
      const forms = [...extensions.keys()].sort().map((type) => extensions.get(type)!.clone());
      return info(node, host.hostIdentities, [...host.hostFeatures, NS.discoItems], forms);
    };
    ctx.iq('host', 'get', NS.discoInfo, 'query', async (req) => {
      const node = req.payload.attrs.node;
      if (node === undefined) return hostInfo();
      // XEP-0115 §6.2: the node#ver a client saw in our stream features.
      if (node === `${CAPS_NODE}#${capsVer(hostInfo())}`) return hostInfo(node);
      for (const p of [...providers]) {
        const found = await p.info?.(node, req.from);
        if (found) return info(node, found.identities, found.features);
      }
      throw new StanzaError('item-not-found');
    });
    // XEP-0115 §6.3 (and XEP-0479's Core): the server's capabilities in its stream features, so a
    // client that saw them before needs no disco#info query at login.
    ctx.streamFeature((stream) =>
      stream.host === ctx.host
        ? xml('c', { xmlns: NS.caps, hash: 'sha-1', node: CAPS_NODE, ver: capsVer(hostInfo()) })
        : null,
    );
    // External components (XEP-0114) are listed by the host they are a subdomain of; one under no
    // host is listed by every host (else nobody could discover it). Their own disco#info is
    // answered by the component itself: queries to its domain are routed to it.
    const hosts = ctx.config.hosts.map((h) => h.toLowerCase());
    const components = Object.keys(ctx.config.components).filter(
      (d) => d.endsWith(`.${ctx.domain}`) || !hosts.some((h) => d.endsWith(`.${h}`)),
    );
    ctx.iq('host', 'get', NS.discoItems, 'query', async (req) => {
      const node = req.payload.attrs.node;
      if (node !== undefined) {
        for (const p of [...providers]) {
          const found = await p.items?.(node, req.from);
          if (found)
            return xml(
              'query',
              { xmlns: NS.discoItems, node },
              found.map((i) => xml('item', { jid: i.jid, node: i.node, name: i.name })),
            );
        }
        throw new StanzaError('item-not-found');
      }
      return xml(
        'query',
        { xmlns: NS.discoItems },
        [...new Set([...host.services, ...components])].sort().map((jid) => xml('item', { jid })),
      );
    });
    // An account's nodes are its PEP nodes (XEP-0163 §6.2), when PEP is enabled.
    const pep = () => ctx.use<PepApi>('pep');
    ctx.iq('account', 'get', NS.discoInfo, 'query', async (req) => {
      if (!(await host.accountExists(req))) throw new StanzaError('service-unavailable');
      const node = req.payload.attrs.node;
      if (node !== undefined) {
        const p = pep();
        if (!p) throw new StanzaError('item-not-found');
        return p.discoInfo(req.to.bare, req.from, node);
      }
      return info(undefined, host.accountIdentities, host.accountFeatures);
    });
    ctx.iq('account', 'get', NS.discoItems, 'query', async (req) => {
      if (!(await host.accountExists(req))) throw new StanzaError('service-unavailable');
      const p = pep();
      if (p) return p.discoItems(req.to.bare, req.from, req.payload.attrs.node);
      return xml('query', { xmlns: NS.discoItems, node: req.payload.attrs.node });
    });
  },
});
