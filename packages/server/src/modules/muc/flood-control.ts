import { z } from 'zod';
import type { Jid } from '@natter/jid';
import type { Occupant, Room } from './room.js';

/**
 * MUC flood control: a message to a room costs the server one delivery per recipient session, so
 * an occupant held to a modest inbound stanza rate by the connection limits still makes the server
 * send that rate × occupants. Fan-out is charged to whoever causes it, in deliveries, from two
 * token buckets: one per sender (its bare JID, across the service's rooms) and one per room (all
 * senders together). A sender refused by its own bucket gets a strike; enough strikes in a window
 * and it loses its voice (the caller makes it a visitor).
 */

const bucketOptions = (deliveriesPerSecond: number, burstDeliveries: number) =>
  z
    .object({
      /** Deliveries (one stanza to one occupant session) refilled per second. */
      deliveriesPerSecond: z.number().positive().default(deliveriesPerSecond),
      /** Deliveries that may be spent at once. */
      burstDeliveries: z.number().positive().default(burstDeliveries),
    })
    .strict()
    .prefault({});

/** Options of `modules.muc.floodControl`. */
export const floodControlOptions = z
  .object({
    enabled: z.boolean().default(true),
    /** One sender (bare JID), all rooms of the service. 400/s: 2 messages a second in a full room of 200. */
    perSender: bucketOptions(400, 4000),
    /** One room, all senders. 2000/s: 10 messages a second in a full room of 200. */
    perRoom: bucketOptions(2000, 10_000),
    /**
     * Entering and leaving rooms, one user (bare JID), all rooms: an entry costs a presence to and
     * from every session inside, a departure one to each. 500/s, burst 10000: joining 20 bookmarked
     * rooms of 100 at login passes; entering and leaving a full room of 200 in a loop is held to
     * under one round a second.
     */
    perSenderEntries: bucketOptions(500, 10_000),
    /** Messages refused by the sender's own bucket within the window that revoke its voice; 0: never. */
    revokeVoiceAfter: z.number().int().min(0).default(30),
    revokeVoiceWindowSeconds: z.number().positive().default(60),
  })
  .strict()
  .prefault({});

export type FloodControlOptions = z.infer<typeof floodControlOptions>;

/** What a charge decided: allowed, refused by the sender's or by the room's bucket, or a flood. */
export type FloodVerdict = 'ok' | 'sender' | 'room' | 'revoke';

class Bucket {
  private tokens: number;
  private last: number;

  constructor(
    private readonly rate: number,
    private readonly burst: number,
    now: number,
  ) {
    this.tokens = burst;
    this.last = now;
  }

  /** Refills to `now`; true when `cost` may be spent (a cost above the burst waits for a full bucket). */
  can(cost: number, now: number): boolean {
    this.tokens = Math.min(this.burst, this.tokens + ((now - this.last) / 1000) * this.rate);
    this.last = now;
    return this.tokens >= Math.min(cost, this.burst);
  }

  /** May go below zero (a message larger than the burst): the debt is paid back at the rate. */
  spend(cost: number): void {
    this.tokens -= cost;
  }

  full(now: number): boolean {
    return this.tokens + ((now - this.last) / 1000) * this.rate >= this.burst;
  }
}

const SWEEP_MS = 30_000;

export class FloodControl {
  private readonly senders = new Map<string, Bucket>();
  private readonly entries = new Map<string, Bucket>();
  private readonly rooms = new WeakMap<Room, Bucket>();
  private readonly strikes = new WeakMap<Occupant, { count: number; since: number }>();
  private lastSweep: number;

  constructor(
    private readonly opts: FloodControlOptions,
    private readonly now: () => number = () => performance.now(),
  ) {
    this.lastSweep = now();
  }

  /**
   * Charges `cost` deliveries caused by occupant `o` in `room`: spent from both buckets when both
   * allow it, nothing spent otherwise. `strike`: a refusal by the sender's bucket counts towards
   * voice revocation (messages; a presence update is only held back).
   */
  charge(room: Room, o: Occupant, cost: number, strike = true): FloodVerdict {
    if (!this.opts.enabled) return 'ok';
    const now = this.now();
    const [sender, roomBucket] = this.buckets(room, o.real, now);
    if (!sender.can(cost, now)) return strike ? this.strike(o, now) : 'sender';
    if (!roomBucket.can(cost, now)) return 'room';
    sender.spend(cost);
    roomBucket.spend(cost);
    return 'ok';
  }

  /**
   * Entering a room costs `cost` deliveries (the newcomer's presence to everyone, everyone's to
   * the newcomer): charged to the user's entry bucket, refused with nothing spent when it is
   * empty. Never a strike: entering is not speaking.
   */
  admitEntry(real: Jid, cost: number): boolean {
    if (!this.opts.enabled) return true;
    const now = this.now();
    const b = this.entryBucket(real, now);
    if (!b.can(cost, now)) return false;
    b.spend(cost);
    return true;
  }

  /**
   * Leaving is never refused, but its broadcast is charged all the same (the bucket may go into
   * debt), so entering and leaving in a loop runs out of budget for the next entry.
   */
  debitDeparture(real: Jid, cost: number): void {
    if (!this.opts.enabled) return;
    const now = this.now();
    const b = this.entryBucket(real, now);
    b.can(0, now); // refill up to now first
    b.spend(cost);
  }

  private entryBucket(real: Jid, now: number): Bucket {
    if (now - this.lastSweep > SWEEP_MS) this.sweep(now);
    const key = real.toBareString();
    let b = this.entries.get(key);
    if (!b) {
      const { deliveriesPerSecond, burstDeliveries } = this.opts.perSenderEntries;
      this.entries.set(key, (b = new Bucket(deliveriesPerSecond, burstDeliveries, now)));
    }
    return b;
  }

  private buckets(room: Room, real: Jid, now: number): [Bucket, Bucket] {
    if (now - this.lastSweep > SWEEP_MS) this.sweep(now);
    const key = real.toBareString();
    let sender = this.senders.get(key);
    if (!sender) {
      const { deliveriesPerSecond, burstDeliveries } = this.opts.perSender;
      this.senders.set(key, (sender = new Bucket(deliveriesPerSecond, burstDeliveries, now)));
    }
    let roomBucket = this.rooms.get(room);
    if (!roomBucket) {
      const { deliveriesPerSecond, burstDeliveries } = this.opts.perRoom;
      this.rooms.set(room, (roomBucket = new Bucket(deliveriesPerSecond, burstDeliveries, now)));
    }
    return [sender, roomBucket];
  }

  private strike(o: Occupant, now: number): FloodVerdict {
    const max = this.opts.revokeVoiceAfter;
    if (max === 0) return 'sender';
    let s = this.strikes.get(o);
    if (!s || now - s.since > this.opts.revokeVoiceWindowSeconds * 1000) {
      s = { count: 0, since: now };
      this.strikes.set(o, s);
    }
    if (++s.count < max) return 'sender';
    this.strikes.delete(o);
    return 'revoke';
  }

  /** Forgets senders whose bucket is full again: they are as if never seen. */
  private sweep(now: number): void {
    this.lastSweep = now;
    for (const [k, b] of this.senders) if (b.full(now)) this.senders.delete(k);
    for (const [k, b] of this.entries) if (b.full(now)) this.entries.delete(k);
  }
}
