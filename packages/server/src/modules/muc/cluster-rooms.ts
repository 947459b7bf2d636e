import { parseElement } from '@natter/xml';
import { parseJid } from '@natter/jid';
import type { ClusterView, RouteEvent } from '../../core/module-api.js';
import type { Affiliation, Role } from './affiliations.js';
import { nickKey } from './nick.js';
import { Room, type Occupant } from './room.js';
import type { RoomConfig } from './room-config.js';
import type { MucService } from './service.js';

/**
 * Rooms spread over the nodes of a cluster (docs/decisions/0009, "Rooms"): each room runs on the
 * node that owns its bare JID by rendezvous hashing over the live nodes (`ctx.cluster.ownerOf`),
 * and the router sends what is addressed to a room there. Nodes load rooms when first addressed:
 * - a node that gets a stanza for a room it does not hold asks the other nodes for it (one may
 *   still hold it from before a membership change) and otherwise loads it from storage (a
 *   persistent room) or knows it does not exist; the room's stanzas wait meanwhile, in order;
 * - after a membership change each node hands the rooms it no longer owns to their new owner,
 *   with their occupants, history and subject, so a node joining moves rooms without anyone
 *   leaving them;
 * - a node that dies takes its rooms' occupants with it (lost-rooms.ts tells them, 332); a
 *   persistent room is loaded again by its next owner.
 */

/** A room as it travels to another node. */
interface RoomState {
  jid: string;
  createdAt: number;
  config: RoomConfig;
  affiliations: { jid: string; affiliation: Affiliation; reason?: string }[];
  occupants: {
    nick: string;
    jid: string;
    real: string;
    sessions: string[];
    role: Role;
    occupantId: string;
    presence: string[];
  }[];
  history: { stanza: string; at: number }[];
  subject: string;
  subjectFrom: string;
  locked: boolean;
  stored: boolean;
  vcard: string | null;
  avatarHash: string;
}

/** What one node lists: its public rooms, and every room it holds (stored ones are listed as held). */
interface Listed {
  show: { jid: string; name: string }[];
  held: string[];
}

type Answer = { state: RoomState } | { mine: true } | { gone: true } | null;

/** Stanzas waiting for their rooms to be fetched, all rooms of a service together. */
const MAX_WAITING = 10_000;
const ASK_TIMEOUT_MS = 3000;
/** Another node still says a room is its own: it has not seen the membership change yet. */
const RETRIES = 8;
const RETRY_MS = 100;
/** Room names known not to exist (until the membership changes): bounded, cleared when full. */
const MAX_ABSENT = 50_000;
/** A room handed on by a node that does not own it either, at most this many times. */
const MAX_HOPS = 3;

export class ClusterRooms {
  private readonly waiting = new Map<string, RouteEvent[]>();
  private waitingCount = 0;
  /** Rooms nobody holds and storage does not have: this node owns their names until a change. */
  private readonly absent = new Set<string>();
  /** Rooms being handed to another node, until the message left. */
  private readonly leaving = new Map<string, Promise<void>>();

  constructor(
    private readonly svc: MucService,
    private readonly cluster: ClusterView,
    private readonly loadStored: (jid: string) => Promise<Room | undefined>,
  ) {
    cluster.answer('room', (data) => this.asked(data as { r: string }));
    cluster.answer('listed', () => Promise.resolve(this.listedHere()));
    cluster.on('room', (data, from) => this.received(data as { state: RoomState; hops: number }, from));
    cluster.onMembership(() => this.rebalance());
  }

  private key(name: string): string {
    return `${name}@${this.svc.domain}`;
  }

  private get self(): string {
    return this.cluster.nodeId;
  }

  /**
   * A stanza for a room this node does not hold: true when it waits for the room to be fetched
   * (it is handled, in order, once the room is here or known not to exist).
   */
  hold(ev: RouteEvent): boolean {
    const name = ev.to.local;
    if (this.absent.has(name)) return false;
    if (this.waitingCount >= MAX_WAITING) {
      this.svc.bounce(ev, 'resource-constraint', 'too many stanzas wait for their rooms');
      return true;
    }
    this.waitingCount++;
    const list = this.waiting.get(name);
    if (list) {
      list.push(ev);
      return true;
    }
    this.waiting.set(name, [ev]);
    this.fetch(name).then(
      (found) => this.drain(name, found),
      (err: unknown) => {
        this.svc.ctx.log.error({ err, room: this.key(name) }, 'MUC: could not fetch a room');
        this.drain(name, false);
      },
    );
    return true;
  }

