import { xml, type Element } from '@natter/xml';
import { tryParseJid } from '@natter/jid';
import { NS } from '@natter/protocol';
import type { ModuleContext } from '../../core/module-api.js';
import { STATUS } from './occupants.js';

/**
 * In a cluster the rooms run on one node (docs/decisions/0009). When that node dies, its rooms'
 * occupants on the other nodes are gone from the rooms (a persistent room is loaded again, empty,
 * by the next node), but nobody would tell them. Each node therefore notes, from the self-presence
 * (status 110) the service sends its own sessions, which rooms they are in, and when the rooms'
 * node is lost tells each of them it left every such room because the service went down (110,
 * 332, XEP-0045 §10.10): clients join again.
 */
export function trackRoomsForLoss(ctx: ModuleContext<unknown>, domain: string): void {
  if (ctx.cluster.nodeId === 'local') return; // one process: the rooms die with their occupants
  /** Local session (full JID) → room (bare JID) → the occupant's room JID (room/nick). */
  const joined = new Map<string, Map<string, string>>();

  const watch = (full: string, el: Element): void => {
    if (el.name !== 'presence') return;
    const from = tryParseJid(el.attrs.from ?? '');
    if (!from || from.domain !== domain || from.resource === '') return;
    const x = el.getChild('x', NS.mucUser);
    if (!x || !x.getChildren('status').some((s) => s.attrs.code === String(STATUS.self))) return;
    const room = from.toBareString();
    if (el.attrs.type === 'unavailable') {
      const rooms = joined.get(full);
      rooms?.delete(room);
      if (rooms?.size === 0) joined.delete(full);
    } else if (el.attrs.type === undefined) {
      let rooms = joined.get(full);
      if (!rooms) joined.set(full, (rooms = new Map()));
      rooms.set(room, from.toString());
    }
  };

  ctx.hook('session/bound', ({ session }) => {
    const full = session.jid.toString();
    // Before the other stages (CSI may hold presence back): every self-presence is seen.
    session.stream.pipeline.filter(
      'muc-joined-rooms',
      (el) => {
        watch(full, el);
        return el;
      },
      -100,
    );
  });
  ctx.hook('session/closed', ({ session }) => {
    joined.delete(session.jid.toString());
  });

  ctx.cluster.onServiceOwnerLost(() => {
    const lost = [...joined];
    joined.clear();
    let told = 0;
    for (const [full, rooms] of lost) {
      const session = ctx.sessions.get(full);
      if (!session) continue;
      for (const occupant of rooms.values()) {
        told++;
        ctx.deliver(
          session,
          xml(
            'presence',
            { xmlns: NS.client, from: occupant, to: full, type: 'unavailable' },
            xml(
              'x',
              { xmlns: NS.mucUser },
              xml('item', { affiliation: 'none', role: 'none' }),
              xml('status', { code: String(STATUS.self) }),
              xml('status', { code: String(STATUS.shutdown) }),
            ),
          ),
        );
      }
    }
    if (told > 0)
      ctx.log.info({ occupants: told }, 'the node running the rooms is gone: occupants told (332)');
  });
}
