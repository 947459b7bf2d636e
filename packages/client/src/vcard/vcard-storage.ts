/** A stored vCard: its XML and when it was fetched. */
export interface StoredVCard {
  xml: string;
  fetchedAt: number;
}

/** Where the vcard module caches vCards, keyed by account and contact. Only the module calls these. */
export interface VCardStorage {
  get(account: string, jid: string): Promise<StoredVCard | undefined>;
  set(account: string, jid: string, vcard: StoredVCard): Promise<void>;
  remove(account: string, jid: string): Promise<void>;
}

export function memoryVCardStorage(): VCardStorage {
  const m = new Map<string, StoredVCard>();
  const key = (a: string, j: string) => `${a}\n${j}`;
  return {
    async get(a, j) {
      return m.get(key(a, j));
    },
    async set(a, j, v) {
      m.set(key(a, j), { ...v });
    },
    async remove(a, j) {
      m.delete(key(a, j));
    },
  };
}
