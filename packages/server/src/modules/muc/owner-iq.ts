import { xml, type Element } from '@natter/xml';
import { parseJid } from '@natter/jid';
import { NS, StanzaError } from '@natter/protocol';
import type { IqRequest } from '../../core/module-api.js';
import { affiliationChanged, evacuate, removeNonMembers } from './occupants.js';
import type { Room } from './room.js';
import { applyConfigForm, configForm, LIMITS } from './room-config.js';
import type { MucService } from './service.js';
import { archiveAvailable } from './xep-0313-room-archive.js';

/** `muc#owner` (XEP-0045 §10): the configuration form, its submission or cancellation, destruction. */

function requireOwner(room: Room, req: IqRequest): void {
  if (room.affiliationOf(req.from) !== 'owner')
    throw new StanzaError('forbidden', { text: 'only owners may configure this room' });
}

/** §10.2: the configuration form. */
export function ownerGet(svc: MucService, room: Room, req: IqRequest): Element {
  requireOwner(room, req);
  if (req.payload.elements().length > 0) throw new StanzaError('bad-request');
  const form = configForm(
    room.config,
    room.jid.toString(),
    room.affiliations.list('admin'),
    room.affiliations.list('owner'),
    svc.options.maxOccupants,
    archiveAvailable(svc) !== undefined,
  );
  return xml('query', { xmlns: NS.mucOwner }, form);
}

export function ownerSet(svc: MucService, room: Room, req: IqRequest): void {
  requireOwner(room, req);
  const destroy = req.payload.getChild('destroy', NS.mucOwner);
  if (destroy) {
    const alt = destroy.attrs.jid;
    if (alt !== undefined) {
      try {
        parseJid(alt);
      } catch {
        throw new StanzaError('jid-malformed', { text: 'the alternate venue is not a valid JID' });
      }
    }
    const reason = destroy.getChildText('reason', NS.mucOwner);
    if (reason !== undefined && reason.length > LIMITS.description)
      throw new StanzaError('not-acceptable', { text: 'the reason is too long' });
    destroyRoom(svc, room, reason, alt, destroy.getChildText('password', NS.mucOwner));
    return;
  }
  const x = req.payload.getChild('x', NS.dataForms);
  if (!x) throw new StanzaError('bad-request', { text: 'expected a data form or <destroy/>' });
  const type = x.attrs.type;
  if (type === 'cancel') {
    // §10.1.3: cancelling the initial configuration destroys the room.
    if (room.locked) destroyRoom(svc, room);
    return;
  }
  if (type !== 'submit')
    throw new StanzaError('bad-request', { text: 'the form must be of type submit or cancel' });
  configure(svc, room, x);
}

function bareList(values: string[]): string[] {
  return values.map((v) => {
    try {
      return parseJid(v.trim()).toBareString();
    } catch {
      throw new StanzaError('not-acceptable', { text: `${v} is not a valid JID` });
    }
  });
}

/** §10.2 / §10.1.2: applies a submitted form (an empty one accepts the defaults: instant room). */
function configure(svc: MucService, room: Room, x: Element): void {
  const { config, admins, owners } = applyConfigForm(x, room.config, {
    maxUsers: svc.options.maxOccupants,
    historyMax: svc.options.historyMax,
    archiving: archiveAvailable(svc) !== undefined,
  });
  // An empty owner list is read as "unchanged": a room always keeps an owner.
  const ownerList = owners && owners.length > 0 ? bareList(owners) : undefined;
  const adminList = admins && bareList(admins);
  const before = room.config;
  const wasLocked = room.locked;
  room.config = config;
  room.locked = false;
  room.history.setLimit(config.historyLength);
  const touched: { bare: string; before: ReturnType<Room['affiliations']['get']> }[] = [];
  const sync = (list: string[] | undefined, aff: 'owner' | 'admin') => {
    if (!list) return;
    const wanted = new Set(list);
    for (const bare of room.affiliations.list(aff)) {
      if (!wanted.has(bare)) {
        touched.push({ bare, before: aff });
        room.affiliations.set(bare, 'none');
      }
    }
    for (const bare of wanted) {
      const b = room.affiliations.get(bare);
      if (b === aff) continue;
      touched.push({ bare, before: b });
      room.affiliations.set(bare, aff);
    }
  };
  sync(ownerList, 'owner');
  sync(adminList, 'admin');
  for (const t of touched) affiliationChanged(svc, room, t.bare, t.before, {});
  if (config.membersOnly && !before.membersOnly) removeNonMembers(svc, room);
  if (!wasLocked) notifyChange(svc, room, before);
  svc.persist(room);
  svc.roomMaybeEmpty(room);
}

/** §10.2.1: occupants learn that the configuration changed (104) and how privacy changed. */
function notifyChange(svc: MucService, room: Room, before: Room['config']): void {
  const codes = [104];
  const c = room.config;
  if (c.whois !== before.whois) codes.push(c.whois === 'anyone' ? 172 : 173);
  if (c.enableLogging !== before.enableLogging) codes.push(c.enableLogging ? 170 : 171);
  const base = xml(
    'message',
    { type: 'groupchat', from: room.jid.toString() },
    xml(
      'x',
      { xmlns: NS.mucUser },
      codes.map((code) => xml('status', { code: String(code) })),
    ),
  );
  for (const o of room.occupants.values()) svc.sendToOccupant(base, room.jid, o);
}

/** §10.9: every occupant gets unavailable with `<destroy/>` (reason, alternate venue); the room goes. */
export function destroyRoom(
  svc: MucService,
  room: Room,
  reason?: string,
  alternate?: string,
  password?: string,
): void {
  const destroy = xml(
    'destroy',
    { jid: alternate },
    reason !== undefined && xml('reason', null, reason),
    password !== undefined && xml('password', null, password),
  );
  evacuate(svc, room, destroy);
  svc.dispose(room);
}
