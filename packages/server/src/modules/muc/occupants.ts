import { Element, xml } from '@natter/xml';
import type { Jid } from '@natter/jid';
import { NS, StanzaError, delayElement } from '@natter/protocol';
import type { RouteEvent } from '../../core/module-api.js';
import { affRank, defaultRole, isAdminOrOwner, type Affiliation, type Role } from './affiliations.js';
import { parseHistoryRequest } from './history.js';
import { enforceNick, nickKey } from './nick.js';
import type { Occupant, Room } from './room.js';
import type { MucService } from './service.js';
import { isOccupantIdElement, occupantIdElement } from './xep-0421-occupant-id.js';
import { avatarPresence } from './xep-0486-room-avatar.js';

/**
 * Occupants and roles (XEP-0045 §7 and §8): entering, presence updates, nickname changes,
 * leaving, removal by a moderator or an affiliation change, and the `muc#user` presences that
 * tell every occupant about it.
 */

/** Status codes of §15.6.2 used in presences. */
export const STATUS = {
  nonAnonymous: 100,
  self: 110,
  logging: 170,
  created: 201,
  nickModified: 210,
  banned: 301,
  nickChanged: 303,
  kicked: 307,
  affiliationChanged: 321,
  membersOnly: 322,
  shutdown: 332,
  error: 333,
} as const;

export interface ItemExtras {
  /** New nickname (303). */
  nick?: string;
  reason?: string;
  /** Nickname of the moderator who acted. */
  actor?: string;
  /** `<destroy/>` of a destroyed room. */
  destroy?: Element;
}

/** The client's presence payload worth broadcasting: everything but MUC elements and errors. */
export function presencePayload(stanza: Element): Element[] {
  const out: Element[] = [];
  for (const c of stanza.children) {
    if (typeof c === 'string') continue;
    if (c.xmlns === NS.muc || c.xmlns === NS.mucUser || c.name === 'error' || isOccupantIdElement(c))
      continue;
    out.push(c);
  }
  return out;
}

function userX(
  room: Room,
  o: Occupant,
  withJid: boolean,
  codes: readonly number[],
  extras: ItemExtras,
  affiliation?: Affiliation,
): Element {
  return xml(
    'x',
    { xmlns: NS.mucUser },
    xml(
      'item',
      {
        affiliation: affiliation ?? room.affiliationOf(o.real),
        role: o.role,
        jid: withJid ? o.real.toString() : undefined,
        nick: extras.nick,
      },
      extras.actor !== undefined && xml('actor', { nick: extras.actor }),
      extras.reason !== undefined && extras.reason !== '' && xml('reason', null, extras.reason),
    ),
    extras.destroy,
    codes.map((c) => xml('status', { code: String(c) })),
  );
}

function presenceEl(
  o: Occupant,
  type: 'unavailable' | undefined,
  children: readonly Element[],
  x: Element,
): Element {
  const el = xml('presence', { from: o.jid.toString(), type });
  for (const c of children) el.children.push(c);
  el.children.push(x, occupantIdElement(o.occupantId));
  return el;
}

export interface BroadcastOptions extends ItemExtras {
  type?: 'unavailable';
  /** Codes for every recipient. */
  codes?: readonly number[];
  /** Extra codes for the occupant itself (110 is always added). */
  selfCodes?: readonly number[];
  /** Payload (show, status …); default the occupant's last presence. */
  children?: readonly Element[];
  /** Send the self-presence to the occupant (default true). */
  toSelf?: boolean;
  /** Affiliation shown (default: the current one). */
  affiliation?: Affiliation;
}

/**
 * Sends occupant `o`'s presence to every occupant of the room, and to `o` itself (even when it
 * was already removed): one stanza with the real JID and one without, each shallow-copied per
 * recipient.
 */
export function broadcastPresence(
  svc: MucService,
  room: Room,
  o: Occupant,
  opts: BroadcastOptions = {},
): void {
  const children = opts.children ?? o.presence;
  const codes = opts.codes ?? [];
  let withJid: Element | undefined;
  let withoutJid: Element | undefined;
  for (const r of room.occupants.values()) {
    if (r === o) continue;
    let el: Element;
    if (room.seesRealJids(r))
      el = withJid ??= presenceEl(
        o,
        opts.type,
        children,
        userX(room, o, true, codes, opts, opts.affiliation),
      );
    else
      el = withoutJid ??= presenceEl(
        o,
        opts.type,
        children,
        userX(room, o, false, codes, opts, opts.affiliation),
      );
    svc.sendToOccupant(el, o.jid, r);
  }
  if (opts.toSelf !== false) {
    const selfCodes = [STATUS.self, ...(opts.selfCodes ?? []), ...codes];
    svc.sendToOccupant(
      presenceEl(o, opts.type, children, userX(room, o, true, selfCodes, opts, opts.affiliation)),
      o.jid,
      o,
    );
  }
}

