import { randomBytes } from 'node:crypto';
import { Element, xml } from '@natter/xml';
import { parseJid, type Jid } from '@natter/jid';
import { NS, StanzaError, buildForm, errorReply } from '@natter/protocol';
import { type RouteEvent, IqDispatcher, type ModuleContext } from '../../core/module-api.js';
import { adminGet, adminSet } from './admin-iq.js';
import { FloodControl } from './flood-control.js';
import { groupchat, privateMessage, roomMessage } from './messages.js';
import {
  announceShutdown,
  changeNick,
  checkEntry,
  enter,
  leave,
  removeOccupant,
  STATUS,
  updatePresence,
} from './occupants.js';
import type { MucOptions } from './options.js';
import { ownerGet, ownerSet } from './owner-iq.js';
import { Room, type Occupant } from './room.js';
import { defaultConfig } from './room-config.js';
import type { RoomStore } from './storage.js';
import type { HistoryEntry } from './history.js';
import type { ClusterRooms } from './cluster-rooms.js';
import { NS_OCCUPANT_ID, occupantId } from './xep-0421-occupant-id.js';
import {
  archiveAvailable,
  archiveFeatures,
  archiveForm,
  archiveMetadata,
  archiveQuery,
} from './xep-0313-room-archive.js';
import { NS_FASTEN, NS_RETRACT } from './xep-0424-retraction.js';
import { moderate, NS_MODERATE, NS_MODERATE_0 } from './xep-0425-moderation.js';
import { getRoomVcard, setRoomVcard } from './xep-0486-room-avatar.js';

const RELAY_TIMEOUT_MS = 60_000;
const MAX_RELAYED_IQS = 10_000;
const SELF_PING_OPT = 'http://jabber.org/protocol/muc#self-ping-optimization';

/** What the `muc` module offers other modules and admin tooling. */
export interface MucApi {
  domain: string;
  rooms(): {
    jid: string;
    name: string;
    occupants: number;
    persistent: boolean;
    public: boolean;
    locked: boolean;
  }[];
  /** Destroys a room (occupants are told, with the optional reason). */
  destroy(room: string, reason?: string): Promise<boolean>;
}

/**
 * The MUC service of one virtual host (XEP-0045): routes what reaches its domain to the rooms,
 * answers disco for the service and the rooms, keeps rooms in memory and persistent ones stored.
 */
export class MucService {
  readonly jid: Jid;
  /** By room localpart. */
  readonly rooms = new Map<string, Room>();
  /** Rooms each real full JID is in (so a session's end removes it everywhere). */
  private readonly presentIn = new Map<string, Set<Room>>();
  private readonly serviceIq: IqDispatcher;
  private readonly roomIq: IqDispatcher;
  private writes: Promise<void> = Promise.resolve();
  /** IQs relayed between occupants, by the id the room gave them. */
  private readonly relayed = new Map<
    string,
    { id: string; requester: Jid; target: Jid; targetOccupant: Jid; timer: NodeJS.Timeout }
  >();
  private relayCounter = 0;
  /** Fan-out budgets of senders and rooms. */
  readonly flood: FloodControl;
  private stopped = false;
  /** While the shutdown notices go out: their deliveries, to await before the streams close. */
  private collecting: Promise<unknown>[] | undefined;
  /** The secret behind occupant ids (XEP-0421), loaded with the rooms. */
  private secret = '';
  /** In a cluster: rooms placed on their nodes, fetched when first addressed (cluster-rooms.ts). */
  placement: ClusterRooms | undefined;

