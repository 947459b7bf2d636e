import { xml, type Element } from '@natter/xml';
import { parseJid } from '@natter/jid';
import { NS, StanzaError } from '@natter/protocol';
import type { IqRequest } from '../../core/module-api.js';
import {
  affRank,
  isAdminOrOwner,
  isAffiliation,
  isRole,
  type Affiliation,
  type Role,
} from './affiliations.js';
import { affiliationChanged, setRole, type ItemExtras } from './occupants.js';
import type { Occupant, Room } from './room.js';
import type { MucService } from './service.js';

/**
 * `muc#admin` (XEP-0045 §8 moderator and §9 admin use cases): lists by role or affiliation, and
 * changes of either, several items per request applied all-or-nothing.
 */

function items(payload: Element): Element[] {
  return payload.getChildren('item', NS.mucAdmin);
}

/** §8.5, §9.3, §9.5, §9.8, §10.5, §10.8: the occupants with a role, or the JIDs with an affiliation. */
export function adminGet(svc: MucService, room: Room, req: IqRequest): Element {
  const list = items(req.payload);
  if (list.length !== 1)
    throw new StanzaError('bad-request', {
      text: 'ask for one list: one item with a role or an affiliation',
    });
  const item = list[0]!;
  const requester = room.byReal.get(req.from.toString());
  const requesterAff = room.affiliationOf(req.from);
  const { role, affiliation } = item.attrs;
  if (affiliation !== undefined) {
    if (!isAffiliation(affiliation) || affiliation === 'none')
      throw new StanzaError('bad-request', { text: 'unknown affiliation list' });
    // XEP-0045 "Getting the Member List": where real JIDs are public anyway (non-anonymous rooms),
    // members and occupants may read the member, admin and owner lists (clients need them for
    // end-to-end encryption in private groups); the ban list stays with admins and owners.
    const readable =
      isAdminOrOwner(requesterAff) ||
      (affiliation !== 'outcast' &&
        room.nonAnonymous &&
        (requesterAff === 'member' || requester !== undefined));
    if (!readable) throw new StanzaError('forbidden', { text: 'only admins and owners may see this list' });
    return xml(
      'query',
      { xmlns: NS.mucAdmin },
      room.affiliations.list(affiliation).map((jid) => {
        const nick = room.occupantsOf(jid)[0]?.nick;
        const reason = room.affiliations.reason(jid);
        return xml('item', { affiliation, jid, nick }, reason !== undefined && xml('reason', null, reason));
      }),
    );
  }
  if (role !== undefined) {
    if (!isRole(role) || role === 'none') throw new StanzaError('bad-request', { text: 'unknown role list' });
    if (!requester || requester.role !== 'moderator')
      throw new StanzaError('forbidden', { text: 'only moderators may see role lists' });
    const out: Element[] = [];
    for (const o of room.occupants.values()) {
      if (o.role !== role) continue;
      out.push(
        xml('item', { role, nick: o.nick, affiliation: room.affiliationOf(o.real), jid: o.real.toString() }),
      );
    }
    return xml('query', { xmlns: NS.mucAdmin }, out);
  }
  throw new StanzaError('bad-request', { text: 'an item needs a role or an affiliation' });
}

type Change =
  | { kind: 'role'; occupant: Occupant; role: Role; reason?: string }
  | { kind: 'affiliation'; bare: string; affiliation: Affiliation; reason?: string };

function roleChange(
  room: Room,
  actor: Occupant | undefined,
  actorAff: Affiliation,
  item: Element,
  role: Role,
): Change {
  if (!actor || actor.role !== 'moderator')
    throw new StanzaError('forbidden', { text: 'only moderators may change roles' });
  const nick = item.attrs.nick;
  if (nick === undefined)
    throw new StanzaError('bad-request', { text: 'a role change names the occupant by nick' });
  const occupant = room.occupantByNick(nick);
  if (!occupant) throw new StanzaError('item-not-found', { text: `no occupant named ${nick}` });
  const targetAff = room.affiliationOf(occupant.real);
  if (role === 'moderator' && !isAdminOrOwner(actorAff))
    throw new StanzaError('forbidden', { text: 'only admins and owners may grant moderator status' });
  // §8.2, §8.4, §9.7: nobody acts on an admin or owner at or above their own rank.
  if (role !== 'moderator' && isAdminOrOwner(targetAff) && affRank(targetAff) >= affRank(actorAff)) {
    throw new StanzaError('not-allowed', { text: 'you may not change the role of an admin or owner' });
  }
  if (occupant.role === 'moderator' && role !== 'moderator' && !isAdminOrOwner(actorAff)) {
    throw new StanzaError('forbidden', { text: 'only admins and owners may revoke moderator status' });
  }
  return { kind: 'role', occupant, role, reason: item.getChildText('reason', NS.mucAdmin) };
}