/** room@service/nick, for an enforced nickname. */
function occupantJid(room: Room, nick: string): Jid {
  try {
    return room.jid.withResource(nick);
  } catch {
    throw new StanzaError('not-acceptable', { text: 'this nickname is not acceptable' });
  }
}

/** The presence of `o` as seen by one session (someone entering, or a new moderator). */
function sendPresenceTo(svc: MucService, room: Room, o: Occupant, to: Jid, withJid: boolean): void {
  svc.sendNew(presenceEl(o, undefined, o.presence, userX(room, o, withJid, [], {})), o.jid, to);
}

/**
 * §7.2 Entering a Room: admission checks for `ev` (an available presence to room@service/nick
 * from a non-occupant).
 * Throws the StanzaError to return.
 */
export function checkEntry(svc: MucService, room: Room, ev: RouteEvent, creating: boolean): void {
  if (ev.to.resource === '')
    throw new StanzaError('jid-malformed', { text: 'a nickname is required to enter a room' });
  const nick = enforceNick(ev.to.resource, svc.options.maxNickLength);
  if (creating) return;
  const aff = room.affiliationOf(ev.from);
  if (room.locked && aff !== 'owner')
    throw new StanzaError('item-not-found', { text: 'this room is locked until its owner configures it' });
  if (aff === 'outcast') throw new StanzaError('forbidden', { text: 'you are banned from this room' });
  if (room.config.membersOnly && aff === 'none')
    throw new StanzaError('registration-required', { text: 'this room is members-only' });
  // §7.2.6 before §7.2.9: without the password, nothing about who is inside (an occupied
  // nickname's `conflict`) may be learnt.
  if (room.config.password !== '' && aff !== 'owner') {
    const given = ev.stanza.getChild('x', NS.muc)?.getChildText('password', NS.muc);
    if (given !== room.config.password)
      throw new StanzaError('not-authorized', { text: 'a password is required to enter this room' });
  }
  const holder = room.occupantByNick(nick);
  // Multi-session nick: the same user may enter again from another resource under its nickname.
  if (holder && holder.real.toBareString() !== ev.from.toBareString())
    throw new StanzaError('conflict', { text: 'this nickname is already in use' });
  const max = room.config.maxUsers;
  if (max > 0 && !holder && room.occupants.size >= max && !isAdminOrOwner(aff))
    throw new StanzaError('service-unavailable', { text: 'this room is full' });
  // Flood control (flood-control.ts): entering costs a presence to and from every session inside.
  if (!svc.flood.admitEntry(ev.from, 2 * room.byReal.size + 1))
    throw new StanzaError('policy-violation', {
      type: 'wait',
      text: 'you are entering and leaving rooms too fast; slow down',
    });
}

/** §7.2 Entering a Room: adds the occupant and sends presences, history and subject, in that order. */
export function enter(svc: MucService, room: Room, ev: RouteEvent, created: boolean): Occupant {
  const aff = room.affiliationOf(ev.from);
  const nick = enforceNick(ev.to.resource, svc.options.maxNickLength);
  const existing = room.occupantByNick(nick);
  const o: Occupant = existing ?? {
    nick,
    jid: occupantJid(room, nick),
    real: ev.from,
    sessions: [],
    occupantId: svc.occupantId(room, ev.from),
    role: defaultRole(aff, room.config.moderated),
    presence: presencePayload(ev.stanza),
  };
  const seesJids = room.nonAnonymous || o.role === 'moderator';
  for (const other of room.occupants.values())
    if (other !== o) sendPresenceTo(svc, room, other, ev.from, seesJids);
  o.sessions.push(ev.from);
  room.occupants.set(nickKey(o.nick), o);
  room.byReal.set(ev.from.toString(), o);
  svc.indexOccupant(ev.from, room);
  const selfCodes: number[] = [];
  if (room.nonAnonymous) selfCodes.push(STATUS.nonAnonymous);
  if (room.config.enableLogging) selfCodes.push(STATUS.logging);
  if (created) selfCodes.push(STATUS.created);
  const requested = (ev.stanza.attrs.to ?? '').split('/').slice(1).join('/');
  if (requested !== o.nick) selfCodes.push(STATUS.nickModified);
  if (existing) {
    // Another session of a present occupant: only it learns about its entry.
    svc.sendNew(
      presenceEl(
        o,
        undefined,
        o.presence,
        userX(room, { ...o, real: ev.from }, true, [STATUS.self, ...selfCodes], {}),
      ),
      o.jid,
      ev.from,
    );
  } else broadcastPresence(svc, room, o, { selfCodes });
  // XEP-0486: the room's avatar, before the history.
  if (room.avatarHash !== '') svc.sendNew(avatarPresence(room), room.jid, ev.from);
  const mucX = ev.stanza.getChild('x', NS.muc);
  if (room.history.size > 0) {
    const roomJid = room.jid.toString();
    for (const h of room.history.select(parseHistoryRequest(mucX))) {
      const m = h.stanza.clone();
      m.children.push(delayElement(new Date(h.at), roomJid));
      svc.sendNew(m, room.jid, ev.from);
    }
  }
  // §7.2 (room subject): the subject always follows the history, empty when none is set.
  svc.sendNew(
    xml(
      'message',
      {
        type: 'groupchat',
        from: room.subjectFrom || room.jid.toString(),
        id: `subject-${Date.now().toString(36)}`,
      },
      xml('subject', null, room.subject),
    ),
    room.jid,
    ev.from,
  );
  return o;
}