  constructor(
    readonly ctx: ModuleContext<MucOptions>,
    readonly options: MucOptions,
    readonly domain: string,
    private readonly store: RoomStore,
  ) {
    this.jid = parseJid(domain);
    this.flood = new FloodControl(options.floodControl);
    const crash = (owner: string, err: unknown, stanza: Element) =>
      ctx.log.error({ err, stanza: stanza.toString().slice(0, 500) }, 'MUC IQ handler failed');
    this.serviceIq = new IqDispatcher(crash);
    this.roomIq = new IqDispatcher(crash);
    this.serviceIq.on('get', NS.discoInfo, 'query', (req) => this.serviceInfo(req.payload));
    this.serviceIq.on('get', NS.discoItems, 'query', (req) => this.serviceItems(req.payload));
    const room = (to: Jid, from: Jid): Room => this.roomFor(to, from);
    this.roomIq.on('get', NS.discoInfo, 'query', (req) => this.roomInfo(room(req.to, req.from), req.payload));
    this.roomIq.on('get', NS.discoItems, 'query', (req) => this.roomItems(room(req.to, req.from), req.from));
    this.roomIq.on('get', NS.mucAdmin, 'query', (req) => adminGet(this, room(req.to, req.from), req));
    this.roomIq.on('set', NS.mucAdmin, 'query', (req) => adminSet(this, room(req.to, req.from), req));
    this.roomIq.on('get', NS.mucOwner, 'query', (req) => ownerGet(this, room(req.to, req.from), req));
    this.roomIq.on('set', NS.mucOwner, 'query', (req) => ownerSet(this, room(req.to, req.from), req));
    this.roomIq.on('get', NS.mam, 'query', (req) => archiveForm(this, room(req.to, req.from), req));
    this.roomIq.on('set', NS.mam, 'query', (req) => archiveQuery(this, room(req.to, req.from), req));
    this.roomIq.on('get', NS.mam, 'metadata', (req) => archiveMetadata(this, room(req.to, req.from), req));
    this.roomIq.on('get', NS.vcard, 'vCard', (req) => getRoomVcard(room(req.to, req.from), req));
    this.roomIq.on('set', NS.vcard, 'vCard', (req) => setRoomVcard(this, room(req.to, req.from), req));
    this.roomIq.on('set', NS_MODERATE, 'moderate', (req) => moderate(this, room(req.to, req.from), req));
    this.roomIq.on('set', NS_FASTEN, 'apply-to', (req) => moderate(this, room(req.to, req.from), req));
  }

  /** XEP-0421: the occupant id of `real`'s user in `room`. */
  occupantId(room: Room, real: Jid): string {
    return occupantId(this.secret, room.jid, real);
  }

  /** New rooms keep an archive unless the service says otherwise (`modules.muc.archive`). */
  private get archiveByDefault(): boolean {
    return this.options.archive === 'on';
  }

  /** Loads the occupant-id secret, and the persistent rooms unless `rooms` is false (a cluster). */
  async load(rooms = true): Promise<void> {
    this.secret = await this.store.secret(this.domain, randomBytes(32).toString('base64url'));
    if (rooms) await this.loadRooms();
  }

  private async loadRooms(): Promise<void> {
    const rooms = await this.store.load(this.domain, this.baseConfig(), (jid, err) =>
      this.ctx.log.error({ err, room: jid }, 'skipping unreadable stored room'),
    );
    for (const r of rooms) this.rooms.set(r.name, r);
    if (rooms.length > 0)
      this.ctx.log.info({ rooms: rooms.length, muc: this.domain }, 'persistent rooms loaded');
  }

  private baseConfig() {
    return defaultConfig(this.options.maxOccupants, this.options.historyMax, this.archiveByDefault);
  }

  /** One stored room (a bare JID), or undefined when it is not stored. */
  async loadStored(jid: string): Promise<Room | undefined> {
    const [room] = await this.store.load(
      this.domain,
      this.baseConfig(),
      (j, err) => this.ctx.log.error({ err, room: j }, 'skipping unreadable stored room'),
      jid,
    );
    return room;
  }

  /** Puts a room (handed over by another node, or loaded) in this service, its occupants indexed. */
  attach(room: Room): void {
    this.rooms.set(room.name, room);
    for (const o of room.occupants.values()) for (const s of o.sessions) this.indexOccupant(s, room);
  }

  /** Takes a room out of this service without a word to anyone (it goes on on another node). */
  detach(room: Room): void {
    if (this.rooms.get(room.name) !== room) return;
    this.rooms.delete(room.name);
    for (const o of room.occupants.values()) for (const s of o.sessions) this.unindexOccupant(s, room);
  }

