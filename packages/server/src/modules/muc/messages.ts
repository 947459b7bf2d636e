import { Element, xml } from '@natter/xml';
import { parseJid } from '@natter/jid';
import { NS, StanzaError, parseBoolean, parseForm, formType } from '@natter/protocol';
import type { RouteEvent } from '../../core/module-api.js';
import { isAdminOrOwner, roleRank } from './affiliations.js';
import { setRole } from './occupants.js';
import type { Occupant, Room } from './room.js';
import type { MucService } from './service.js';
import { isOccupantIdElement, occupantIdElement, occupantIdOf } from './xep-0421-occupant-id.js';
import { stamp } from './xep-0313-room-archive.js';
import { worthKeeping } from '../mam/api.js';
import {
  findRoomMessage,
  isTombstone,
  NS_RETRACT,
  NS_RETRACT_0,
  retire,
  retractionIn,
  roomStanzaId,
  stampNow,
  tombstone,
  type Retraction,
} from './xep-0424-retraction.js';

/**
 * Messages (XEP-0045 §7 occupant use cases, §8.1, §8.6): groupchat fan-out, subject changes, private messages,
 * mediated invitations and declines, voice requests.
 */

function sender(room: Room, ev: RouteEvent): Occupant {
  const o = room.byReal.get(ev.from.toString());
  if (!o) throw new StanzaError('not-acceptable', { text: 'only occupants may send messages to this room' });
  return o;
}

function checkLength(svc: MucService, text: string | undefined, what: string): void {
  if (text !== undefined && text.length > svc.options.maxBodyChars)
    throw new StanzaError('policy-violation', { text: `the ${what} is too long` });
}

/**
 * Sending a message to all occupants: a groupchat message goes to every occupant, from the
 * sender's occupant JID, once per recipient as a shallow copy sharing the original children
 * (nothing is serialised here). A retraction of the sender's own message (XEP-0424) is checked
 * first (asynchronously: the message may be in the archive only).
 */
export function groupchat(svc: MucService, room: Room, ev: RouteEvent): void | Promise<void> {
  const o = sender(room, ev);
  const st = ev.stanza;
  const body = st.getChild('body');
  const subject = st.getChild('subject');
  if (subject !== undefined && body === undefined) return changeSubject(svc, room, o, ev, subject);
  if (o.role === 'visitor') {
    if (body === undefined) return; // chat states and the like from visitors are dropped quietly
    throw new StanzaError('forbidden', { text: 'you have no voice in this room' });
  }
  if (body !== undefined) checkLength(svc, body.text(), 'message');
  chargeFanout(svc, room, o);
  const retraction = retractionIn(st);
  if (retraction) return retractOwn(svc, room, o, ev, retraction);
  relay(svc, room, o, ev);
}

/** The fan-out itself. */
function relay(svc: MucService, room: Room, o: Occupant, ev: RouteEvent): void {
  const base = prepare(svc, room, o, ev);
  for (const r of room.occupants.values()) svc.sendToOccupant(base, o.jid, r);
}

/**
 * The stanza as the room sends it: the sender's attributes but `to`, from the occupant JID, with
 * its occupant id (XEP-0421) and, for a message worth keeping, the id the room gave it (XEP-0359,
 * archived under that id). Kept in the history when it has a body.
 */
function prepare(svc: MucService, room: Room, o: Occupant, ev: RouteEvent): Element {
  const st = ev.stanza;
  const attrs: Record<string, string> = {};
  for (const k in st.attrs) if (k !== 'to') attrs[k] = st.attrs[k]!;
  attrs.from = o.jid.toString();
  const base = new Element('message', st.xmlns, attrs, [
    ...relayedChildren(room, st),
    occupantIdElement(o.occupantId),
  ]);
  base.inheritsNs = st.inheritsNs;
  // A message worth keeping (XEP-0334 hints, as in the archive) is named, and archived if the room keeps one.
  if (worthKeeping(st)) base.children.push(stamp(svc, room, o.jid, base));
  if (st.getChild('body') !== undefined) {
    const at = Date.now();
    room.history.add(base, at);
    if (room.stored) svc.persistHistory(room, base, at);
  }
  return base;
}

/**
 * XEP-0424 in a room: an occupant retracts one of its own messages. The room checks that the
 * message (found by its stanza-id in the history or the archive) was written by the same user
 * (occupant id), puts a tombstone in the archive, then relays the retraction (so whoever hears of
 * it finds the tombstone). A message the room no longer has is left to the clients, which check
 * the author themselves. Only the room speaks for moderators (XEP-0425): an occupant's message
 * claiming a moderation is refused.
 */
