import type { Element } from '@natter/xml';
import { tryParseJid } from '@natter/jid';
import { NS } from '@natter/protocol';
import type { ModuleContext } from '../../core/module-api.js';
import { STATUS, serviceGonePresence } from './occupants.js';

/**
 * In a cluster each room runs on one node (cluster-rooms.ts, docs/decisions/0009). When that node
 * dies, the room's occupants on the other nodes are gone from it (a persistent room is loaded
 * again, empty, by its next owner), but nobody would tell them. Each node therefore notes, from the
 * self-presence (status 110) the service sends its own sessions, which rooms they are in, and when
 * a node is lost tells each of them it left every room that node ran because the service went down
 * (110, 332, XEP-0045 §10.10): clients join again. Rooms on the other nodes go on undisturbed.
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

  ctx.cluster.onMembership(({ left }) => {
    if (left === undefined) return;
    // The rooms the lost node ran: those it owned while it was alive.
    const ranThere = new Map<string, boolean>();
    const lostHere = (room: string): boolean => {
      let v = ranThere.get(room);
      if (v === undefined) ranThere.set(room, (v = ctx.cluster.ownerOf(room, left) === left));
      return v;
    };
    let told = 0;
    for (const [full, rooms] of [...joined]) {
      const session = ctx.sessions.get(full);
      if (!session) continue;
      for (const [room, occupant] of [...rooms]) {
        if (!lostHere(room)) continue;
        rooms.delete(room);
        told++;
        ctx.deliver(session, serviceGonePresence(occupant, full));
      }
      if (rooms.size === 0) joined.delete(full);
    }
    if (told > 0)
      ctx.log.info(
        { occupants: told, peer: left },
        'a node running rooms is gone: their occupants told (332)',
      );
  });
}
