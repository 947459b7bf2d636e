/**
 * SCRAM client (RFC 5802, RFC 7677) for SCRAM-SHA-1 and SCRAM-SHA-256, without channel binding.
 *
 * The expensive part, PBKDF2 over the password, depends only on (hash, password, salt, iterations):
 * its results (ClientKey, StoredKey, ServerKey) are cached by that tuple, so a user who logs in again
 * costs three HMACs. Because servers salt per user, the cache is keyed by salt; it can be saved to and
 * loaded from a JSON-lines file so that worker processes of later phases start warm.
 */
import { createHash, createHmac, pbkdf2, randomBytes } from 'node:crypto';
import { appendFileSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';

export type ScramHash = 'sha1' | 'sha256';
export const SCRAM_MECHS: Record<string, ScramHash> = { 'SCRAM-SHA-256': 'sha256', 'SCRAM-SHA-1': 'sha1' };

interface Keys {
  clientKey: Buffer;
  storedKey: Buffer;
  serverKey: Buffer;
}

const cache = new Map<string, Keys>();
const fresh: string[] = [];
export const scramStats = { pbkdf2: 0, cached: 0 };

function cacheKey(hash: ScramHash, password: string, salt: string, iterations: number): string {
  return `${hash}|${iterations}|${salt}|${password}`;
}

async function keysFor(
  hash: ScramHash,
  password: string,
  saltB64: string,
  iterations: number,
): Promise<Keys> {
  const k = cacheKey(hash, password, saltB64, iterations);
  const hit = cache.get(k);
  if (hit) {
    scramStats.cached++;
    return hit;
  }
  scramStats.pbkdf2++;
  const len = hash === 'sha1' ? 20 : 32;
  const salted = await new Promise<Buffer>((resolve, reject) =>
    pbkdf2(password, Buffer.from(saltB64, 'base64'), iterations, len, hash, (err, key) =>
      err ? reject(err) : resolve(key),
    ),
  );
  const clientKey = createHmac(hash, salted).update('Client Key').digest();
  const keys: Keys = {
    clientKey,
    storedKey: createHash(hash).update(clientKey).digest(),
    serverKey: createHmac(hash, salted).update('Server Key').digest(),
  };
  cache.set(k, keys);
  fresh.push(k);
  return keys;
}

/** One SCRAM exchange. */
export class ScramClient {
  private readonly firstBare: string;
  private expectedServerSig: Buffer | null = null;

  constructor(
    private readonly hash: ScramHash,
    user: string,
    private readonly password: string,
    private readonly cnonce: string = randomBytes(18).toString('base64'),
  ) {
    this.firstBare = `n=${user.replace(/=/g, '=3D').replace(/,/g, '=2C')},r=${this.cnonce}`;
  }

  /** Base64 of the client-first-message. */
  first(): string {
    return Buffer.from('n,,' + this.firstBare).toString('base64');
  }

  /** Takes the server-first-message (base64), returns the client-final-message (base64). */
  async final(serverFirstB64: string): Promise<string> {
    const serverFirst = Buffer.from(serverFirstB64, 'base64').toString();
    const f: Record<string, string> = {};
    for (const part of serverFirst.split(',')) f[part[0] ?? ''] = part.slice(2);
    const nonce = f['r'];
    const salt = f['s'];
    const iterations = Number(f['i']);
    if (!nonce || !salt || !iterations || !nonce.startsWith(this.cnonce))
      throw new Error(`bad SCRAM server-first: ${serverFirst}`);
    const keys = await keysFor(this.hash, this.password, salt, iterations);
    const withoutProof = `c=biws,r=${nonce}`;
    const authMessage = `${this.firstBare},${serverFirst},${withoutProof}`;
    const sig = createHmac(this.hash, keys.storedKey).update(authMessage).digest();
    const proof = Buffer.alloc(sig.length);
    for (let i = 0; i < sig.length; i++) proof[i] = keys.clientKey[i]! ^ sig[i]!;
    this.expectedServerSig = createHmac(this.hash, keys.serverKey).update(authMessage).digest();
    return Buffer.from(`${withoutProof},p=${proof.toString('base64')}`).toString('base64');
  }

  /** Checks the server-final-message (base64 payload of <success/>). */
  verify(successB64: string): boolean {
    if (!this.expectedServerSig) return false;
    const text = Buffer.from(successB64, 'base64').toString();
    const v = text.startsWith('v=') ? text.slice(2) : '';
    return v === this.expectedServerSig.toString('base64');
  }
}

/** Loads every `scram-*.jsonl` of `dir` into the cache. */
export function loadScramCache(dir: string): number {
  let files: string[];
  try {
    files = readdirSync(dir).filter((f) => f.startsWith('scram-') && f.endsWith('.jsonl'));
  } catch {
    return 0;
  }
  for (const f of files) {
    for (const line of readFileSync(join(dir, f), 'utf8').split('\n')) {
      if (!line) continue;
      const [k, c, s, v] = JSON.parse(line) as [string, string, string, string];
      cache.set(k, {
        clientKey: Buffer.from(c, 'base64'),
        storedKey: Buffer.from(s, 'base64'),
        serverKey: Buffer.from(v, 'base64'),
      });
    }
  }
  return cache.size;
}

/** Appends the keys computed since the last save to `dir/scram-<pid>.jsonl`. */
export function saveScramCache(dir: string): void {
  if (fresh.length === 0) return;
  const lines = fresh.map((k) => {
    const v = cache.get(k)!;
    return JSON.stringify([
      k,
      v.clientKey.toString('base64'),
      v.storedKey.toString('base64'),
      v.serverKey.toString('base64'),
    ]);
  });
  fresh.length = 0;
  appendFileSync(join(dir, `scram-${process.pid}.jsonl`), lines.join('\n') + '\n');
}

/**
 * Server-side credentials for provisioning (RFC 5802 §3): salted password → StoredKey and ServerKey,
 * plus the matching client cache line so that the generator starts with the keys already derived.
 */
export async function deriveCredentials(
  hash: ScramHash,
  password: string,
  salt: Buffer,
  iterations: number,
): Promise<{ storedKey: Buffer; serverKey: Buffer; cacheLine: string }> {
  const saltB64 = salt.toString('base64');
  const keys = await keysFor(hash, password, saltB64, iterations);
  fresh.length = 0; // provisioning writes its own cache file
  const k = cacheKey(hash, password, saltB64, iterations);
  const cacheLine = JSON.stringify([
    k,
    keys.clientKey.toString('base64'),
    keys.storedKey.toString('base64'),
    keys.serverKey.toString('base64'),
  ]);
  return { storedKey: keys.storedKey, serverKey: keys.serverKey, cacheLine };
}
