/**
 * A token bucket (as ejabberd's shapers and Prosody's mod_limits): `rate` tokens per second up to
 * `burst`. Taking more than is there leaves a debt; the answer is how long the taker should wait
 * (pause reading) until the debt is paid back. Time comes from `now` (injectable for tests).
 */
export class TokenBucket {
  private tokens: number;
  private last: number;

  constructor(
    readonly rate: number,
    readonly burst: number,
    private readonly now: () => number = Date.now,
  ) {
    this.tokens = burst;
    this.last = now();
  }

  private refill(): void {
    const t = this.now();
    const elapsed = t - this.last;
    if (elapsed > 0) {
      this.tokens = Math.min(this.burst, this.tokens + (elapsed * this.rate) / 1000);
      this.last = t;
    }
  }

  /** Takes `n` tokens (possibly into debt); returns the milliseconds to wait before taking more (0: none). */
  take(n: number): number {
    this.refill();
    this.tokens -= n;
    if (this.tokens >= 0) return 0;
    return Math.ceil((-this.tokens * 1000) / this.rate);
  }

  /** Milliseconds until `n` tokens are there (0: they are now). Takes nothing. */
  waitFor(n: number): number {
    this.refill();
    if (this.tokens >= n) return 0;
    return Math.ceil(((n - this.tokens) * 1000) / this.rate);
  }

  /** Tokens owed (0 when the bucket is not in debt). */
  get debt(): number {
    this.refill();
    return this.tokens < 0 ? -this.tokens : 0;
  }

  get available(): number {
    this.refill();
    return Math.max(0, this.tokens);
  }
}