  /** Resolves once the room's running handlers, and the storage writes issued so far, are done. */
  async settled(room: Room): Promise<void> {
    await Promise.allSettled([...room.busy]);
    await this.writes;
  }

  /** A room that exists and that `from` may address (a locked room exists only for its owner). */
  private roomFor(to: Jid, from: Jid): Room {
    const r = this.rooms.get(to.local);
    if (!r || (r.locked && r.affiliationOf(from) !== 'owner'))
      throw new StanzaError('item-not-found', { text: 'no such room' });
    return r;
  }

  // --- routing ---------------------------------------------------------------------------------

  handle(ev: RouteEvent): void {
    const { stanza, to } = ev;
    if (to.local === '') return this.toService(ev);
    const room = this.rooms.get(to.local);
    // In a cluster a room is fetched when first addressed here; its stanzas wait in order meanwhile
    // (and later ones queue behind them, even once the room is here).
    if (this.placement && (!room || this.placement.fetching(to.local)) && this.placement.hold(ev)) return;
    if (stanza.name === 'presence') return this.presence(ev, room);
    if (stanza.name === 'message') {
      if (stanza.attrs.type === 'error') return;
      if (!room || room.locked) return this.bounce(ev, 'item-not-found', 'no such room');
      if (to.resource !== '') return this.guard(ev, () => privateMessage(this, room, ev));
      if (stanza.attrs.type === 'groupchat') return this.guard(ev, () => groupchat(this, room, ev));
      return this.guard(ev, () => roomMessage(this, room, ev));
    }
    if (stanza.name === 'iq') {
      if (to.resource !== '') return this.occupantIq(ev, room);
      return this.iq(this.roomIq, ev);
    }
  }

  /** Runs a stanza's handler; a StanzaError it throws (or rejects with) is answered to the sender. */
  private guard(ev: RouteEvent, fn: () => void | Promise<void>): void {
    const refuse = (err: unknown): void => {
      if (!(err instanceof StanzaError)) throw err;
      if (ev.stanza.attrs.type === 'error') return;
      this.sendNew(errorReply(ev.stanza, err), ev.to, ev.from);
    };
    try {
      const r = fn();
      if (r instanceof Promise)
        this.track(
          ev,
          r.catch(refuse).catch((err: unknown) => this.ctx.log.error({ err }, 'MUC message handling failed')),
        );
    } catch (err) {
      refuse(err);
    }
  }

  /**
   * Notes a handler still running for a room (it waits for storage, e.g. moderation): a room handed
   * to another node of a cluster leaves once they finished, so their changes travel with it.
   */
  private track(ev: RouteEvent, p: Promise<unknown>): void {
    const room = this.rooms.get(ev.to.local);
    if (!room) return;
    room.busy.add(p);
    const done = () => room.busy.delete(p);
    p.then(done, done);
  }

  private toService(ev: RouteEvent): void {
    if (ev.stanza.name === 'iq') return this.iq(this.serviceIq, ev);
    if (ev.stanza.name === 'message' && ev.stanza.attrs.type !== 'error')
      this.bounce(ev, 'service-unavailable');
  }

  private iq(dispatcher: IqDispatcher, ev: RouteEvent): void {
    const reply = dispatcher.dispatch(ev);
    if (reply === undefined) return this.bounce(ev, 'service-unavailable');
    if (reply instanceof Promise)
      this.track(
        ev,
        reply.then((r) => this.ctx.send(r)),
      );
    else void this.ctx.send(reply);
  }

