import type { Jid } from '@natter/jid';
import { NS, StanzaError, errorReply } from '@natter/protocol';
import { xml, type Element } from '@natter/xml';
import type { Component, ComponentMessage, ComponentPresence } from '../component.js';
import type { DiscoIdentity, DiscoItem } from '../disco/xep-0030-disco.js';
import { Emitter } from '../emitter.js';

/** A user of the XMPP side in a room. */
export interface RoomUser {
  nick: string;
  /** The user's full JID. */
  jid: Jid;
}

export interface RoomOptions {
  /** Human-readable name (disco#info identity name). */
  name?: string;
  subject?: string;
  /** Most XMPP users in the room (default 1,000): a join beyond gets service-unavailable. */
  maxUsers?: number;
}

export interface RoomEvents {
  /** An XMPP user joined (after the room sent them the occupant list and the subject). */
  join: RoomUser;
  /** An XMPP user left (unavailable presence). */
  leave: RoomUser;
  /** A groupchat message from a joined user, already reflected to every joined user. */
  message: { nick: string; from: Jid; body?: string; element: Element };
}

const MUC_USER = NS.mucUser;

/**
 * A legacy room shown as a MUC-like room at `room@domain` (XEP-0045, the parts a client needs to
 * join, see occupants, chat and leave). Legacy participants are occupants the gateway adds with
 * `addParticipant`; XMPP users join with a MUC join presence.
 */
export class Room extends Emitter<RoomEvents> {
  readonly jid: Jid;
  readonly #users = new Map<string, RoomUser>(); // by nick
  readonly #participants = new Map<string, { show?: string; status?: string }>(); // legacy, by nick
  #subject: string;
  readonly maxUsers: number;

  constructor(
    private readonly gw: Component,
    readonly localName: string,
    readonly options: RoomOptions,
  ) {
    super((err) => gw.emit('error', err));
    this.jid = gw.jid(localName);
    this.#subject = options.subject ?? '';
    this.maxUsers = options.maxUsers ?? 1000;
  }