  /** Brings a room here: from the node holding it, else from storage; false when that failed. */
  private async fetch(name: string): Promise<boolean> {
    for (let attempt = 0; ; attempt++) {
      if (this.svc.rooms.has(name)) return true;
      const others = this.cluster.members().filter((n) => n !== this.self);
      // undefined: a node without an answer (it left, or did not answer in time).
      const answers = (
        (await Promise.all(others.map((n) => this.cluster.ask(n, 'room', { r: name }, ASK_TIMEOUT_MS)))) as (
          Answer | undefined
        )[]
      ).filter((a) => a !== undefined && a !== null);
      // Handed over meanwhile (a membership change): already installed.
      if (this.svc.rooms.has(name)) return true;
      const given = answers.find((a) => 'state' in a);
      if (given) {
        this.install(restoreRoom(given.state));
        return true;
      }
      if (answers.length > 0) {
        // Another node still runs it (it has not seen the change) or handed it to a third node.
        if (attempt >= RETRIES) return false;
        await new Promise((r) => setTimeout(r, RETRY_MS * (attempt + 1)));
        continue;
      }
      const stored = await this.loadStored(this.key(name));
      if (this.svc.rooms.has(name)) return true;
      if (stored) this.install(stored);
      else {
        if (this.absent.size >= MAX_ABSENT) this.absent.clear();
        this.absent.add(name);
      }
      return true;
    }
  }

  /** Handles what waited for a room, in order (or refuses it when the room could not be fetched). */
  private drain(name: string, found: boolean): void {
    const list = this.waiting.get(name) ?? [];
    this.waiting.delete(name);
    this.waitingCount -= list.length;
    const ready = found && (this.svc.rooms.has(name) || this.absent.has(name));
    for (const ev of list) {
      if (!ready) {
        this.svc.bounce(ev, 'recipient-unavailable', 'the room is moving between cluster nodes; try again');
        continue;
      }
      try {
        this.svc.handle(ev);
      } catch (err) {
        this.svc.ctx.log.error({ err }, 'MUC: a stanza that waited for its room failed');
      }
    }
    // The membership changed while the room was fetched: it goes on to the node that owns it now.
    const room = this.svc.rooms.get(name);
    const owner = this.cluster.ownerOf(this.key(name));
    if (room && owner !== this.self && !this.leaving.has(name)) this.sendTo(owner, room, 0);
  }

  /** Another node asks for a room (it owns it now, or thinks so). */
  private async asked(data: { r: string }): Promise<Answer> {
    const name = data.r;
    const leaving = this.leaving.get(name);
    if (leaving) {
      // Sent before this answer, on the same ordered channel when sent to the asker.
      await leaving;
      return { gone: true };
    }
    const room = this.svc.rooms.get(name);
    if (!room) return null;
    if (this.cluster.ownerOf(this.key(name)) === this.self) return { mine: true };
    return { state: await this.handOff(room) };
  }

  /**
   * §6.3 for the whole cluster: the public rooms every node holds, and the stored public rooms no
   * node has loaded (a stored room held somewhere is listed as that node sees it: locked or hidden
   * ones are left out).
   */
  async publicRooms(
    stored: Promise<{ jid: string; name: string }[]>,
  ): Promise<{ jid: string; name: string }[]> {
    const others = this.cluster.members().filter((n) => n !== this.self);
    const lists = [
      this.listedHere(),
      ...((await Promise.all(
        others.map((n) => this.cluster.ask(n, 'listed', null, ASK_TIMEOUT_MS)),
      )) as (Listed | null)[]),
    ];
    const out = new Map<string, string>();
    const held = new Set<string>();
    for (const l of lists) {
      if (!l) continue;
      for (const j of l.held) held.add(j);
      for (const r of l.show) out.set(r.jid, r.name);
    }
    for (const r of await stored) if (!held.has(r.jid) && !out.has(r.jid)) out.set(r.jid, r.name);
    return [...out].map(([jid, name]) => ({ jid, name }));
  }

  private listedHere(): Listed {
    const show: { jid: string; name: string }[] = [];
    const held: string[] = [];
    for (const r of this.svc.rooms.values()) {
      const jid = r.jid.toString();
      held.push(jid);
      if (r.config.public && !r.locked) show.push({ jid, name: r.config.name || r.name });
    }
    return { show, held };
  }