/** Changing nickname (unavailable with 303 from the old nick, then available from the new). */
export function changeNick(svc: MucService, room: Room, o: Occupant, ev: RouteEvent): void {
  const nick = enforceNick(ev.to.resource, svc.options.maxNickLength);
  // Its own nickname in another case or width is allowed: the occupant changes how it is written.
  const holder = room.occupantByNick(nick);
  if (holder && holder !== o) throw new StanzaError('conflict', { text: 'this nickname is already in use' });
  if (nick === o.nick) return updatePresence(svc, room, o, ev.stanza);
  // Two presences to everyone (flood control).
  if (svc.flood.charge(room, o, 2 * room.byReal.size, false) !== 'ok')
    throw new StanzaError('policy-violation', { type: 'wait', text: 'you are changing nickname too often' });
  broadcastPresence(svc, room, o, { type: 'unavailable', codes: [STATUS.nickChanged], nick, children: [] });
  room.occupants.delete(nickKey(o.nick));
  o.nick = nick;
  o.jid = occupantJid(room, nick);
  o.presence = presencePayload(ev.stanza);
  room.occupants.set(nickKey(nick), o);
  const requested = (ev.stanza.attrs.to ?? '').split('/').slice(1).join('/');
  broadcastPresence(svc, room, o, { selfCodes: requested !== nick ? [STATUS.nickModified] : [] });
}

/** Changing availability status: a new available presence (show, status) from an occupant. */
export function updatePresence(svc: MucService, room: Room, o: Occupant, stanza: Element): void {
  o.presence = presencePayload(stanza);
  // Over the fan-out budget (flood control) the new status is kept, for those who enter later,
  // but not broadcast now.
  if (svc.flood.charge(room, o, room.byReal.size, false) !== 'ok') return;
  broadcastPresence(svc, room, o);
}

function detach(svc: MucService, room: Room, o: Occupant): void {
  room.occupants.delete(nickKey(o.nick));
  for (const s of o.sessions) {
    room.byReal.delete(s.toString());
    svc.unindexOccupant(s, room);
  }
}

/**
 * Exiting a room: the occupant's unavailable presence, with its status, goes to everyone; when
 * other sessions of a multi-session occupant remain, only the leaving session is told.
 */
export function leave(
  svc: MucService,
  room: Room,
  o: Occupant,
  stanza: Element | undefined,
  session: Jid,
): void {
  if (o.sessions.length > 1) {
    const i = o.sessions.findIndex((s) => s.equals(session));
    if (i < 0) return;
    o.sessions.splice(i, 1);
    o.real = o.sessions[0]!;
    room.byReal.delete(session.toString());
    svc.unindexOccupant(session, room);
    if (!svc.stopping) {
      const x = userX(room, { ...o, role: 'none', real: session }, true, [STATUS.self], {});
      svc.sendNew(presenceEl(o, 'unavailable', [], x), o.jid, session);
    }
    return;
  }
  detach(svc, room, o);
  o.role = 'none';
  const children = stanza ? presencePayload(stanza).filter((c) => c.name === 'status') : [];
  if (!svc.stopping) {
    svc.flood.debitDeparture(session, room.byReal.size + 1);
    broadcastPresence(svc, room, o, { type: 'unavailable', children });
  }
  svc.roomMaybeEmpty(room);
}

