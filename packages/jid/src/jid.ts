// The Jid value class and its constructors: RFC 7622 §3.1 splitting, parts prepared per §3.2-3.4.
import { prepareDomainpart } from './domainpart.js';
import { JidError } from './jid-error.js';
import { prepareLocalpart } from './localpart.js';
import { prepareResourcepart } from './resourcepart.js';
import { ParseCache } from './parse-cache.js';

/** Only code in this module can call the Jid constructor (parts must already be normalised). */
const TRUSTED: unique symbol = Symbol('Jid.trusted');

/** An immutable, normalised XMPP address. Build one with parseJid(), tryParseJid() or jid(). */
export class Jid {
  /** Normalised localpart; '' when absent. */
  readonly local: string;
  /** Normalised domainpart (lowercase, no trailing dot). */
  readonly domain: string;
  /** Resourcepart (case preserved, NFC); '' when absent. */
  readonly resource: string;
  #full: string | undefined;
  #bareString: string | undefined;
  #bare: Jid | undefined;

  /** @internal Use parseJid(), tryParseJid() or jid(). */
  constructor(token: typeof TRUSTED, local: string, domain: string, resource: string, full?: string) {
    if (token !== TRUSTED) throw new TypeError('use parseJid(), tryParseJid() or jid() to build a Jid');
    this.local = local;
    this.domain = domain;
    this.resource = resource;
    this.#full = full;
    Object.freeze(this);
  }

  /** True when the address has no resourcepart. */
  get isBare(): boolean {
    return this.resource === '';
  }

  /** The address without its resourcepart; the same instance when already bare. */
  get bare(): Jid {
    if (this.resource === '') return this;
    return (this.#bare ??= new Jid(TRUSTED, this.local, this.domain, '', this.toBareString()));
  }

  /** `local@domain/resource`, omitting absent parts. */
  toString(): string {
    if (this.#full === undefined) {
      this.#full = this.resource === '' ? this.toBareString() : `${this.toBareString()}/${this.resource}`;
    }
    return this.#full;
  }

  /** `local@domain` (or `domain`). */
  toBareString(): string {
    if (this.#bareString === undefined) {
      if (this.resource === '' && this.#full !== undefined) this.#bareString = this.#full;
      else this.#bareString = this.local === '' ? this.domain : `${this.local}@${this.domain}`;
    }
    return this.#bareString;
  }

  toJSON(): string {
    return this.toString();
  }

  /** Same address (parts are normalised, so this is exact comparison of the three parts). */
  equals(other: Jid | null | undefined): boolean {
    if (other === this) return true;
    if (!(other instanceof Jid)) return false;
    return this.domain === other.domain && this.local === other.local && this.resource === other.resource;
  }

  /** The same local and domain with another resource (prepared and checked); '' gives the bare JID. */
  withResource(resource: string): Jid {
    if (resource === '') return this.bare;
    const prepared = prepareResourcepart(resource);
    if (prepared === this.resource) return this;
    return new Jid(TRUSTED, this.local, this.domain, prepared);
  }
}

/**
 * Parses and normalises a JID string (RFC 7622 §3.1: the resourcepart is everything after the first
 * '/', the localpart everything before the first '@' preceding it). Throws a JidError when invalid.
 */
export function parseJid(input: string): Jid {
  if (typeof input !== 'string')
    throw new JidError('jid', 'invalid-input', `must be a string, not ${typeof input}`);
  const cached = cache.get(input);
  if (cached !== undefined) return cached;
  const parsed = parseUncached(input);
  cache.set(input, parsed);
  return parsed;
}

/** Recently parsed JIDs (valid ones only; invalid input is not cached); up to 2 × 1024 entries. See parse-cache.ts for measurements. */
const cache = new ParseCache<Jid>(1024);

function parseUncached(input: string): Jid {
  const slash = input.indexOf('/');
  const head = slash === -1 ? input : input.slice(0, slash);
  const at = head.indexOf('@');
  const rawLocal = at === -1 ? '' : head.slice(0, at);
  const rawDomain = at === -1 ? head : head.slice(at + 1);
  const rawResource = slash === -1 ? '' : input.slice(slash + 1);
  const local = at === -1 ? '' : prepareLocalpart(rawLocal);
  const domain = prepareDomainpart(rawDomain);
  const resource = slash === -1 ? '' : prepareResourcepart(rawResource);
  const unchanged = local === rawLocal && domain === rawDomain && resource === rawResource;
  return new Jid(TRUSTED, local, domain, resource, unchanged ? input : undefined);
}

/** Like parseJid, but returns null instead of throwing for an invalid JID. */
export function tryParseJid(input: string): Jid | null {
  try {
    return parseJid(input);
  } catch (err) {
    if (err instanceof JidError) return null;
    throw err;
  }
}

/**
 * Builds a JID from its parts, preparing and checking each one. `local` and `resource` may be
 * undefined or '' when absent. Throws a JidError when a part is invalid.
 */
export function jid(local: string | undefined, domain: string, resource?: string): Jid {
  checkType(local, 'local', true);
  checkType(domain, 'domain', false);
  checkType(resource, 'resource', true);
  const l = local === undefined || local === '' ? '' : prepareLocalpart(local);
  const d = prepareDomainpart(domain);
  const r = resource === undefined || resource === '' ? '' : prepareResourcepart(resource);
  return new Jid(TRUSTED, l, d, r);
}

function checkType(value: unknown, part: 'local' | 'domain' | 'resource', optional: boolean): void {
  if (typeof value === 'string' || (optional && value === undefined)) return;
  throw new JidError(
    part,
    'invalid-input',
    `must be a string, not ${value === null ? 'null' : typeof value}`,
  );
}