  /**
   * IQs between occupants (vCard, version, ping …): relayed from the sender's occupant JID to one
   * session of the target with a fresh id, and the response relayed back, so real JIDs stay
   * hidden. XEP-0410: an occupant pinging its own occupant JID is answered by the room.
   */
  private occupantIq(ev: RouteEvent, room: Room | undefined): void {
    const type = ev.stanza.attrs.type;
    if (type === 'result' || type === 'error') return this.relayResponse(ev);
    if (type !== 'get' && type !== 'set') return;
    const occupant = room?.byReal.get(ev.from.toString());
    if (!room || !occupant) return this.bounce(ev, 'not-acceptable', 'you are not in this room');
    const target = room.occupantByNick(ev.to.resource);
    if (!target) return this.bounce(ev, 'item-not-found', 'no such occupant');
    const payload = ev.stanza.firstElement();
    if (payload?.is('ping', NS.ping) && target === occupant) {
      return this.sendNew(
        xml('iq', { type: 'result', id: ev.stanza.attrs.id, from: ev.to.toString() }),
        ev.to,
        ev.from,
      );
    }
    if (this.relayed.size >= MAX_RELAYED_IQS)
      return this.bounce(ev, 'resource-constraint', 'too many IQs in flight');
    const id = `muc-${(++this.relayCounter).toString(36)}`;
    const timer = setTimeout(() => this.relayed.delete(id), RELAY_TIMEOUT_MS);
    timer.unref();
    this.relayed.set(id, {
      id: ev.stanza.attrs.id ?? '',
      requester: ev.from,
      target: target.real,
      targetOccupant: target.jid,
      timer,
    });
    const el = new Element(
      'iq',
      ev.stanza.xmlns,
      { type, id, from: occupant.jid.toString() },
      ev.stanza.children.slice(),
    );
    el.inheritsNs = ev.stanza.inheritsNs;
    this.sendNew(el, occupant.jid, target.real);
  }

  /** A response to a relayed IQ goes back to the requester, from the responder's occupant JID. */
  private relayResponse(ev: RouteEvent): void {
    const id = ev.stanza.attrs.id ?? '';
    const pending = this.relayed.get(id);
    if (!pending || !pending.target.equals(ev.from)) return;
    this.relayed.delete(id);
    clearTimeout(pending.timer);
    const from = pending.targetOccupant;
    const el = new Element(
      'iq',
      ev.stanza.xmlns,
      { type: ev.stanza.attrs.type!, id: pending.id, from: from.toString() },
      ev.stanza.children.slice(),
    );
    el.inheritsNs = ev.stanza.inheritsNs;
    this.sendNew(el, from, pending.requester);
  }

  private presence(ev: RouteEvent, room: Room | undefined): void {
    const { stanza, from, to } = ev;
    const type = stanza.attrs.type;
    if (type !== undefined && type !== 'unavailable' && type !== 'error') return; // subscriptions: nothing to do
    const occupant = room?.byReal.get(from.toString());
    if (type === 'error') {
      // Status 333: the occupant's server bounced our presence: that session is gone.
      if (room && occupant) {
        if (occupant.sessions.length > 1) leave(this, room, occupant, undefined, from);
        else removeOccupant(this, room, occupant, [STATUS.error], {}, false);
      }
      return;
    }
    if (type === 'unavailable') {
      if (room && occupant) leave(this, room, occupant, stanza, from);
      return;
    }
    if (room && occupant) {
      if (to.resource === '' || to.resource === occupant.nick)
        return updatePresence(this, room, occupant, stanza);
      return this.guard(ev, () => changeNick(this, room, occupant, ev));
    }
    this.guard(ev, () => {
      if (room) {
        checkEntry(this, room, ev, false);
        enter(this, room, ev, false);
        return;
      }
      const created = this.create(ev);
      enter(this, created, ev, true);
    });
  }

