// A small bounded cache for parseJid, keyed by the input string: two generations of Maps. Lookups
// check the current generation then the previous one (promoting hits); when the current generation
// is full it becomes the previous one and the oldest generation is dropped whole. This approximates
// LRU without per-hit delete/set churn, and keeps at most 2 × capacity entries.
// Inputs longer than MAX_KEY_LENGTH are not cached, so memory stays bounded.
// Measured (Node 20, this machine, 1e6 parses of ASCII full JIDs cycling over N distinct inputs):
//   N = 600 (fits):       15 ns/parse with the cache vs 241 ns without (≈16× faster on hits);
//   N = 50 000 (all miss): 568 ns vs 378 ns (≈190 ns miss penalty); N = 3 000: 463 vs 454 ns.
// Non-ASCII JIDs cost ≈1.3-2.5 µs uncached, ≈50-100 ns on a hit. Break-even is a hit rate near 50%;
// stanza routing repeats the same few active JIDs, so the cache is kept.

export const MAX_KEY_LENGTH = 256;

export class ParseCache<V> {
  #current = new Map<string, V>();
  #previous = new Map<string, V>();
  readonly #capacity: number;

  constructor(capacity: number) {
    this.#capacity = capacity;
  }

  get(key: string): V | undefined {
    const hit = this.#current.get(key);
    if (hit !== undefined) return hit;
    const old = this.#previous.get(key);
    if (old !== undefined) this.#insert(key, old);
    return old;
  }

  set(key: string, value: V): void {
    if (key.length <= MAX_KEY_LENGTH) this.#insert(key, value);
  }

  #insert(key: string, value: V): void {
    if (this.#current.size >= this.#capacity) {
      this.#previous = this.#current;
      this.#current = new Map();
    }
    this.#current.set(key, value);
  }

  clear(): void {
    this.#current.clear();
    this.#previous.clear();
  }
}