/** Removes an occupant for a reason given by status codes (301 ban, 307 kick, 321, 322, 332, 333). */
export function removeOccupant(
  svc: MucService,
  room: Room,
  o: Occupant,
  codes: number[],
  extras: ItemExtras = {},
  toSelf = true,
): void {
  detach(svc, room, o);
  o.role = 'none';
  broadcastPresence(svc, room, o, { type: 'unavailable', codes, children: [], toSelf, ...extras });
  svc.roomMaybeEmpty(room);
}

/** §8 / §9.6: a moderator changed an occupant's role (none = kick). */
export function setRole(svc: MucService, room: Room, o: Occupant, role: Role, extras: ItemExtras): void {
  if (role === 'none') {
    removeOccupant(svc, room, o, [STATUS.kicked], extras);
    return;
  }
  const wasModerator = o.role === 'moderator';
  o.role = role;
  broadcastPresence(svc, room, o, extras);
  if (!wasModerator && role === 'moderator' && !room.nonAnonymous) revealJids(svc, room, o);
}

/** A new moderator of a semi-anonymous room gets everyone's presence again, with real JIDs. */
function revealJids(svc: MucService, room: Room, moderator: Occupant): void {
  for (const other of room.occupants.values()) {
    if (other === moderator) continue;
    for (const s of moderator.sessions) sendPresenceTo(svc, room, other, s, true);
  }
}

/**
 * §9 / §10: `bare`'s affiliation changed from `before`: its occupants are removed (ban, or lost
 * membership of a members-only room) or see their role follow the new affiliation.
 */
export function affiliationChanged(
  svc: MucService,
  room: Room,
  bare: string,
  before: Affiliation,
  extras: ItemExtras,
): void {
  const aff = room.affiliations.get(bare);
  for (const o of room.occupantsOf(bare)) {
    if (aff === 'outcast') {
      removeOccupant(svc, room, o, [STATUS.banned], extras);
      continue;
    }
    if (aff === 'none' && room.config.membersOnly) {
      removeOccupant(svc, room, o, [STATUS.affiliationChanged], extras);
      continue;
    }
    let role = o.role;
    if (isAdminOrOwner(aff)) role = 'moderator';
    else if (isAdminOrOwner(before)) role = defaultRole(aff, room.config.moderated);
    else if (affRank(aff) > affRank(before) && role === 'visitor') role = 'participant';
    const wasModerator = o.role === 'moderator';
    o.role = role;
    broadcastPresence(svc, room, o, { reason: extras.reason, actor: extras.actor });
    if (!wasModerator && role === 'moderator' && !room.nonAnonymous) revealJids(svc, room, o);
  }
}

/** §10.9: everyone gets unavailable with `<destroy/>`; the room is then removed by the caller. */
export function evacuate(svc: MucService, room: Room, destroy: Element): void {
  for (const o of [...room.occupants.values()]) {
    detach(svc, room, o);
    o.role = 'none';
    svc.sendToOccupant(
      presenceEl(o, 'unavailable', [], userX(room, o, true, [], { destroy }, 'none')),
      o.jid,
      o,
    );
  }
}

/**
 * What an occupant's session gets when the room went away without the room telling it (its node
 * died, or its copy lost to another): it left, because the service went down (110, 332, §10.10).
 */
export function serviceGonePresence(occupant: string, to: string): Element {
  return xml(
    'presence',
    { xmlns: NS.client, from: occupant, to, type: 'unavailable' },
    xml(
      'x',
      { xmlns: NS.mucUser },
      xml('item', { affiliation: 'none', role: 'none' }),
      xml('status', { code: String(STATUS.self) }),
      xml('status', { code: String(STATUS.shutdown) }),
    ),
  );
}

/**
 * The server is shutting down: each occupant is told it leaves the room for that reason (110, 332),
 * and nobody else (they all leave at once; the other departures are not broadcast).
 */
export function announceShutdown(svc: MucService, room: Room): void {
  for (const o of room.occupants.values()) {
    o.role = 'none';
    svc.sendToOccupant(
      presenceEl(o, 'unavailable', [], userX(room, o, true, [STATUS.self, STATUS.shutdown], {})),
      o.jid,
      o,
    );
  }
}

/** §10.2: a room made members-only: occupants without affiliation must go (322). */
export function removeNonMembers(svc: MucService, room: Room): void {
  for (const o of [...room.occupants.values()]) {
    if (room.affiliationOf(o.real) === 'none') removeOccupant(svc, room, o, [STATUS.membersOnly]);
  }
}