  /** §10.1: the first occupant creates the room and owns it; it stays locked until configured. */
  private create(ev: RouteEvent): Room {
    const { from, to } = ev;
    const probe = new Room(to.bare, defaultConfig(0, 0));
    checkEntry(this, probe, ev, true);
    if (this.options.creators === 'local' && !this.ctx.router.hosts.has(from.domain)) {
      throw new StanzaError('not-allowed', { text: 'only local users may create rooms' });
    }
    if (this.rooms.size >= this.options.maxRooms)
      throw new StanzaError('resource-constraint', { text: 'too many rooms on this service' });
    const max = this.options.maxRoomsPerUser;
    if (max > 0) {
      const bare = from.toBareString();
      let owned = 0;
      for (const r of this.rooms.values()) if (r.affiliations.get(bare) === 'owner') owned++;
      if (owned >= max) throw new StanzaError('not-allowed', { text: `you already own ${owned} rooms` });
    }
    const room = new Room(
      to.bare,
      defaultConfig(this.options.maxOccupants, this.options.historyMax, this.archiveByDefault),
    );
    room.affiliations.set(from.toBareString(), 'owner');
    // A client speaking XEP-0045 gets a locked room to configure; a groupchat 1.0 client an instant one.
    room.locked = ev.stanza.getChild('x', NS.muc) !== undefined;
    this.rooms.set(room.name, room);
    return room;
  }

  /** Temporary rooms disappear with their last occupant (XEP-0045 temporary rooms). */
  roomMaybeEmpty(room: Room): void {
    if (room.occupants.size > 0 || room.config.persistent) return;
    this.forget(room);
  }

  private forget(room: Room): void {
    if (this.rooms.get(room.name) === room) this.rooms.delete(room.name);
    const jid = room.jid.toString();
    if (room.stored) {
      room.stored = false;
      this.write(() => this.store.remove(jid));
    }
    // The room is gone, and its archive with it (a new room of that name starts with none).
    const mam = archiveAvailable(this);
    if (mam) this.write(() => mam.deleteArchive(jid));
  }

  /** Removes a room for good (after its occupants were told). */
  dispose(room: Room): void {
    room.config = { ...room.config, persistent: false };
    this.forget(room);
  }

  /** Stores a persistent room's configuration, subject and affiliations (or forgets a stored room). */
  persist(room: Room): void {
    if (!room.config.persistent) {
      if (room.stored) {
        room.stored = false;
        const jid = room.jid.toString();
        this.write(() => this.store.remove(jid));
      }
      return;
    }
    room.stored = true;
    this.write(() => this.store.save(this.domain, room));
  }

  /** Stores a groupchat message of a persistent room (serialised later, off the fan-out). */
  persistHistory(room: Room, stanza: Element, at: number): void {
    if (!room.stored || room.config.historyLength <= 0) return;
    const jid = room.jid.toString();
    const keep = room.config.historyLength;
    this.write(() => this.store.addHistory(jid, at, stanza.toString(), keep));
  }

  /** Takes a retracted message out of a persistent room's stored history. */
  forgetHistory(room: Room, entry: HistoryEntry): void {
    if (!room.stored) return;
    const jid = room.jid.toString();
    const text = entry.stanza.toString();
    this.write(() => this.store.removeHistory(jid, entry.at, text));
  }

  /** Storage writes run one at a time, in order; failures are logged. */
  private write(fn: () => Promise<void>): void {
    this.writes = this.writes
      .then(fn)
      .catch((err: unknown) => this.ctx.log.error({ err }, 'MUC storage write failed'));
  }

  /** The service or the whole server is shutting down: departures are not broadcast. */
  get stopping(): boolean {
    return this.stopped || this.ctx.stopping;
  }

  /** The server is stopping: every occupant hears why it leaves (332); then departures are silent. */
  async announceShutdown(): Promise<void> {
    if (this.stopped) return;
    // Delivery can be asynchronous (hooks that read storage): the notices must be written before
    // the streams close.
    const sent: Promise<unknown>[] = (this.collecting = []);
    for (const room of this.rooms.values()) announceShutdown(this, room);
    // Rooms a drain could not hand over in time (their storage still busy) are announced too.
    for (const room of this.placement?.abandon() ?? []) announceShutdown(this, room);
    this.collecting = undefined;
    this.stopped = true;
    await Promise.allSettled(sent);
  }

  stop(): Promise<void> {
    this.stopped = true;
    return this.flush();
  }

  flush(): Promise<void> {
    for (const p of this.relayed.values()) clearTimeout(p.timer);
    this.relayed.clear();
    return this.writes;
  }