async function retractOwn(
  svc: MucService,
  room: Room,
  o: Occupant,
  ev: RouteEvent,
  r: Retraction,
): Promise<void> {
  if (r.moderated)
    throw new StanzaError('forbidden', { text: 'moderation is announced by the room, not by occupants' });
  const found = await findRoomMessage(svc, room, r.id);
  if (found && occupantIdOf(found.stanza) !== o.occupantId)
    throw new StanzaError('forbidden', { text: 'you may only retract your own messages' });
  if (room.byReal.get(ev.from.toString()) !== o) return; // left meanwhile
  const base = prepare(svc, room, o, ev);
  if (found && !isTombstone(found.stanza)) {
    const mark =
      r.version === 1
        ? xml('retracted', { xmlns: NS_RETRACT, stamp: stampNow(), id: roomStanzaId(room, base) })
        : xml('retracted', { xmlns: NS_RETRACT_0, stamp: stampNow() });
    await retire(svc, room, r.id, found, tombstone(found.stanza, [mark]));
  }
  for (const x of room.occupants.values()) svc.sendToOccupant(base, o.jid, x);
}

/**
 * Flood control: the message costs one delivery per session in the room, charged to the sender
 * and the room (flood-control.ts). Refused: an error of type wait; a sender that keeps flooding
 * its own budget loses its voice, which every occupant sees (a presence with role visitor).
 */
function chargeFanout(svc: MucService, room: Room, o: Occupant): void {
  const verdict = svc.flood.charge(room, o, room.byReal.size);
  if (verdict === 'ok') return;
  svc.ctx.throttled(verdict === 'room' ? 'muc-room-flood' : 'muc-sender-flood');
  if (verdict === 'room')
    throw new StanzaError('resource-constraint', {
      text: 'this room is too busy right now; try again shortly',
    });
  if (verdict === 'revoke' && o.role === 'participant') {
    setRole(svc, room, o, 'visitor', { reason: 'Voice revoked for flooding the room' });
    svc.ctx.log.info({ room: room.jid.toString(), nick: o.nick }, 'MUC flood: voice revoked');
  }
  throw new StanzaError('policy-violation', {
    type: 'wait',
    text: 'you are sending too much to this room; slow down',
  });
}

/** XEP-0091 legacy delayed delivery, still sent by some clients. */
const LEGACY_DELAY = 'jabber:x:delay';

/**
 * What the room must not pass on from a sender: `muc#user` payloads (only the room speaks them),
 * delayed-delivery stamps (XEP-0203, legacy XEP-0091), which only the room adds (to history): an
 * occupant's own stamp would make its message show up at a forged time; occupant ids (XEP-0421)
 * and stanza-ids in the room's name (XEP-0359), which only the room gives.
 */
function notRelayed(room: Room, c: Element | string): boolean {
  return (
    typeof c !== 'string' &&
    (c.xmlns === NS.mucUser ||
      (c.name === 'delay' && c.xmlns === NS.delay) ||
      (c.name === 'x' && c.xmlns === LEGACY_DELAY) ||
      isOccupantIdElement(c) ||
      (c.name === 'stanza-id' && c.xmlns === NS.sid && c.attrs.by === room.jid.toString()))
  );
}

/** The children of `st` to relay (a new array: the room adds its own). */
function relayedChildren(room: Room, st: Element): (Element | string)[] {
  return st.children.filter((c) => !notRelayed(room, c));
}

/** §8.1: moderators (and participants where the room allows it) change the subject. */
function changeSubject(svc: MucService, room: Room, o: Occupant, ev: RouteEvent, subject: Element): void {
  if (!(o.role === 'moderator' || (o.role === 'participant' && room.config.changeSubject))) {
    throw new StanzaError('forbidden', { text: 'you may not change the subject of this room' });
  }
  const text = subject.text();
  checkLength(svc, text, 'subject');
  chargeFanout(svc, room, o);
  room.subject = text;
  room.subjectFrom = o.jid.toString();
  const base = xml(
    'message',
    { type: 'groupchat', from: o.jid.toString(), id: ev.stanza.attrs.id },
    xml('subject', null, text),
    occupantIdElement(o.occupantId),
  );
  for (const r of room.occupants.values()) svc.sendToOccupant(base, o.jid, r);
  if (room.config.persistent) svc.persist(room);
}

/** Sending a private message: to an occupant, from the sender's occupant JID (real JIDs stay hidden). */
export function privateMessage(svc: MucService, room: Room, ev: RouteEvent): void {
  const st = ev.stanza;
  if (st.attrs.type === 'groupchat')
    throw new StanzaError('bad-request', { text: 'a private message cannot be of type groupchat' });
  const o = sender(room, ev);
  const allow = room.config.allowPm;
  if (
    allow === 'none' ||
    (allow === 'moderators' && o.role !== 'moderator') ||
    (allow === 'participants' && roleRank(o.role) < roleRank('participant'))
  ) {
    throw new StanzaError('forbidden', { text: 'private messages are not allowed in this room' });
  }
  const target = room.occupantByNick(ev.to.resource);
  if (!target) throw new StanzaError('item-not-found', { text: 'no such occupant' });
  checkLength(svc, st.getChildText('body'), 'message');
  const children = relayedChildren(room, st);
  children.push(xml('x', { xmlns: NS.mucUser }), occupantIdElement(o.occupantId));
  const el = new Element('message', st.xmlns, { ...st.attrs, from: o.jid.toString() }, children);
  el.inheritsNs = st.inheritsNs;
  svc.sendToOccupant(el, o.jid, target);
}

