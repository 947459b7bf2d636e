import { z } from 'zod';
import { xml, type Element } from '@natter/xml';
import { parseJid } from '@natter/jid';
import { NS, StanzaError, errorReply } from '@natter/protocol';
import { defineModule, type ModuleContext, resultReply, type RouteEvent } from '../../core/module-api.js';
import { PubsubStore, pubsubMigrations } from './pubsub-store.js';
import { PubsubService, type EngineDeps } from './pubsub-service.js';
import { defaultConfig } from './node-config.js';
import { PUBSUB_FEATURES } from './features.js';
import type { PubsubApi } from './api.js';
import type { RosterApi } from './roster-types.js';

export const pubsubOptions = z
  .object({
    /** The service's address; `pubsub.<host>` when absent. */
    domain: z.string().min(1).optional(),
    /** Largest item payload (serialised bytes); larger ones get not-acceptable + payload-too-big. */
    maxPayloadBytes: z
      .number()
      .int()
      .min(256)
      .default(64 * 1024),
    /** Nodes one user may create on the service (and in their PEP service). */
    maxNodesPerOwner: z.number().int().min(1).default(100),
    /** Upper bound of pubsub#max_items (also what "max" means). */
    maxItemsPerNode: z.number().int().min(1).default(256),
    /** pubsub#max_items of new nodes on the service. */
    defaultMaxItems: z.number().int().min(1).default(10),
  })
  .strict()
  .prefault({});

export type PubsubOptions = z.infer<typeof pubsubOptions>;

export type { PubsubApi } from './api.js';

/** Answers an IQ addressed to a service: result payload, or the thrown StanzaError. */
export async function answerIq(
  ctx: ModuleContext<unknown>,
  ev: RouteEvent,
  run: () => Promise<Element | undefined>,
): Promise<void> {
  let reply: Element;
  try {
    reply = resultReply(ev.stanza, await run());
  } catch (err) {
    if (!(err instanceof StanzaError)) {
      ctx.log.error({ err, stanza: ev.stanza.toString().slice(0, 500) }, 'pubsub request failed');
    }
    reply = errorReply(
      ev.stanza,
      err instanceof StanzaError ? err : new StanzaError('internal-server-error'),
    );
  }
  await ctx.send(reply);
}

/**
 * Publish-Subscribe (XEP-0060) as a service on `pubsub.<domain>`, and the node engine the pep
 * module reuses: nodes, items, subscriptions, affiliations, access models, publish-options,
 * notifications, all persisted.
 */
export default defineModule({
  name: 'pubsub',
  description: 'Publish-Subscribe service (XEP-0060) on pubsub.<domain>, and the node engine PEP uses',
  specs: ['XEP-0060', 'XEP-0223', 'XEP-0248 (none: leaf nodes only)'],
  enabledByDefault: true,
  options: pubsubOptions,
  migrations: pubsubMigrations,
  setup(ctx) {
    const opts = ctx.options;
    const domain = opts.domain ?? `pubsub.${ctx.domain}`;
    const deps: EngineDeps = {
      store: new PubsubStore(ctx.db),
      limits: {
        maxPayloadBytes: opts.maxPayloadBytes,
        maxNodesPerOwner: opts.maxNodesPerOwner,
        maxItemsPerNode: opts.maxItemsPerNode,
      },
      send: (stanza) => void ctx.send(stanza),
      roster: () => ctx.use<RosterApi>('roster'),
    };
    const address = parseJid(domain);
    const service = new PubsubService(deps, address, {
      defaults: () => defaultConfig({ max_items: Math.min(opts.defaultMaxItems, opts.maxItemsPerNode) }),
      // Local users create nodes; remote entities only use them.
      mayCreate: (from) => from.domain === ctx.domain,
      isServiceOwner: () => false,
      ownerPublishesOnly: false,
      autoCreate: false,
      rosterOwners: (_node, owners) => owners.map((o) => parseJid(o)),
    });
    ctx.provide<PubsubApi>('pubsub', {
      deps,
      options: opts,
      service: (addr, profile) => new PubsubService(deps, parseJid(addr), profile),
    });

    const info = () =>
      xml(
        'query',
        { xmlns: NS.discoInfo },
        xml('identity', { category: 'pubsub', type: 'service', name: 'Publish-Subscribe' }),
        [NS.discoInfo, NS.discoItems, NS.pubsub, ...PUBSUB_FEATURES]
          .sort()
          .map((v) => xml('feature', { var: v })),
      );

    ctx.service(domain, async (ev) => {
      const { stanza } = ev;
      if (stanza.name === 'message') {
        const x = stanza.getChild('x', NS.dataForms);
        if (x) await service.authorizationAnswer(ev.from, x);
        return;
      }
      if (stanza.name !== 'iq') return;
      const type = stanza.attrs.type;
      if (type !== 'get' && type !== 'set') return;
      const payload = stanza.firstElement();
      if (!ev.to.isBare || ev.to.local !== '' || !payload) {
        ctx.bounce(ev, 'service-unavailable');
        return;
      }
      const key = `${type} ${payload.xmlns} ${payload.name}`;
      await answerIq(ctx, ev, async () => {
        switch (key) {
          case `get ${NS.discoInfo} query`: {
            const node = payload.attrs.node;
            return node === undefined ? info() : service.nodeInfo(node, ev.from);
          }
          case `get ${NS.discoItems} query`:
            return service.items(payload.attrs.node, ev.from);
          case `get ${NS.pubsub} pubsub`:
          case `set ${NS.pubsub} pubsub`:
          case `get ${NS.pubsubOwner} pubsub`:
          case `set ${NS.pubsubOwner} pubsub`:
            return service.handle(ev.from, type, payload);
          default:
            throw new StanzaError('service-unavailable');
        }
      });
    });

    ctx.hook('user/deleted', async ({ jid }) => {
      await deps.store.forgetEntity(jid.toBareString());
    });
  },
});
