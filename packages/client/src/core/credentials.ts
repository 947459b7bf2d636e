// What a client keeps between connections so that the next login needs no password: its
// installation's user-agent id (XEP-0388 §2.3) and a FAST token (XEP-0484).

/** A FAST token as the server issued it, and how often it has been used (XEP-0484 §3.2 `count`). */
export interface FastToken {
  mechanism: string;
  token: string;
  /** When it expires, ms since the epoch. */
  expiry: number;
  count: number;
}

export interface StoredCredentials {
  /** The user-agent id sent with every SASL2 login: stable for this installation. */
  userAgentId: string;
  token?: FastToken;
  /**
   * A token `forgetCredentials()` could not invalidate on the server yet, with the user-agent id
   * it was issued to: never used to log in, only to invalidate it at the next connection.
   */
  revoke?: { userAgentId: string; token: FastToken };
}

/**
 * Where the credentials of an account live between connections: memory (the default: a
 * reconnect in the same process needs no password), the Web Storage API (browsers), or an
 * application's own secure storage (the iOS Keychain or Android Keystore through React Native,
 * an OS keyring in Node): implement these three methods.
 */
export interface CredentialStore {
  get(account: string): Promise<StoredCredentials | undefined>;
  set(account: string, credentials: StoredCredentials): Promise<void>;
  delete(account: string): Promise<void>;
}

/** A deep copy (no structuredClone: Hermes has none). */
const copy = (c: StoredCredentials): StoredCredentials => JSON.parse(JSON.stringify(c)) as StoredCredentials;

export function memoryCredentials(): CredentialStore {
  const map = new Map<string, StoredCredentials>();
  return {
    get: (a) => Promise.resolve(map.has(a) ? copy(map.get(a)!) : undefined),
    set: (a, c) => {
      map.set(a, copy(c));
      return Promise.resolve();
    },
    delete: (a) => {
      map.delete(a);
      return Promise.resolve();
    },
  };
}

/** The part of the Web Storage API used (`localStorage`, `sessionStorage`). */
export interface WebStorageLike {
  getItem(key: string): string | null;
  setItem(key: string, value: string): void;
  removeItem(key: string): void;
}

/**
 * Credentials in `localStorage` (or any Web Storage), one key per account under `prefix`. The
 * token lets anyone who reads it log in as the user until it expires or the password changes:
 * prefer the platform's protected storage where there is one.
 */
export function webStorageCredentials(
  storage: WebStorageLike = (globalThis as { localStorage?: WebStorageLike }).localStorage!,
  prefix = 'natter.credentials.',
): CredentialStore {
  if (!storage) throw new Error('webStorageCredentials: no Web Storage here (give one)');
  return {
    get(a) {
      const text = storage.getItem(prefix + a);
      if (text === null) return Promise.resolve(undefined);
      try {
        const v = JSON.parse(text) as StoredCredentials;
        return Promise.resolve(typeof v.userAgentId === 'string' ? v : undefined);
      } catch {
        return Promise.resolve(undefined);
      }
    },
    set(a, c) {
      storage.setItem(prefix + a, JSON.stringify(c));
      return Promise.resolve();
    },
    delete(a) {
      storage.removeItem(prefix + a);
      return Promise.resolve();
    },
  };
}