/** A message of another type to the room: invitations, declines and voice requests (§8.6). */
export function roomMessage(svc: MucService, room: Room, ev: RouteEvent): void {
  const st = ev.stanza;
  const x = st.getChild('x', NS.mucUser);
  if (x) {
    const invites = x.getChildren('invite');
    const declines = x.getChildren('decline');
    if (invites.length + declines.length > svc.options.maxItemsPerRequest)
      throw new StanzaError('policy-violation', { text: 'too many invitations' });
    if (invites.length > 0) invite(svc, room, ev, invites);
    for (const d of declines) decline(svc, room, ev, d);
    if (invites.length + declines.length > 0) return;
  }
  const form = st.getChild('x', NS.dataForms);
  if (form && formType(parseForm(form)) === 'http://jabber.org/protocol/muc#request')
    return voiceRequest(svc, room, ev, form);
  throw new StanzaError('bad-request', { text: 'messages to a room are of type groupchat' });
}

function target(to: string | undefined): ReturnType<typeof parseJid> {
  try {
    return parseJid(to ?? '');
  } catch {
    throw new StanzaError('jid-malformed', { text: 'the invitation or decline needs a valid to' });
  }
}

/** Mediated invitations, forwarded from the room (with the password, if any). */
function invite(svc: MucService, room: Room, ev: RouteEvent, invites: Element[]): void {
  const o = sender(room, ev);
  const aff = room.affiliationOf(o.real);
  const privileged = o.role === 'moderator' || isAdminOrOwner(aff);
  if (!room.config.allowInvites && !privileged)
    throw new StanzaError('forbidden', { text: 'only moderators may invite to this room' });
  const targets = invites.map((i) => ({ to: target(i.attrs.to), reason: i.getChildText('reason') }));
  let changed = false;
  for (const { to, reason } of targets) {
    if (
      room.config.membersOnly &&
      isAdminOrOwner(aff) &&
      room.affiliations.get(to.toBareString()) === 'none'
    ) {
      room.affiliations.set(to.toBareString(), 'member');
      changed = true;
    }
    const body = `${o.real.toBareString()} invites you to the room ${room.jid.toString()}${reason ? `: ${reason}` : ''}`;
    const msg = xml(
      'message',
      { from: room.jid.toString(), id: ev.stanza.attrs.id },
      xml(
        'x',
        { xmlns: NS.mucUser },
        xml('invite', { from: o.real.toBareString() }, reason !== undefined && xml('reason', null, reason)),
        room.config.password !== '' && xml('password', null, room.config.password),
      ),
      xml('body', null, body),
    );
    svc.sendNew(msg, room.jid, to);
  }
  if (changed && room.config.persistent) svc.persist(room);
}

/** A declined invitation goes back to the inviter, from the room. */
function decline(svc: MucService, room: Room, ev: RouteEvent, d: Element): void {
  const to = target(d.attrs.to);
  const reason = d.getChildText('reason');
  const msg = xml(
    'message',
    { from: room.jid.toString(), id: ev.stanza.attrs.id },
    xml(
      'x',
      { xmlns: NS.mucUser },
      xml('decline', { from: ev.from.toBareString() }, reason !== undefined && xml('reason', null, reason)),
    ),
  );
  svc.sendNew(msg, room.jid, to);
}

/**
 * Requesting voice / §8.6: a visitor asks for voice (the request goes to the moderators); a moderator
 * answers by submitting the form with muc#request_allow.
 */
function voiceRequest(svc: MucService, room: Room, ev: RouteEvent, form: Element): void {
  const o = sender(room, ev);
  const fields = parseForm(form).fields;
  const value = (name: string) => fields.find((f) => f.var === name)?.values[0];
  if (o.role === 'moderator' && form.attrs.type === 'submit') {
    if (parseBoolean(value('muc#request_allow')) !== true) return;
    const target = room.occupantByNick(value('muc#roomnick') ?? '');
    if (target && target.role === 'visitor') setRole(svc, room, target, 'participant', { actor: o.nick });
    return;
  }
  if (o.role !== 'visitor') return;
  if (value('muc#role') !== 'participant')
    throw new StanzaError('bad-request', { text: 'a voice request asks for the participant role' });
  const request = xml(
    'x',
    { xmlns: NS.dataForms, type: 'form' },
    xml('title', null, 'Voice request'),
    xml(
      'field',
      { var: 'FORM_TYPE', type: 'hidden' },
      xml('value', null, 'http://jabber.org/protocol/muc#request'),
    ),
    xml('field', { var: 'muc#role', type: 'list-single' }, xml('value', null, 'participant')),
    xml('field', { var: 'muc#jid', type: 'jid-single' }, xml('value', null, o.real.toString())),
    xml('field', { var: 'muc#roomnick', type: 'text-single' }, xml('value', null, o.nick)),
    xml('field', { var: 'muc#request_allow', type: 'boolean' }, xml('value', null, 'false')),
  );
  const base = xml('message', { from: room.jid.toString() }, request);
  for (const r of room.occupants.values()) if (r.role === 'moderator') svc.sendToOccupant(base, room.jid, r);
}
