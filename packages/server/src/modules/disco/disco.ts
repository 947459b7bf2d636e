import { z } from 'zod';
import { xml } from '@natter/xml';
import { NS, StanzaError } from '@natter/protocol';
import { defineModule, type Identity } from '../../core/module-api.js';
import type { PepApi } from '../pep/api.js';

function info(node: string | undefined, identities: Identity[], features: Iterable<string>) {
  return xml(
    'query',
    { xmlns: NS.discoInfo, node },
    identities.map((i) => xml('identity', { category: i.category, type: i.type, name: i.name })),
    [...new Set([NS.discoInfo, ...features])].sort().map((v) => xml('feature', { var: v })),
  );
}

/** Service discovery (XEP-0030) for the domain and for accounts; features derive from registered handlers. */
export default defineModule({
  name: 'disco',
  description: 'Service discovery: identities and features of the server and of accounts, items for services',
  specs: ['XEP-0030'],
  enabledByDefault: true,
  options: z.object({}).strict().prefault({}),
  setup(ctx) {
    const { host } = ctx;
    ctx.iq('host', 'get', NS.discoInfo, 'query', (req) => {
      const node = req.payload.attrs.node;
      if (node !== undefined) throw new StanzaError('item-not-found');
      return info(undefined, host.hostIdentities, [...host.hostFeatures, NS.discoItems]);
    });
    // External components (XEP-0114) are listed by the host they are a subdomain of; one under no
    // host is listed by every host (else nobody could discover it). Their own disco#info is
    // answered by the component itself: queries to its domain are routed to it.
    const hosts = ctx.config.hosts.map((h) => h.toLowerCase());
    const components = Object.keys(ctx.config.components).filter(
      (d) => d.endsWith(`.${ctx.domain}`) || !hosts.some((h) => d.endsWith(`.${h}`)),
    );
    ctx.iq('host', 'get', NS.discoItems, 'query', (req) => {
      if (req.payload.attrs.node !== undefined) throw new StanzaError('item-not-found');
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
