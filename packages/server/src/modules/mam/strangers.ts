/**
 * Per-archive token buckets for messages from strangers (senders outside the owner's roster):
 * `perMinute` messages, refilled continuously, so a flood from non-contacts cannot fill an archive.
 */
export class StrangerLimit {
  private readonly buckets = new Map<string, { tokens: number; at: number }>();

  constructor(private readonly perMinute: number) {}

  /** Takes one message's allowance from `owner`'s bucket; false when it is empty. */
  take(owner: string, now = Date.now()): boolean {
    const b = this.buckets.get(owner) ?? { tokens: this.perMinute, at: now };
    b.tokens = Math.min(this.perMinute, b.tokens + ((now - b.at) * this.perMinute) / 60_000);
    b.at = now;
    this.buckets.set(owner, b);
    if (b.tokens < 1) return false;
    b.tokens -= 1;
    return true;
  }

  /** Forgets buckets that have filled up again (they behave as new ones). */
  sweep(now = Date.now()): void {
    for (const [owner, b] of this.buckets) {
      if (b.tokens + ((now - b.at) * this.perMinute) / 60_000 >= this.perMinute) this.buckets.delete(owner);
    }
  }
}
