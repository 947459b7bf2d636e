/** One message kept by a {@link MessageStore}. */
export interface StoredMessage {
  /** The conversation: the peer's bare JID (one-to-one) or the room's bare JID. */
  conversation: string;
  /** The archive the message was read from (a bare JID: the account's own, or a room's). */
  archive?: string;
  /** The archive's UID for the message (XEP-0313 result id, the XEP-0359 stanza-id `by` the archive). */
  archiveId?: string;
  /** XEP-0359 `<origin-id/>` the sending client gave it. */
  originId?: string;
  /** The stanza's `id` attribute. */
  messageId?: string;
  /** When the archive received it (XEP-0203 stamp of the result), ms since the epoch. */
  timestamp: number;
  /** The sender, as in the stanza's `from`. */
  from: string;
  /** `out` when the account sent it. */
  direction: 'in' | 'out';
  body?: string;
  /** The message stanza, serialized. */
  xml: string;
  /** Set by the store: the order messages were added in (orders messages of one timestamp). */
  seq?: number;
}

/** Where a catch-up stopped in an archive: the last archive UID synced and its timestamp. */
export interface SyncPoint {
  id: string;
  timestamp: number;
}

/** A position in a conversation: a stored message, as `list` returned it (its timestamp and `seq`). */
export type MessageCursor = Pick<StoredMessage, 'timestamp' | 'seq'>;

export interface ListOptions {
  /** Messages to return at most (default 50). */
  limit?: number;
  /** The newest `limit` messages older than this one. */
  before?: MessageCursor;
  /** The oldest `limit` messages newer than this one. */
  after?: MessageCursor;
}

/** A reference to a stored message: by archive UID, or by origin id within a conversation. */
export type MessageRef = { archive: string; archiveId: string } | { conversation: string; originId: string };

/**
 * Where the `mam` module keeps messages, keyed by account (bare JID). Messages are deduplicated:
 * the same archive UID in the same archive, or the same origin id in the same conversation, is
 * stored once (a copy found by origin id that has no archive UID yet takes the new one).
 */
export interface MessageStore {
  /** Stores a message; resolves false when it was already stored. */
  add(account: string, message: StoredMessage): Promise<boolean>;
  has(account: string, ref: MessageRef): Promise<boolean>;
  /** A page of a conversation, oldest first (default: the latest 50 messages). */
  list(account: string, conversation: string, options?: ListOptions): Promise<StoredMessage[]>;
  /** The last archive UID a catch-up reached in `archive`. */
  syncPoint(account: string, archive: string): Promise<SyncPoint | undefined>;
  setSyncPoint(account: string, archive: string, point: SyncPoint): Promise<void>;
  /** Forgets the account's messages and sync points. */
  clear(account: string): Promise<void>;
}

/** Orders messages by timestamp, then by the order they were stored in. */
export function compareMessages(a: MessageCursor, b: MessageCursor): number {
  return a.timestamp !== b.timestamp ? a.timestamp - b.timestamp : (a.seq ?? 0) - (b.seq ?? 0);
}

/** Picks the requested page out of a conversation sorted oldest first. */
export function pageOf<T extends MessageCursor>(sorted: readonly T[], options: ListOptions = {}): T[] {
  const limit = Math.max(0, options.limit ?? 50);
  let list = sorted;
  const { before, after } = options;
  if (after) list = list.filter((m) => compareMessages(m, after) > 0);
  if (before) list = list.filter((m) => compareMessages(m, before) < 0);
  if (limit === 0) return [];
  return after && !before ? list.slice(0, limit) : list.slice(Math.max(0, list.length - limit));
}

/** In-memory message store (the default; Node and browsers): survives reconnections, not restarts. */
export function memoryMessageStore(): MessageStore {
  interface Account {
    messages: StoredMessage[];
    byArchive: Map<string, StoredMessage>;
    byOrigin: Map<string, StoredMessage>;
    sync: Map<string, SyncPoint>;
  }
  const accounts = new Map<string, Account>();
  let seq = 0;
  const get = (account: string): Account => {
    let a = accounts.get(account);
    if (!a)
      accounts.set(
        account,
        (a = { messages: [], byArchive: new Map(), byOrigin: new Map(), sync: new Map() }),
      );
    return a;
  };
  const archiveKey = (archive: string, id: string) => `${archive}\n${id}`;
  const originKey = (conversation: string, id: string) => `${conversation}\n${id}`;
  return {
    async add(account, message) {
      const a = get(account);
      const m = { ...message, seq: 0 };
      if (m.archive !== undefined && m.archiveId !== undefined) {
        if (a.byArchive.has(archiveKey(m.archive, m.archiveId))) return false;
      }
      if (m.originId !== undefined) {
        const existing = a.byOrigin.get(originKey(m.conversation, m.originId));
        if (existing) {
          if (existing.archiveId === undefined && m.archive !== undefined && m.archiveId !== undefined) {
            existing.archive = m.archive;
            existing.archiveId = m.archiveId;
            a.byArchive.set(archiveKey(m.archive, m.archiveId), existing);
          }
          return false;
        }
        a.byOrigin.set(originKey(m.conversation, m.originId), m);
      }
      if (m.archive !== undefined && m.archiveId !== undefined)
        a.byArchive.set(archiveKey(m.archive, m.archiveId), m);
      m.seq = ++seq;
      a.messages.push(m);
      return true;
    },
    async has(account, ref) {
      const a = accounts.get(account);
      if (!a) return false;
      return 'archiveId' in ref
        ? a.byArchive.has(archiveKey(ref.archive, ref.archiveId))
        : a.byOrigin.has(originKey(ref.conversation, ref.originId));
    },
    async list(account, conversation, options) {
      const a = accounts.get(account);
      if (!a) return [];
      const sorted = a.messages.filter((m) => m.conversation === conversation).sort(compareMessages);
      return pageOf(sorted, options).map((m) => ({ ...m }));
    },
    async syncPoint(account, archive) {
      const p = accounts.get(account)?.sync.get(archive);
      return p && { ...p };
    },
    async setSyncPoint(account, archive, point) {
      get(account).sync.set(archive, { ...point });
    },
    async clear(account) {
      accounts.delete(account);
    },
  };
}