function affiliationChange(
  room: Room,
  actorAff: Affiliation,
  actorBare: string,
  item: Element,
  affiliation: Affiliation,
): Change {
  if (!isAdminOrOwner(actorAff))
    throw new StanzaError('forbidden', { text: 'only admins and owners may change affiliations' });
  let bare: string;
  const raw = item.attrs.jid;
  if (raw === undefined) {
    // An item may name an occupant by nick instead (clients do this to ban someone present).
    const o = item.attrs.nick !== undefined ? room.occupantByNick(item.attrs.nick) : undefined;
    if (!o) throw new StanzaError('bad-request', { text: 'an affiliation change needs a jid' });
    bare = o.real.toBareString();
  } else {
    try {
      bare = parseJid(raw).toBareString();
    } catch {
      throw new StanzaError('jid-malformed', { text: `${raw} is not a valid JID` });
    }
  }
  const current = room.affiliations.get(bare);
  if (affiliation === 'outcast' && bare === actorBare)
    throw new StanzaError('conflict', { text: 'you cannot ban yourself' });
  if (actorAff === 'admin') {
    if (isAdminOrOwner(current))
      throw new StanzaError('not-allowed', {
        text: 'an admin may not change the affiliation of an admin or owner',
      });
    if (isAdminOrOwner(affiliation))
      throw new StanzaError('forbidden', { text: 'only owners may grant admin or owner status' });
  }
  return { kind: 'affiliation', bare, affiliation, reason: item.getChildText('reason', NS.mucAdmin) };
}

/** Applies every item of the request, or none (the first refused item's error is returned). */
export function adminSet(svc: MucService, room: Room, req: IqRequest): void {
  const list = items(req.payload);
  if (list.length === 0) throw new StanzaError('bad-request', { text: 'no items' });
  if (list.length > svc.options.maxItemsPerRequest)
    throw new StanzaError('policy-violation', {
      text: `at most ${svc.options.maxItemsPerRequest} items per request`,
    });
  const actor = room.byReal.get(req.from.toString());
  const actorAff = room.affiliationOf(req.from);
  const changes: Change[] = [];
  for (const item of list) {
    const { role, affiliation } = item.attrs;
    if (affiliation !== undefined) {
      if (!isAffiliation(affiliation))
        throw new StanzaError('bad-request', { text: `unknown affiliation ${affiliation}` });
      changes.push(affiliationChange(room, actorAff, req.from.toBareString(), item, affiliation));
    } else if (role !== undefined) {
      if (!isRole(role)) throw new StanzaError('bad-request', { text: `unknown role ${role}` });
      changes.push(roleChange(room, actor, actorAff, item, role));
    } else throw new StanzaError('bad-request', { text: 'an item needs a role or an affiliation' });
  }
  // §10.9 / §10.6: a room always keeps an owner.
  const owners = new Set(room.affiliations.list('owner'));
  for (const c of changes) {
    if (c.kind !== 'affiliation') continue;
    if (c.affiliation === 'owner') owners.add(c.bare);
    else owners.delete(c.bare);
  }
  if (owners.size === 0) throw new StanzaError('conflict', { text: 'a room needs at least one owner' });

  const extras: ItemExtras = { actor: actor?.nick };
  let affiliationsChanged = false;
  for (const c of changes) {
    if (c.kind === 'affiliation') {
      const before = room.affiliations.get(c.bare);
      room.affiliations.set(c.bare, c.affiliation, c.reason);
      affiliationsChanged = true;
      if (before !== c.affiliation)
        affiliationChanged(svc, room, c.bare, before, { ...extras, reason: c.reason });
    } else if (room.occupantByNick(c.occupant.nick) === c.occupant && c.occupant.role !== c.role) {
      setRole(svc, room, c.occupant, c.role, { ...extras, reason: c.reason });
    }
  }
  if (affiliationsChanged && room.config.persistent) svc.persist(room);
}