  // --- occupants' sessions ------------------------------------------------------------------------

  indexOccupant(real: Jid, room: Room): void {
    const key = real.toString();
    let set = this.presentIn.get(key);
    if (!set) this.presentIn.set(key, (set = new Set()));
    set.add(room);
  }

  unindexOccupant(real: Jid, room: Room): void {
    const key = real.toString();
    const set = this.presentIn.get(key);
    if (!set) return;
    set.delete(room);
    if (set.size === 0) this.presentIn.delete(key);
  }

  /** A session ended (or went unavailable) without leaving: it leaves every room it is in. */
  sessionGone(real: Jid): void {
    const set = this.presentIn.get(real.toString());
    if (!set) return;
    for (const room of [...set]) {
      const o = room.byReal.get(real.toString());
      if (o) leave(this, room, o, undefined, real);
    }
  }

  // --- sending ---------------------------------------------------------------------------------

  /** Routes a stanza this service built (sets its `to`). */
  sendNew(el: Element, from: Jid, to: Jid): void {
    void this.sendAwaitable(el, from, to);
  }

  /**
   * `sendNew`, with a promise when routing goes on asynchronously (settled once routed, errors
   * logged): for what must arrive in order, one after the other.
   */
  sendAwaitable(el: Element, from: Jid, to: Jid): Promise<unknown> | undefined {
    el.attrs.to = to.toString();
    return this.dispatch(el, from, to);
  }

  /** Routes a shallow copy of a shared stanza to every session of an occupant. */
  sendToOccupant(base: Element, from: Jid, o: Occupant): void {
    const { sessions } = o;
    for (let i = 0; i < sessions.length; i++) this.sendCopy(base, from, sessions[i]!);
  }

  /** Routes a shallow copy of a shared stanza to one recipient: new attributes, children shared. */
  sendCopy(base: Element, from: Jid, to: Jid): void {
    const el = new Element(
      base.name,
      base.xmlns,
      { ...base.attrs, to: to.toString() },
      base.children.slice(),
    );
    el.inheritsNs = base.inheritsNs;
    void this.dispatch(el, from, to);
  }

  private dispatch(stanza: Element, from: Jid, to: Jid): Promise<unknown> | undefined {
    const r = this.ctx.router.dispatch({ stanza, from, to, origin: undefined });
    if (r instanceof Promise) {
      const logged = r.catch((err: unknown) => this.ctx.log.error({ err }, 'MUC delivery failed'));
      this.collecting?.push(logged);
      return logged;
    }
    return undefined;
  }

  bounce(ev: RouteEvent, condition: ConstructorParameters<typeof StanzaError>[0], text?: string): void {
    if (ev.stanza.attrs.type === 'error' || (ev.stanza.name === 'iq' && ev.stanza.attrs.type === 'result'))
      return;
    this.sendNew(errorReply(ev.stanza, new StanzaError(condition, { text })), ev.to, ev.from);
  }

  // --- disco (XEP-0030, XEP-0045 §6) -------------------------------------------------------------

  private serviceInfo(q: Element): Element {
    if (q.attrs.node !== undefined) throw new StanzaError('item-not-found');
    return xml(
      'query',
      { xmlns: NS.discoInfo },
      xml('identity', { category: 'conference', type: 'text', name: 'Chatrooms' }),
      [NS.discoInfo, NS.discoItems, NS.muc].sort().map((v) => xml('feature', { var: v })),
    );
  }

  /** §6.3: the public rooms, with their names (in a cluster, those of every node and of storage). */
  private serviceItems(q: Element): Element | Promise<Element> {
    if (q.attrs.node !== undefined) throw new StanzaError('item-not-found');
    const list = (rooms: { jid: string; name: string }[]): Element =>
      xml(
        'query',
        { xmlns: NS.discoItems },
        rooms.sort((a, b) => (a.jid < b.jid ? -1 : 1)).map((r) => xml('item', { jid: r.jid, name: r.name })),
      );
    if (this.placement)
      return this.placement.publicRooms(() => this.store.publicRooms(this.domain)).then(list);
    const rooms: { jid: string; name: string }[] = [];
    for (const r of this.rooms.values()) {
      if (!r.config.public || r.locked) continue;
      rooms.push({ jid: r.jid.toString(), name: r.config.name || r.name });
    }
    return list(rooms);
  }

