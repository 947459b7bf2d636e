// A message store in the browser's IndexedDB (no Node built-ins: part of the browser entry point).
import {
  compareMessages,
  type MessageCursor,
  type MessageStore,
  type StoredMessage,
  type SyncPoint,
} from './message-store.js';

interface Record extends StoredMessage {
  account: string;
}

const MESSAGES = 'messages';
const SYNC = 'sync';

function done<T>(req: IDBRequest<T>): Promise<T> {
  return new Promise((resolve, reject) => {
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error ?? new Error('IndexedDB request failed'));
  });
}

function committed(tx: IDBTransaction): Promise<void> {
  return new Promise((resolve, reject) => {
    tx.oncomplete = () => resolve();
    tx.onerror = () => reject(tx.error ?? new Error('IndexedDB transaction failed'));
    tx.onabort = () => reject(tx.error ?? new Error('IndexedDB transaction aborted'));
  });
}

function strip(r: Record): StoredMessage {
  const { account: _a, ...m } = r;
  void _a;
  return m;
}

/**
 * Persistent message store in IndexedDB (browsers), keyed by account. `name` is the database's
 * name; `indexedDB` defaults to the global one.
 */
export function indexedDbMessageStore(options: { name?: string; indexedDB?: IDBFactory } = {}): MessageStore {
  const name = options.name ?? 'natter-messages';
  let opening: Promise<IDBDatabase> | undefined;
  const open = () =>
    (opening ??= new Promise<IDBDatabase>((resolve, reject) => {
      const factory = options.indexedDB ?? globalThis.indexedDB;
      if (!factory) {
        reject(new Error('indexedDbMessageStore: no IndexedDB in this environment'));
        return;
      }
      const req = factory.open(name, 1);
      req.onupgradeneeded = () => {
        const db = req.result;
        const messages = db.createObjectStore(MESSAGES, { keyPath: 'seq', autoIncrement: true });
        // A compound index skips records where a part is missing: only messages with the id are unique.
        messages.createIndex('archive', ['account', 'archive', 'archiveId'], { unique: true });
        messages.createIndex('origin', ['account', 'conversation', 'originId'], { unique: true });
        messages.createIndex('time', ['account', 'conversation', 'timestamp', 'seq']);
        messages.createIndex('account', 'account');
        db.createObjectStore(SYNC, { keyPath: ['account', 'archive'] });
      };
      req.onsuccess = () => resolve(req.result);
      req.onerror = () => reject(req.error ?? new Error('could not open IndexedDB'));
    }));

  return {
    async add(account, message) {
      const db = await open();
      const tx = db.transaction(MESSAGES, 'readwrite');
      const store = tx.objectStore(MESSAGES);
      const end = committed(tx);
      end.catch(() => undefined); // awaited below; a failed request rejects first
      let added = false;
      const m = message;
      if (m.archive !== undefined && m.archiveId !== undefined) {
        const dup = await done(store.index('archive').getKey([account, m.archive, m.archiveId]));
        if (dup !== undefined) {
          await end;
          return false;
        }
      }
      let dupByOrigin: Record | undefined;
      if (m.originId !== undefined)
        dupByOrigin = (await done(store.index('origin').get([account, m.conversation, m.originId]))) as
          Record | undefined;
      if (dupByOrigin) {
        if (dupByOrigin.archiveId === undefined && m.archive !== undefined && m.archiveId !== undefined) {
          dupByOrigin.archive = m.archive;
          dupByOrigin.archiveId = m.archiveId;
          await done(store.put(dupByOrigin));
        }
      } else {
        const { seq: _s, ...rest } = m;
        void _s;
        const record: Record = { ...rest, account };
        await done(store.add(record));
        added = true;
      }
      await end;
      return added;
    },
    async has(account, ref) {
      const db = await open();
      const index = db.transaction(MESSAGES).objectStore(MESSAGES);
      const key =
        'archiveId' in ref
          ? await done(index.index('archive').getKey([account, ref.archive, ref.archiveId]))
          : await done(index.index('origin').getKey([account, ref.conversation, ref.originId]));
      return key !== undefined;
    },
    async list(account, conversation, options = {}) {
      const db = await open();
      const limit = Math.max(0, options.limit ?? 50);
      if (limit === 0) return [];
      const bound = (c: MessageCursor | undefined, low: boolean) =>
        c
          ? [account, conversation, c.timestamp, c.seq ?? 0]
          : [account, conversation, low ? -Infinity : Infinity];
      const range = IDBKeyRange.bound(
        bound(options.after, true),
        options.before ? bound(options.before, false) : [account, conversation, Infinity],
        options.after !== undefined,
        options.before !== undefined,
      );
      const forward = options.after !== undefined && options.before === undefined;
      const index = db.transaction(MESSAGES).objectStore(MESSAGES).index('time');
      const out: Record[] = [];
      await new Promise<void>((resolve, reject) => {
        const req = index.openCursor(range, forward ? 'next' : 'prev');
        req.onsuccess = () => {
          const cursor = req.result;
          if (!cursor || out.length >= limit) return resolve();
          out.push(cursor.value as Record);
          cursor.continue();
        };
        req.onerror = () => reject(req.error ?? new Error('IndexedDB cursor failed'));
      });
      return out.map(strip).sort(compareMessages);
    },
    async syncPoint(account, archive) {
      const db = await open();
      const row = (await done(db.transaction(SYNC).objectStore(SYNC).get([account, archive]))) as
        (SyncPoint & { account: string; archive: string }) | undefined;
      return row && { id: row.id, timestamp: row.timestamp };
    },
    async setSyncPoint(account, archive, point) {
      const db = await open();
      const tx = db.transaction(SYNC, 'readwrite');
      tx.objectStore(SYNC).put({ account, archive, id: point.id, timestamp: point.timestamp });
      await committed(tx);
    },
    async clear(account) {
      const db = await open();
      const tx = db.transaction([MESSAGES, SYNC], 'readwrite');
      const messages = tx.objectStore(MESSAGES);
      const keys = await done(messages.index('account').getAllKeys(account));
      for (const k of keys) messages.delete(k);
      const sync = tx.objectStore(SYNC);
      sync.delete(IDBKeyRange.bound([account], [account, []]));
      await committed(tx);
    },
  };
}
