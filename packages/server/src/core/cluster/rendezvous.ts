/**
 * Rendezvous (highest random weight) hashing: every node scores a key, the highest score owns it.
 * Nodes with the same member list agree without talking, and when a node leaves only its keys move
 * (each to its own runner-up); a node that joins takes about 1/N of the keys from the others.
 * Used to place MUC rooms (docs/decisions/0009).
 */
export function rendezvousOwner(nodes: Iterable<string>, key: string): string | undefined {
  let best: string | undefined;
  let bestScore = -1;
  const keyHash = fnv1a(key, 0x811c9dc5);
  for (const node of nodes) {
    const score = mix(fnv1a(node, keyHash));
    // Ties (2^-32) go to the smaller name, so that every node decides alike.
    if (score > bestScore || (score === bestScore && best !== undefined && node < best)) {
      best = node;
      bestScore = score;
    }
  }
  return best;
}

/** FNV-1a over UTF-16 code units, from a given state. */
function fnv1a(s: string, state: number): number {
  let h = state;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/** MurmurHash3's finaliser: FNV alone spreads keys that differ in their last characters poorly. */
function mix(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}
