import { parseElement } from '@natter/xml';
import { parseJid, type Jid } from '@natter/jid';
import type { ClusterView, RouteEvent } from '../../core/module-api.js';
import type { Affiliation, Role } from './affiliations.js';
import { nickKey } from './nick.js';
import { serviceGonePresence } from './occupants.js';
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
    /** The node holding each session, as the sending node knew it ('' when it did not). */
    nodes: string[];
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

/**
 * Another node's answer to "do you hold this room?": it runs it (its view of the membership still
 * makes it the owner), it handed it on (to the asker, if the asker owns it in its view: then the
 * room arrived before this answer, on the same ordered channel), or it does not hold it.
 */
type Answer = { mine: true } | { gone: true } | { none: true };

/** Stanzas waiting for their rooms to be fetched, all rooms of a service together. */
const MAX_WAITING = 10_000;
/** Rooms being fetched at once (each costs an ask per node and, at worst, a read of storage). */
const MAX_FETCHING = 1000;
const ASK_TIMEOUT_MS = 3000;
/** Another node still runs a room, or did not answer: asked again, a few times, backing off. */
const RETRIES = 8;
const RETRY_MS = 100;
/** Room names known not to exist (until the membership changes): bounded, cleared when full. */
const MAX_ABSENT = 50_000;
/** A room handed on by a node that does not own it either, at most this many times. */
const MAX_HOPS = 3;
/** How long the service's room list (§6.3), gathered from every node and storage, is reused. */
const LIST_CACHE_MS = 5000;

export class ClusterRooms {
  private readonly waiting = new Map<string, RouteEvent[]>();
  private waitingCount = 0;
  /** Rooms nobody holds and storage does not have: this node owns their names until a change. */
  private readonly absent = new Set<string>();
  /** Rooms being handed to another node, until the message left. */
  private readonly leaving = new Map<string, Promise<void>>();
  /** The rooms of `leaving` not sent yet (waiting for their handlers and storage writes). */
  private readonly unsent = new Set<Room>();
  private listed: { at: number; rooms: Promise<{ jid: string; name: string }[]> } | undefined;

  constructor(
    private readonly svc: MucService,
    private readonly cluster: ClusterView,
    private readonly loadStored: (jid: string) => Promise<Room | undefined>,
  ) {
    cluster.answer('room', (data) => this.asked(data as { r: string }));
    cluster.answer('listed', () => Promise.resolve(this.listedHere()));
    cluster.on('room', (data, from) => this.received(data as { state: RoomState; hops: number }, from));
    cluster.onMembership(() => this.rebalance());
    // Stopping gracefully: every room goes to the node that owns it without this one.
    cluster.onDrain(async () => {
      this.rebalance();
      await Promise.all([...this.leaving.values()]);
    });
  }

  private key(name: string): string {
    return `${name}@${this.svc.domain}`;
  }

  private get self(): string {
    return this.cluster.nodeId;
  }

  /**
   * The server stops and the hand-over ran out of time: the rooms not sent yet stay here, to be
   * announced gone (332) with the rest.
   */
  abandon(): Room[] {
    const rooms = [...this.unsent];
    this.unsent.clear();
    return rooms;
  }

  /** Whether stanzas for this room wait for it to be fetched (later ones queue behind them). */
  fetching(name: string): boolean {
    return this.waiting.has(name);
  }

  /**
   * A stanza for a room this node does not hold (or is fetching): true when it waits for the room
   * (it is handled, in order, once the room is here or known not to exist).
   */
  hold(ev: RouteEvent): boolean {
    const name = ev.to.local;
    const list = this.waiting.get(name);
    if (!list && this.absent.has(name)) return false;
    if (this.waitingCount >= MAX_WAITING || (!list && this.waiting.size >= MAX_FETCHING)) {
      this.svc.bounce(ev, 'resource-constraint', 'too many stanzas wait for their rooms');
      return true;
    }
    this.waitingCount++;
    if (list) {
      list.push(ev);
      return true;
    }
    this.waiting.set(name, [ev]);
    this.fetch(name).then(
      () => this.drain(name),
      (err: unknown) => {
        this.svc.ctx.log.error({ err, room: this.key(name) }, 'MUC: could not fetch a room');
        this.drain(name);
      },
    );
    return true;
  }

