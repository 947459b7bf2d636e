/**
 * XEP-0045 §5.2 affiliations (long-lived, per bare JID) and §5.1 roles (per visit), with the
 * permission rules of §5.1.2/§5.2.1 the admin and owner IQs apply.
 */

export type Affiliation = 'owner' | 'admin' | 'member' | 'none' | 'outcast';
export type Role = 'moderator' | 'participant' | 'visitor' | 'none';

export const AFFILIATIONS: readonly Affiliation[] = ['owner', 'admin', 'member', 'none', 'outcast'];
export const ROLES: readonly Role[] = ['moderator', 'participant', 'visitor', 'none'];

const AFF_RANK: Record<Affiliation, number> = { outcast: 0, none: 1, member: 2, admin: 3, owner: 4 };
const ROLE_RANK: Record<Role, number> = { none: 0, visitor: 1, participant: 2, moderator: 3 };

export function isAffiliation(v: string | undefined): v is Affiliation {
  return v !== undefined && v in AFF_RANK;
}

export function isRole(v: string | undefined): v is Role {
  return v !== undefined && v in ROLE_RANK;
}

export function affRank(a: Affiliation): number {
  return AFF_RANK[a];
}

export function roleRank(r: Role): number {
  return ROLE_RANK[r];
}

/** Owners and admins: they manage the room's lists. */
export function isAdminOrOwner(a: Affiliation): boolean {
  return a === 'owner' || a === 'admin';
}

/** §5.1.2: the role an occupant gets by default for its affiliation (moderated rooms give visitors). */
export function defaultRole(aff: Affiliation, moderated: boolean): Role {
  if (aff === 'owner' || aff === 'admin') return 'moderator';
  if (aff === 'member') return 'participant';
  if (aff === 'outcast') return 'none';
  return moderated ? 'visitor' : 'participant';
}

/**
 * The affiliations of one room, by bare JID string (entries with `none` are not kept), with an
 * optional reason each (shown in lists).
 */
export class AffiliationTable {
  private readonly map = new Map<string, { affiliation: Exclude<Affiliation, 'none'>; reason?: string }>();

  get(bare: string): Affiliation {
    return this.map.get(bare)?.affiliation ?? 'none';
  }

  reason(bare: string): string | undefined {
    return this.map.get(bare)?.reason;
  }

  set(bare: string, affiliation: Affiliation, reason?: string): void {
    if (affiliation === 'none') this.map.delete(bare);
    else this.map.set(bare, { affiliation, reason: reason || undefined });
  }

  /** Bare JIDs holding `affiliation`. */
  list(affiliation: Affiliation): string[] {
    const out: string[] = [];
    for (const [jid, v] of this.map) if (v.affiliation === affiliation) out.push(jid);
    return out.sort();
  }

  count(affiliation: Affiliation): number {
    let n = 0;
    for (const v of this.map.values()) if (v.affiliation === affiliation) n++;
    return n;
  }

  entries(): { jid: string; affiliation: Affiliation; reason?: string }[] {
    return [...this.map].map(([jid, v]) => ({ jid, affiliation: v.affiliation, reason: v.reason }));
  }
}