  /** After a membership change: the rooms another node owns now go to it. */
  private rebalance(): void {
    this.absent.clear();
    for (const room of [...this.svc.rooms.values()]) {
      const owner = this.cluster.ownerOf(this.key(room.name));
      if (owner === this.self || this.leaving.has(room.name)) continue;
      this.sendTo(owner, room, 0);
    }
  }

  private sendTo(node: string, room: Room, hops: number): void {
    const name = room.name;
    const sent = this.handOff(room).then(
      (state) => this.cluster.send(node, 'room', { state, hops }),
      (err: unknown) => this.svc.ctx.log.error({ err, room: this.key(name) }, 'MUC: a room hand-over failed'),
    );
    const done = sent.finally(() => {
      if (this.leaving.get(name) === done) this.leaving.delete(name);
    });
    this.leaving.set(name, done);
  }

  /** Takes a room out of this node: nothing here changes it any more; its writes are stored first. */
  private async handOff(room: Room): Promise<RoomState> {
    this.svc.detach(room);
    this.absent.delete(room.name);
    await this.svc.settled();
    this.svc.ctx.log.info({ room: room.jid.toString() }, 'MUC: room handed to the node that owns it now');
    return roomState(room);
  }

  private received(data: { state: RoomState; hops: number }, from: string): void {
    const room = restoreRoom(data.state);
    const owner = this.cluster.ownerOf(this.key(room.name));
    if (owner !== this.self && data.hops < MAX_HOPS) {
      this.sendTo(owner, room, data.hops + 1);
      return;
    }
    const existing = this.svc.rooms.get(room.name);
    if (existing) {
      // Loaded here meanwhile (from storage, the holder having been unreachable): the copy with
      // occupants wins.
      this.svc.ctx.log.warn(
        { room: room.jid.toString(), peer: from },
        'MUC: a room handed over was already loaded here',
      );
      if (existing.occupants.size >= room.occupants.size) return;
      this.svc.detach(existing);
    }
    this.install(room);
  }

  /** Puts a room in this node's service; occupants whose sessions ended meanwhile leave it. */
  private install(room: Room): void {
    this.svc.attach(room);
    this.absent.delete(room.name);
    const hosts = this.svc.ctx.router.hosts;
    const ended: string[] = [];
    for (const o of room.occupants.values())
      for (const s of o.sessions)
        if (hosts.has(s.domain) && this.svc.ctx.sessions.get(s) === undefined) ended.push(s.toString());
    for (const full of ended) this.svc.sessionGone(parseJid(full));
  }
}

export function roomState(room: Room): RoomState {
  return {
    jid: room.jid.toString(),
    createdAt: room.createdAt,
    config: room.config,
    affiliations: room.affiliations.entries() as RoomState['affiliations'],
    occupants: [...room.occupants.values()].map((o) => ({
      nick: o.nick,
      jid: o.jid.toString(),
      real: o.real.toString(),
      sessions: o.sessions.map((s) => s.toString()),
      role: o.role,
      occupantId: o.occupantId,
      presence: o.presence.map((p) => p.toString()),
    })),
    history: room.history.all().map((h) => ({ stanza: h.stanza.toString(), at: h.at })),
    subject: room.subject,
    subjectFrom: room.subjectFrom,
    locked: room.locked,
    stored: room.stored,
    vcard: room.vcard?.toString() ?? null,
    avatarHash: room.avatarHash,
  };
}

export function restoreRoom(s: RoomState): Room {
  const room = new Room(parseJid(s.jid), s.config, s.createdAt);
  for (const a of s.affiliations) room.affiliations.set(a.jid, a.affiliation, a.reason);
  for (const w of s.occupants) {
    const o: Occupant = {
      nick: w.nick,
      jid: parseJid(w.jid),
      real: parseJid(w.real),
      sessions: w.sessions.map((j) => parseJid(j)),
      role: w.role,
      occupantId: w.occupantId,
      presence: w.presence.map((p) => parseElement(p)),
    };
    room.occupants.set(nickKey(o.nick), o);
    for (const sess of o.sessions) room.byReal.set(sess.toString(), o);
  }
  for (const h of s.history) room.history.add(parseElement(h.stanza), h.at);
  room.subject = s.subject;
  room.subjectFrom = s.subjectFrom;
  room.locked = s.locked;
  room.stored = s.stored;
  room.vcard = s.vcard === null ? undefined : parseElement(s.vcard);
  room.avatarHash = s.avatarHash;
  return room;
}