  /**
   * Brings a room here: handed over by the node holding it, else from storage, else known not to
   * exist. Gives up (the waiting stanzas go elsewhere or are refused) when the room stays on
   * another node or this node stops owning it.
   */
  private async fetch(name: string): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      if (this.svc.rooms.has(name)) return;
      const others = this.cluster.members().filter((n) => n !== this.self);
      const answers = await Promise.all(
        others.map(async (node) => ({
          node,
          answer: (await this.cluster.ask(node, 'room', { r: name }, ASK_TIMEOUT_MS)) as Answer | undefined,
        })),
      );
      // Handed here meanwhile (after a membership change, or as the answer said).
      if (this.svc.rooms.has(name)) return;
      // A node still runs it, handed it to a third node, or is alive and did not answer (it may be
      // handing it over): storage would be stale, so ask again.
      const unsure = answers.some(({ node, answer }) =>
        answer === undefined ? this.cluster.members().includes(node) : !('none' in answer),
      );
      if (unsure) {
        if (attempt >= RETRIES) return;
        await new Promise((r) => setTimeout(r, RETRY_MS * (attempt + 1)));
        continue;
      }
      if (this.cluster.ownerOf(this.key(name)) !== this.self) return;
      const stored = await this.loadStored(this.key(name));
      if (this.svc.rooms.has(name)) return;
      if (stored) this.install(stored, []);
      else if (this.cluster.ownerOf(this.key(name)) === this.self) {
        if (this.absent.size >= MAX_ABSENT) this.absent.clear();
        this.absent.add(name);
      }
      return;
    }
  }

  /**
   * Handles what waited for a room, in order; what the room's owner (another node now) must handle
   * is passed on to it, and what nobody can handle is refused.
   */
  private drain(name: string): void {
    const list = this.waiting.get(name) ?? [];
    this.waiting.delete(name);
    this.waitingCount -= list.length;
    for (const ev of list) {
      try {
        if (this.svc.rooms.has(name) || this.absent.has(name)) this.svc.handle(ev);
        else if (this.cluster.ownerOf(this.key(name)) !== this.self)
          void Promise.resolve(this.svc.ctx.router.dispatchForwarded(ev)).catch((err: unknown) =>
            this.svc.ctx.log.error({ err }, 'MUC: a stanza for a room that moved could not be passed on'),
          );
        else
          this.svc.bounce(ev, 'recipient-unavailable', 'the room is moving between cluster nodes; try again');
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
    const room = this.svc.rooms.get(name);
    if (!this.leaving.has(name)) {
      if (!room) return { none: true };
      const owner = this.cluster.ownerOf(this.key(name));
      if (owner === this.self) return { mine: true };
      this.sendTo(owner, room, 0);
    }
    // Sent before this answer, on the same ordered channel when sent to the asker.
    await this.leaving.get(name);
    return { gone: true };
  }

  /**
   * §6.3 for the whole cluster: the public rooms every node holds, and the stored public rooms no
   * node has loaded (a stored room held somewhere is listed as that node sees it: locked or hidden
   * ones are left out). Gathered at most every few seconds.
   */
  publicRooms(
    stored: () => Promise<{ jid: string; name: string }[]>,
  ): Promise<{ jid: string; name: string }[]> {
    if (this.listed && Date.now() - this.listed.at < LIST_CACHE_MS) return this.listed.rooms;
    const rooms = this.gather(stored);
    this.listed = { at: Date.now(), rooms };
    rooms.catch(() => (this.listed = undefined));
    return rooms;
  }

  private async gather(
    stored: () => Promise<{ jid: string; name: string }[]>,
  ): Promise<{ jid: string; name: string }[]> {
    const others = this.cluster.members().filter((n) => n !== this.self);
    const lists = [
      this.listedHere(),
      ...((await Promise.all(others.map((n) => this.cluster.ask(n, 'listed', null, ASK_TIMEOUT_MS)))) as (
        Listed | null | undefined
      )[]),
    ];
    const out = new Map<string, string>();
    const held = new Set<string>();
    for (const l of lists) {
      if (!l) continue;
      for (const j of l.held) held.add(j);
      for (const r of l.show) out.set(r.jid, r.name);
    }
    for (const r of await stored()) if (!held.has(r.jid) && !out.has(r.jid)) out.set(r.jid, r.name);
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
    this.listed = undefined;
    for (const room of [...this.svc.rooms.values()]) {
      const owner = this.cluster.ownerOf(this.key(room.name));
      if (owner !== this.self && !this.leaving.has(room.name)) this.sendTo(owner, room, 0);
    }
  }

  /**
   * Hands a room to another node: it leaves this node's service at once (nothing here changes it
   * any more, and its stanzas go to the owner), then travels once its running handlers and storage
   * writes are done, with the node of each occupant's session as this node knows it.
   */
  private sendTo(node: string, room: Room, hops: number): void {
    const name = room.name;
    this.svc.detach(room);
    this.absent.delete(name);
    this.unsent.add(room);
    const done = (async () => {
      await this.svc.settled(room);
      // Given up at shutdown (its occupants were told 332): it goes nowhere.
      if (!this.unsent.delete(room)) return;
      const state = roomState(room, (s) => this.svc.ctx.sessions.get(s)?.node ?? '');
      this.cluster.send(node, 'room', { state, hops });
      this.svc.ctx.log.info(
        { room: room.jid.toString(), peer: node },
        'MUC: room handed to the node that owns it now',
      );
    })()
      .catch((err: unknown) =>
        this.svc.ctx.log.error({ err, room: this.key(name) }, 'MUC: a room hand-over failed'),
      )
      .finally(() => {
        if (this.leaving.get(name) === done) this.leaving.delete(name);
      });
    this.leaving.set(name, done);
  }

  private received(data: { state: RoomState; hops: number }, from: string): void {
    const room = restoreRoom(data.state);
    const owner = this.cluster.ownerOf(this.key(room.name));
    if (owner !== this.self && data.hops < MAX_HOPS) {
      this.sendTo(owner, room, data.hops + 1);
      return;
    }
    if (this.svc.stopping) {
      // Every node stops (or the hops ran out on a stopping node): its occupants hear why (332).
      this.tellGone(room);
      return;
    }
    const existing = this.svc.rooms.get(room.name);
    if (existing) {
      // Two copies (one loaded here while the holder did not answer, or after a partition): the
      // copy with more occupants goes on; the other copy's occupants that are not in it are told
      // they left (332) and join again.
      this.svc.ctx.log.warn(
        { room: room.jid.toString(), peer: from },
        'MUC: a room handed over was already held here',
      );
      if (existing.occupants.size >= room.occupants.size) {
        this.tellGone(room, existing);
        return;
      }
      this.svc.detach(existing);
      this.tellGone(existing, room);
    }
    this.install(room, data.state.occupants);
  }

  /** Each session in `loser` and not in `winner` hears it left the room (110, 332). */
  private tellGone(loser: Room, winner?: Room): void {
    for (const o of loser.occupants.values())
      for (const s of o.sessions) {
        if (winner?.byReal.has(s.toString())) continue;
        this.svc.sendNew(serviceGonePresence(o.jid.toString(), s.toString()), o.jid, s);
      }
  }

  /**
   * Puts a room in this node's service. An occupant session that ended while the room travelled
   * leaves it: one of this node, of a node whose sessions this node knows in full, or of a node
   * gone. A session of a node whose snapshot has not arrived yet stays; the snapshot removes it if
   * it ended.
   */
  private install(room: Room, sent: RoomState['occupants']): void {
    this.svc.attach(room);
    this.absent.delete(room.name);
    const nodeOf = new Map<string, string>();
    for (const o of sent) for (const [i, s] of o.sessions.entries()) nodeOf.set(s, o.nodes[i] ?? '');
    const hosts = this.svc.ctx.router.hosts;
    const members = new Set(this.cluster.members());
    const ended: Jid[] = [];
    for (const o of room.occupants.values())
      for (const s of o.sessions) {
        if (!hosts.has(s.domain) || this.svc.ctx.sessions.get(s) !== undefined) continue;
        const node = nodeOf.get(s.toString()) ?? '';
        if (node === '' || !members.has(node) || this.cluster.knowsSessionsOf(node)) ended.push(s);
      }
    for (const s of ended) this.svc.sessionGone(s);
  }
}

/** A room's state for another node; `nodeOf` names the node of each occupant session ('' unknown). */
export function roomState(room: Room, nodeOf: (session: Jid) => string): RoomState {
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
      nodes: o.sessions.map(nodeOf),
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