  /** XMPP users in the room. */
  get users(): RoomUser[] {
    return [...this.#users.values()];
  }

  /** Nicks of the legacy participants. */
  get participants(): string[] {
    return [...this.#participants.keys()];
  }

  /** Shows a legacy participant as an occupant to every joined user. */
  addParticipant(nick: string, presence: { show?: string; status?: string } = {}): void {
    this.#participants.set(nick, presence);
    for (const u of this.#users.values()) this.#occupantPresence(nick, u.jid, presence);
  }

  /** Removes a legacy participant (unavailable presence to every joined user). */
  removeParticipant(nick: string): void {
    if (!this.#participants.delete(nick)) return;
    for (const u of this.#users.values()) this.#occupantPresence(nick, u.jid, { type: 'unavailable' });
  }

  /** Sends a groupchat message from `nick` (a legacy participant) to every joined user; returns its id. */
  say(nick: string, body: string, opts: { id?: string; children?: Element[] } = {}): string {
    const id = opts.id ?? `r${Date.now().toString(36)}${Math.random().toString(36).slice(2, 8)}`;
    for (const u of this.#users.values())
      this.gw.sendMessage({
        from: this.gw.jid(this.localName, nick),
        to: u.jid,
        type: 'groupchat',
        body,
        id,
        children: opts.children,
      });
    return id;
  }

  /** Changes the subject (sent to every joined user). */
  setSubject(subject: string, byNick?: string): void {
    this.#subject = subject;
    for (const u of this.#users.values()) this.#sendSubject(u.jid, byNick);
  }

  /** Makes an XMPP user leave (e.g. the legacy room closed): they get unavailable presence. */
  kick(nick: string, reason?: string): void {
    const u = this.#users.get(nick);
    if (!u) return;
    this.#users.delete(nick);
    this.gw.send(
      xml(
        'presence',
        { from: this.gw.jid(this.localName, nick).toString(), to: u.jid.toString(), type: 'unavailable' },
        xml(
          'x',
          { xmlns: MUC_USER },
          xml(
            'item',
            { affiliation: 'none', role: 'none' },
            reason !== undefined && xml('reason', null, reason),
          ),
          xml('status', { code: '110' }),
          xml('status', { code: '307' }),
        ),
      ),
    );
    for (const other of this.#users.values()) this.#userPresence(u, other.jid, 'unavailable');
    this.emit('leave', u);
  }

  /** Closes the room: every joined user leaves. */
  close(): void {
    for (const nick of [...this.#users.keys()]) this.kick(nick, 'The room was closed');
  }

  #sendSubject(to: Jid, byNick?: string): void {
    // XEP-0045 §7.2.15: the subject (possibly empty) ends the join sequence
    this.gw.send(
      xml(
        'message',
        {
          from: (byNick ? this.gw.jid(this.localName, byNick) : this.jid).toString(),
          to: to.toString(),
          type: 'groupchat',
          id: `subject-${Date.now().toString(36)}`,
        },
        xml('subject', null, this.#subject),
      ),
    );
  }

  #occupantPresence(nick: string, to: Jid, p: { show?: string; status?: string; type?: string }): void {
    this.gw.send(
      xml(
        'presence',
        { from: this.gw.jid(this.localName, nick).toString(), to: to.toString(), type: p.type },
        p.show !== undefined && xml('show', null, p.show),
        p.status !== undefined && xml('status', null, p.status),
        xml(
          'x',
          { xmlns: MUC_USER },
          xml('item', { affiliation: 'none', role: p.type === 'unavailable' ? 'none' : 'participant' }),
        ),
      ),
    );
  }

  #userPresence(u: RoomUser, to: Jid, type?: string, self = false, extra: Element[] = []): void {
    this.gw.send(
      xml(
        'presence',
        { from: this.gw.jid(this.localName, u.nick).toString(), to: to.toString(), type },
        extra,
        xml(
          'x',
          { xmlns: MUC_USER },
          xml('item', { affiliation: 'none', role: type === 'unavailable' ? 'none' : 'participant' }),
          self && xml('status', { code: '110' }),
        ),
      ),
    );
  }

  #userByJid(jid: Jid): RoomUser | undefined {
    for (const u of this.#users.values()) if (u.jid.equals(jid)) return u;
    return undefined;
  }

  /** @internal */
  onPresence(p: ComponentPresence): void {
    const nick = p.to.resource;
    const current = this.#userByJid(p.from);
    if (p.type === 'unavailable') {
      if (!current) return;
      this.#users.delete(current.nick);
      this.#userPresence(current, current.jid, 'unavailable', true);
      for (const other of this.#users.values()) this.#userPresence(current, other.jid, 'unavailable');
      this.emit('leave', current);
      return;
    }
    if (p.type !== 'available') {
      this.gw.send(
        errorReply(
          p.element,
          new StanzaError('bad-request', { text: 'presence type not supported by this room' }),
        ),
      );
      return;
    }
    const extra = p.element
      .elements()
      .filter((e) => (e.name === 'show' || e.name === 'status') && e.xmlns === p.element.xmlns);
    if (current) {
      if (current.nick !== nick) {
        // nick changes are not offered (XEP-0045 §7.6 allows refusing them)
        this.gw.send(
          errorReply(
            p.element,
            new StanzaError('not-acceptable', { text: 'nick changes are not supported' }),
          ),
        );
        return;
      }
      // a presence update: broadcast it
      for (const other of this.#users.values())
        this.#userPresence(current, other.jid, undefined, other === current, extra);
      return;
    }
    if (!p.element.getChild('x', NS.muc)) {
      // XEP-0045 §7.2.1 says a join carries <x xmlns='…muc'/>; without it this is not a join
      this.gw.send(
        errorReply(
          p.element,
          new StanzaError('not-acceptable', {
            text: 'join with <x xmlns="http://jabber.org/protocol/muc"/>',
          }),
        ),
      );
      return;
    }
    if (nick === '' || this.#users.has(nick) || this.#participants.has(nick)) {
      // XEP-0045 §7.2.9: nick in use
      this.gw.send(errorReply(p.element, new StanzaError(nick === '' ? 'jid-malformed' : 'conflict')));
      return;
    }
    if (this.#users.size >= this.maxUsers) {
      this.gw.send(
        errorReply(p.element, new StanzaError('service-unavailable', { text: 'the room is full' })),
      );
      return;
    }
    const user: RoomUser = { nick, jid: p.from };
    // XEP-0045 §7.2.3: existing occupants first, then the new occupant to everyone, self-presence last
    for (const [n, pres] of this.#participants) this.#occupantPresence(n, user.jid, pres);
    for (const other of this.#users.values()) {
      this.#userPresence(other, user.jid);
      this.#userPresence(user, other.jid, undefined, false, extra);
    }
    this.#users.set(nick, user);
    this.#userPresence(user, user.jid, undefined, true, extra);
    this.#sendSubject(user.jid);
    this.emit('join', user);
  }

  /** @internal */
  onMessage(m: ComponentMessage): void {
    const user = this.#userByJid(m.from);
    if (m.type !== 'groupchat' || m.to.resource !== '') {
      this.gw.send(
        errorReply(
          m.element,
          new StanzaError('feature-not-implemented', { text: 'only groupchat messages to the room' }),
        ),
      );
      return;
    }
    if (!user) {
      // XEP-0045 §7.4: only occupants may send to the room
      this.gw.send(errorReply(m.element, new StanzaError('not-acceptable', { text: 'join the room first' })));
      return;
    }
    const body = m.element.getChildText('body');
    const subject = m.element.getChild('subject');
    if (subject && body === undefined) {
      this.gw.send(
        errorReply(
          m.element,
          new StanzaError('forbidden', { text: 'the subject is set by the legacy room' }),
        ),
      );
      return;
    }
    // reflect to every occupant, the sender included (XEP-0045 §7.4), with the sender's id
    for (const u of this.#users.values()) {
      const copy = xml(
        'message',
        {
          from: this.gw.jid(this.localName, user.nick).toString(),
          to: u.jid.toString(),
          type: 'groupchat',
          id: m.id,
        },
        m.element
          .elements()
          .filter((e) => e.name !== 'error')
          .map((e) => e.clone()),
      );
      this.gw.send(copy);
    }
    this.emit('message', { nick: user.nick, from: user.jid, body, element: m.element });
  }
}

export interface RoomsEvents {
  /** Any room's join (the room's own 'join' event fires too). */
  join: { room: Room; user: RoomUser };
  leave: { room: Room; user: RoomUser };
  message: { room: Room; nick: string; from: Jid; body?: string; element: Element };
}

/** The gateway's rooms, `gw.rooms`. */
export class Rooms extends Emitter<RoomsEvents> {
  readonly #all = new Map<string, Room>();
  #resolver:
    ((name: string, from: Jid) => RoomOptions | undefined | Promise<RoomOptions | undefined>) | undefined;
  /** Most rooms (default 10,000). */
  maxRooms = 10_000;

  constructor(private readonly gw: Component) {
    super((err) => gw.emit('error', err));
    gw.interceptors.presence.push((p) => this.#onPresence(p));
    gw.interceptors.message.push((m) => this.#onMessage(m));
    gw.disco.providers.push({
      features: () => (this.#all.size > 0 || this.#resolver ? [NS.muc] : []),
      items: (node, req) => (node === '' && req.to.toString() === gw.domain ? this.#items() : undefined),
      info: (req, node) => {
        const room = req.to.resource === '' && node === '' ? this.#all.get(req.to.local) : undefined;
        if (!room) return undefined;
        const identity: DiscoIdentity = {
          category: 'conference',
          type: 'text',
          name: room.options.name ?? room.localName,
        };
        return {
          identities: [identity],
          features: [
            NS.muc,
            'muc_public',
            'muc_open',
            'muc_temporary',
            'muc_unmoderated',
            'muc_nonanonymous',
          ],
        };
      },
    });
  }

  #items(): DiscoItem[] {
    return [...this.#all.values()].map((r) => ({ jid: r.jid.toString(), name: r.options.name }));
  }

  /** Adds (or returns) the room `name@domain`. */
  add(name: string, options: RoomOptions = {}): Room {
    const key = this.gw.jid(name).local;
    const existing = this.#all.get(key);
    if (existing) return existing;
    if (this.#all.size >= this.maxRooms) throw new RangeError(`more than ${this.maxRooms} rooms`);
    const room = new Room(this.gw, key, options);
    room.on('join', (user) => this.emit('join', { room, user }));
    room.on('leave', (user) => this.emit('leave', { room, user }));
    room.on('message', (m) => this.emit('message', { room, ...m }));
    this.#all.set(key, room);
    return room;
  }

  get(name: string): Room | undefined {
    return this.#all.get(name);
  }

  list(): Room[] {
    return [...this.#all.values()];
  }

  /** Removes a room; joined users see themselves leave. */
  remove(name: string): boolean {
    const room = this.#all.get(name);
    if (!room) return false;
    room.close();
    this.#all.delete(name);
    return true;
  }

  /**
   * Creates rooms on demand: when a user joins `name@domain` and no such room exists, `resolver`
   * returns its options (the room is created and the join proceeds) or undefined (item-not-found).
   */
  onUnknownRoom(
    resolver: (name: string, from: Jid) => RoomOptions | undefined | Promise<RoomOptions | undefined>,
  ): void {
    this.#resolver = resolver;
  }

  #onPresence(p: ComponentPresence): boolean {
    if (p.to.local === '') return false;
    const room = this.#all.get(p.to.local);
    if (room) {
      if (p.to.resource === '') return false; // presence to the bare room: not a join
      room.onPresence(p);
      return true;
    }
    if (p.to.resource === '' || !this.#resolver || p.type !== 'available' || !p.element.getChild('x', NS.muc))
      return false;
    void this.#resolveAndJoin(p);
    return true;
  }

  async #resolveAndJoin(p: ComponentPresence): Promise<void> {
    let options: RoomOptions | undefined;
    try {
      options = await this.#resolver?.(p.to.local, p.from);
    } catch (err) {
      this.gw.emit('error', err instanceof Error ? err : new Error(String(err)));
    }
    const room = options ? this.add(p.to.local, options) : this.#all.get(p.to.local);
    if (room) room.onPresence(p);
    else this.gw.send(errorReply(p.element, new StanzaError('item-not-found', { text: 'no such room' })));
  }

  #onMessage(m: ComponentMessage): boolean {
    const room = m.to.local === '' ? undefined : this.#all.get(m.to.local);
    if (!room) return false;
    room.onMessage(m);
    return true;
  }
}

export type { DiscoIdentity };
