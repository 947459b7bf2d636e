/**
 * Log-bucketed latency histogram (2 % relative resolution, 1 µs to ~10 min), cheap to record and to
 * merge across worker processes (bucket counts are summed).
 */
const BASE = Math.log(1.02);
export const BUCKETS = 1400;

export class Histogram {
  counts: number[];
  n = 0;
  max = 0;
  constructor(counts?: number[]) {
    this.counts = counts ? counts.slice() : new Array<number>(BUCKETS).fill(0);
    if (counts) for (const c of counts) this.n += c;
  }

  /** Records a latency in microseconds. */
  record(us: number): void {
    const b = us <= 1 ? 0 : Math.min(BUCKETS - 1, Math.floor(Math.log(us) / BASE));
    this.counts[b]!++;
    this.n++;
    if (us > this.max) this.max = us;
  }

  merge(other: { counts: number[]; max?: number }): void {
    for (let i = 0; i < BUCKETS; i++) {
      const c = other.counts[i] ?? 0;
      this.counts[i]! += c;
      this.n += c;
    }
    if ((other.max ?? 0) > this.max) this.max = other.max ?? 0;
  }

  /** Percentile in milliseconds (bucket midpoint), or NaN when empty. */
  percentileMs(p: number): number {
    if (this.n === 0) return NaN;
    const target = Math.ceil((p / 100) * this.n);
    let acc = 0;
    for (let i = 0; i < BUCKETS; i++) {
      acc += this.counts[i]!;
      if (acc >= target) return Math.exp((i + 0.5) * BASE) / 1000;
    }
    return this.max / 1000;
  }

  toJSON(): { counts: number[]; max: number } {
    return { counts: this.counts, max: this.max };
  }
}
