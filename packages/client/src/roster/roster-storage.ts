/** One roster entry (RFC 6121 §2.1.2). */
export interface RosterItem {
  /** Bare JID of the contact. */
  jid: string;
  name?: string;
  subscription: 'none' | 'to' | 'from' | 'both';
  /** 'subscribe' while our subscription request is pending. */
  ask?: 'subscribe';
  /** Pre-approved subscription (RFC 6121 §3.4). */
  approved?: boolean;
  groups: string[];
}

export interface StoredRoster {
  /** Roster version (RFC 6121 §2.6), when the server supports versioning. */
  version?: string;
  items: RosterItem[];
}

/**
 * Where the roster module keeps the roster between runs, keyed by account (bare JID), so a
 * restart shows the roster at once and then syncs. Only the module calls these methods; apps read
 * the roster through the module's API.
 */
export interface RosterStorage {
  load(account: string): Promise<StoredRoster | undefined>;
  /** Replaces the whole roster (after a full fetch). */
  replace(account: string, roster: StoredRoster): Promise<void>;
  /** Applies one push: the item is added/updated, or removed when `remove` is set. */
  apply(account: string, version: string | undefined, item: RosterItem, remove: boolean): Promise<void>;
  clear(account: string): Promise<void>;
}

/** In-memory roster storage (the default): survives reconnections, not restarts. */
export function memoryRosterStorage(): RosterStorage {
  const rosters = new Map<string, { version?: string; items: Map<string, RosterItem> }>();
  const copy = (i: RosterItem): RosterItem => ({ ...i, groups: [...i.groups] });
  return {
    async load(account) {
      const r = rosters.get(account);
      if (!r) return undefined;
      return { version: r.version, items: [...r.items.values()].map(copy) };
    },
    async replace(account, roster) {
      rosters.set(account, {
        version: roster.version,
        items: new Map(roster.items.map((i) => [i.jid, copy(i)])),
      });
    },
    async apply(account, version, item, remove) {
      let r = rosters.get(account);
      if (!r) rosters.set(account, (r = { items: new Map() }));
      r.version = version;
      if (remove) r.items.delete(item.jid);
      else r.items.set(item.jid, copy(item));
    },
    async clear(account) {
      rosters.delete(account);
    },
  };
}