  /** §6.4: identity, muc_* features and the muc#roominfo form. */
  private roomInfo(room: Room, q: Element): Element {
    if (q.attrs.node !== undefined) throw new StanzaError('item-not-found');
    const c = room.config;
    const info = buildForm({
      type: 'result',
      formType: 'http://jabber.org/protocol/muc#roominfo',
      fields: [
        {
          var: 'muc#roominfo_description',
          type: 'text-single',
          label: 'Description',
          values: [c.description],
        },
        {
          var: 'muc#roominfo_occupants',
          type: 'text-single',
          label: 'Number of occupants',
          values: [String(room.occupants.size)],
        },
        { var: 'muc#roominfo_subject', type: 'text-single', label: 'Subject', values: [room.subject] },
        {
          var: 'muc#roominfo_subjectmod',
          type: 'boolean',
          label: 'Occupants may change the subject',
          values: [c.changeSubject ? '1' : '0'],
        },
        { var: 'muc#roomconfig_roomname', type: 'text-single', label: 'Name', values: [c.name] },
        {
          var: 'muc#roomconfig_maxusers',
          type: 'text-single',
          label: 'Maximum occupants',
          values: [c.maxUsers === 0 ? 'none' : String(c.maxUsers)],
        },
        {
          var: 'muc#roomconfig_allowinvites',
          type: 'boolean',
          label: 'Occupants may invite',
          values: [c.allowInvites ? '1' : '0'],
        },
        {
          var: 'muc#roomconfig_whois',
          type: 'list-single',
          label: 'Real JIDs visible to',
          values: [c.whois],
        },
        ...(c.lang ? [{ var: 'muc#roominfo_lang', type: 'text-single' as const, values: [c.lang] }] : []),
        // XEP-0486: the hash of the room's avatar.
        ...(room.avatarHash
          ? [{ var: 'muc#roominfo_avatarhash', type: 'text-multi' as const, values: [room.avatarHash] }]
          : []),
      ],
    });
    return xml(
      'query',
      { xmlns: NS.discoInfo },
      xml('identity', { category: 'conference', type: 'text', name: c.name || room.name }),
      [
        NS.discoInfo,
        NS.discoItems,
        NS.muc,
        SELF_PING_OPT,
        NS_OCCUPANT_ID,
        NS_MODERATE,
        NS_MODERATE_0,
        NS_RETRACT,
        NS.vcard,
        ...archiveFeatures(this, room),
        ...room.features(),
      ].map((v) => xml('feature', { var: v })),
      info,
    );
  }

  /** §6.5: occupants are listed only where real JIDs are not secret, or to occupants. */
  private roomItems(room: Room, from: Jid): Element {
    const show = room.byReal.has(from.toString()) || (room.config.public && room.nonAnonymous);
    return xml(
      'query',
      { xmlns: NS.discoItems },
      show && [...room.occupants.values()].map((o) => xml('item', { jid: o.jid.toString() })),
    );
  }

  // --- admin API ---------------------------------------------------------------------------------

  api(destroyRoom: (room: Room, reason?: string) => void): MucApi {
    return {
      domain: this.domain,
      rooms: () =>
        [...this.rooms.values()].map((r) => ({
          jid: r.jid.toString(),
          name: r.config.name || r.name,
          occupants: r.occupants.size,
          persistent: r.config.persistent,
          public: r.config.public,
          locked: r.locked,
        })),
      destroy: async (jid, reason) => {
        const r = this.rooms.get(jid.split('@')[0] ?? '');
        if (!r || r.jid.toString() !== jid) return false;
        destroyRoom(r, reason);
        await this.flush();
        return true;
      },
    };
  }
}
