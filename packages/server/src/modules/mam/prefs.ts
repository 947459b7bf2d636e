import type { Kysely } from 'kysely';
import { xml, type Element } from '@natter/xml';
import { parseJid } from '@natter/jid';
import { NS, StanzaError } from '@natter/protocol';

export type DefaultMode = 'always' | 'never' | 'roster';
const MODES = new Set<string>(['always', 'never', 'roster']);

/** Archiving preferences of one account (XEP-0441, the `<prefs/>` of XEP-0313 ≤ 0.6 §5). */
export interface Prefs {
  default: DefaultMode;
  /** Normalised JIDs (bare or full) always archived. */
  always: Set<string>;
  /** Normalised JIDs never archived; wins over `always`. */
  never: Set<string>;
}

export function prefsElement(p: Prefs): Element {
  const list = (name: string, jids: Set<string>) =>
    xml(
      name,
      null,
      [...jids].sort().map((j) => xml('jid', null, j)),
    );
  return xml(
    'prefs',
    { xmlns: NS.mam, default: p.default },
    list('always', p.always),
    list('never', p.never),
  );
}

/** Reads a `<prefs/>` set request; throws bad-request / jid-malformed on invalid input. */
export function parsePrefs(el: Element): Prefs {
  const mode = el.attrs.default;
  if (mode === undefined || !MODES.has(mode))
    throw new StanzaError('bad-request', { text: "'default' must be always, never or roster" });
  const jids = (name: string) => {
    const out = new Set<string>();
    for (const j of el.getChild(name, NS.mam)?.getChildren('jid', NS.mam) ?? []) {
      try {
        out.add(parseJid(j.text().trim()).toString());
      } catch {
        throw new StanzaError('jid-malformed', { text: `invalid JID in <${name}/>: ${j.text()}` });
      }
    }
    return out;
  };
  return { default: mode as DefaultMode, always: jids('always'), never: jids('never') };
}

const split = (s: string) => new Set(s === '' ? [] : s.split('\n'));

/** Stored preferences with a bounded in-memory cache, so the message path rarely waits for them. */
export class PrefsStore {
  private readonly cache = new Map<string, Prefs | Promise<Prefs>>();
  /** Invalidations received so far: a change that saw one while it ran does not cache its value. */
  private invalidations = 0;
  /**
   * Told after a change to an account's preferences is stored (before it is answered), so that the
   * other nodes of a cluster drop their cached copy (docs/decisions/0009).
   */
  onChange: ((owner: string) => void) | undefined;

  constructor(
    private readonly db: Kysely<any>,
    private readonly defaultMode: DefaultMode,
    private readonly capacity = 10_000,
  ) {}

  defaults(): Prefs {
    return { default: this.defaultMode, always: new Set(), never: new Set() };
  }

  /** The account's preferences: synchronously when cached. */
  get(owner: string): Prefs | Promise<Prefs> {
    const hit = this.cache.get(owner);
    if (hit !== undefined) return hit;
    const p = this.load(owner).then(
      (prefs) => {
        if (this.cache.get(owner) === p) this.remember(owner, prefs);
        return prefs;
      },
      (err: unknown) => {
        this.cache.delete(owner);
        throw err;
      },
    );
    this.remember(owner, p);
    return p;
  }

  private remember(owner: string, v: Prefs | Promise<Prefs>): void {
    this.cache.delete(owner);
    this.cache.set(owner, v);
    if (this.cache.size > this.capacity) {
      const oldest = this.cache.keys().next().value as string;
      this.cache.delete(oldest);
    }
  }

  private async load(owner: string): Promise<Prefs> {
    const row = await this.db
      .selectFrom('mam_prefs')
      .selectAll()
      .where('owner', '=', owner)
      .executeTakeFirst();
    if (!row) return this.defaults();
    return {
      default: row.default_mode as DefaultMode,
      always: split(String(row.always_jids)),
      never: split(String(row.never_jids)),
    };
  }

  /**
   * Forgets an account's cached preferences, and a load of them under way (its result is not
   * cached): another node changed them. The next message or query reads them again.
   */
  invalidate(owner: string): void {
    this.invalidations++;
    this.cache.delete(owner);
  }

  /** Forgets every cached preference (messages from other nodes may have been lost). */
  invalidateAll(): void {
    this.invalidations++;
    this.cache.clear();
  }

  async set(owner: string, p: Prefs): Promise<void> {
    const seen = this.invalidations;
    const values = {
      default_mode: p.default,
      always_jids: [...p.always].join('\n'),
      never_jids: [...p.never].join('\n'),
    };
    await this.db
      .insertInto('mam_prefs')
      .values({ owner, ...values })
      .onConflict((oc) => oc.column('owner').doUpdateSet(values))
      .execute();
    // Another node changed preferences meanwhile: which write came last is for the rows to say.
    if (this.invalidations !== seen) this.cache.delete(owner);
    else this.remember(owner, p);
    this.onChange?.(owner);
  }

  async delete(owner: string): Promise<void> {
    this.cache.delete(owner);
    await this.db.deleteFrom('mam_prefs').where('owner', '=', owner).execute();
    this.cache.delete(owner); // a load begun before the delete must not stay
    this.onChange?.(owner);
  }
}

/**
 * XEP-0441 §3 decision for one message: `never` lists win, then `always` lists, then the default
 * (`roster` asks `inRoster`). JIDs in the lists match the remote bare or full address.
 */
export function decide(
  p: Prefs,
  remoteBare: string,
  remoteFull: string,
  inRoster: () => boolean | Promise<boolean>,
): boolean | Promise<boolean> {
  if (p.never.has(remoteBare) || p.never.has(remoteFull)) return false;
  if (p.always.has(remoteBare) || p.always.has(remoteFull)) return true;
  if (p.default === 'always') return true;
  if (p.default === 'never') return false;
  return inRoster();
}
