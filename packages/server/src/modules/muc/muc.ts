import { defineModule } from '../../core/module-api.js';
import { mucOptions } from './options.js';
import { destroyRoom } from './owner-iq.js';
import { MucService } from './service.js';
import { migrations, RoomStore } from './storage.js';
import { trackRoomsForLoss } from './lost-rooms.js';
import { ClusterRooms } from './cluster-rooms.js';

export type { MucApi } from './service.js';

/**
 * Multi-User Chat (XEP-0045) as a service on its own subdomain (`conference.<host>`): rooms with
 * roles and affiliations, configuration forms, history, invitations; persistent rooms stored.
 * Split by concern: room state (room.ts), occupants and roles (occupants.ts), affiliations,
 * configuration form (room-config.ts), history, messages, admin and owner IQs, routing and disco
 * (service.ts), storage; room archives (xep-0313-room-archive.ts, kept by the mam module), occupant
 * ids (xep-0421-occupant-id.ts), retraction and moderation (xep-0424-retraction.ts,
 * xep-0425-moderation.ts), room avatars (xep-0486-room-avatar.ts).
 */
export default defineModule({
  name: 'muc',
  description:
    'Multi-user chat rooms on conference.<domain>, with room archives, occupant ids, retraction, moderation and room avatars',
  specs: [
    'XEP-0045',
    'XEP-0249',
    'XEP-0410',
    'RFC 8266',
    'XEP-0313 (room archives)',
    'XEP-0359',
    'XEP-0421',
    'XEP-0424 (in rooms)',
    'XEP-0425',
    'XEP-0486',
  ],
  enabledByDefault: true,
  options: mucOptions,
  // Limits the service reads from its options at each use (service.ts, occupants.ts, messages.ts …).
  reloadable: [
    'maxNickLength',
    'maxBodyChars',
    'maxItemsPerRequest',
    'maxRooms',
    'maxRoomsPerUser',
    'maxRoomVcardBytes',
  ],
  migrations,
  async setup(ctx) {
    const domain = ctx.options.domain ?? `conference.${ctx.domain}`;
    const service = new MucService(ctx, ctx.options, domain, new RoomStore(ctx.db));
    // In a cluster each room runs on the node owning its JID, fetched when first addressed there.
    const clustered = ctx.cluster.nodeId !== 'local';
    if (clustered)
      service.placement = new ClusterRooms(service, ctx.cluster, (jid) => service.loadStored(jid));
    await service.load(!clustered);
    ctx.service(domain, (ev) => service.handle(ev), { perAddress: true });
    // The MUC services of this server process (a user of one host may sit in another host's rooms).
    const siblings = ctx.processScoped('muc:services', () => new Set<MucService>());
    siblings.add(service);
    // An occupant whose session ends (or goes unavailable) without leaving is removed from its rooms.
    ctx.hook('session/closed', ({ session }) => {
      for (const s of siblings) s.sessionGone(session.jid);
    });
    // A session of another node of the cluster ended (or died with its node).
    ctx.hook('session/gone', ({ record }) => {
      for (const s of siblings) s.sessionGone(record.jid);
    });
    ctx.hook('session/unavailable', ({ session }) => {
      for (const s of siblings) s.sessionGone(session.jid);
    });
    ctx.hook('server/stopping', () => service.announceShutdown());
    // ...and when the node running them dies, this node's occupants are told they left (332).
    trackRoomsForLoss(ctx, domain);
    ctx.provide(
      'muc',
      service.api((room, reason) => destroyRoom(service, room, reason)),
    );
    ctx.onStop(async () => {
      siblings.delete(service);
      await service.stop();
    });
  },
});
