import type { Element } from '@natter/xml';
import type { Jid } from '@natter/jid';
import { AffiliationTable, type Affiliation, type Role } from './affiliations.js';
import { History } from './history.js';
import { nickKey } from './nick.js';
import type { RoomConfig } from './room-config.js';

/** An occupant: one real full JID present in a room under a nickname (XEP-0045 §5.1). */
export interface Occupant {
  nick: string;
  /** The occupant JID, room@service/nick. */
  jid: Jid;
  /** The real full JID (the first of `sessions`), never shown to those who may not see it. */
  real: Jid;
  /**
   * Every real full JID present under this nickname: one user may enter from several resources
   * with the same nickname (multi-session nick); each gets everything the occupant gets.
   */
  sessions: Jid[];
  role: Role;
  /** XEP-0421: the same for this user (bare JID) in this room, whatever the nickname or session. */
  occupantId: string;
  /** The children of its last available presence (show, status, caps …), muc payloads removed. */
  presence: Element[];
}

/** A room's state: configuration, affiliations, occupants, subject, history. */
export class Room {
  readonly affiliations = new AffiliationTable();
  /**
   * By nickname comparison key (`nickKey`, RFC 8266): a nickname and its case or width variants
   * are one key. Look up with `occupantByNick`.
   */
  readonly occupants = new Map<string, Occupant>();
  /** By real full JID string. */
  readonly byReal = new Map<string, Occupant>();
  readonly history: History;
  subject = '';
  /** Occupant JID (or the room's) of whoever set the subject. */
  subjectFrom = '';
  /** §10.1.1: created and not yet configured; nobody else may enter. */
  locked = false;
  /** Stored in the database (persistent rooms only). */
  stored = false;
  /** The room's vCard (XEP-0486), set by its owners. */
  vcard: Element | undefined;
  /** SHA-1 of the vCard's photo, '' without one. */
  avatarHash = '';
  /** Handlers still running for this room (they wait for storage); not part of its state. */
  readonly busy = new Set<Promise<unknown>>();

  constructor(
    readonly jid: Jid,
    public config: RoomConfig,
    readonly createdAt = Date.now(),
  ) {
    this.history = new History(config.historyLength);
  }

  /** The occupant holding `nick` or an equivalent nickname (RFC 8266 comparison). */
  occupantByNick(nick: string): Occupant | undefined {
    return this.occupants.get(nickKey(nick));
  }

  get name(): string {
    return this.jid.local;
  }

  affiliationOf(real: Jid): Affiliation {
    return this.affiliations.get(real.toBareString());
  }

  get nonAnonymous(): boolean {
    return this.config.whois === 'anyone';
  }

  /** §5.1: who may see real JIDs: everyone in non-anonymous rooms, moderators otherwise. */
  seesRealJids(viewer: Occupant): boolean {
    return this.config.whois === 'anyone' || viewer.role === 'moderator';
  }

  /** Occupants with the same bare JID as `real` (a user may be in the room from several resources). */
  occupantsOf(bare: string): Occupant[] {
    const out: Occupant[] = [];
    for (const o of this.occupants.values()) if (o.real.toBareString() === bare) out.push(o);
    return out;
  }

  /** The `muc_*` disco features (§6.4). */
  features(): string[] {
    const c = this.config;
    return [
      c.public ? 'muc_public' : 'muc_hidden',
      c.persistent ? 'muc_persistent' : 'muc_temporary',
      c.membersOnly ? 'muc_membersonly' : 'muc_open',
      c.moderated ? 'muc_moderated' : 'muc_unmoderated',
      c.password !== '' ? 'muc_passwordprotected' : 'muc_unsecured',
      c.whois === 'anyone' ? 'muc_nonanonymous' : 'muc_semianonymous',
    ];
  }
}
