import { xml, type Element } from '@natter/xml';

/** XEP-0356 v0.4's namespace. */
export const NS_PRIVILEGE = 'urn:xmpp:privilege:2';

export type Access = 'none' | 'get' | 'set' | 'both';
export type MessagePermission = 'none' | 'outgoing';
export type PresencePermission = 'none' | 'managed_entity' | 'roster';

/** `components.<domain>.privileges` in the server configuration, as written by the operator. */
export interface PrivilegesConfig {
  roster?: Access;
  /** Roster pushes to the component (XEP-0356 §4.4); defaults to true when `roster` reads. */
  rosterPush?: boolean;
  message?: MessagePermission;
  presence?: PresencePermission;
  /** Namespace → IQ types the component may send in a user's name (XEP-0356 §6). */
  iq?: Readonly<Record<string, Access>>;
}

/** A component's privileges with every default applied. */
export interface Privileges {
  roster: Access;
  rosterPush: boolean;
  message: MessagePermission;
  presence: PresencePermission;
  iq: ReadonlyMap<string, Access>;
}

export function allows(access: Access | undefined, type: 'get' | 'set'): boolean {
  return access === 'both' || access === type;
}

/**
 * The effective privileges of a component, or undefined when it has none. Throws when the
 * configuration asks for what XEP-0356 forbids: roster presence without read access to rosters
 * (§7.4 "the server MUST reject the permission"), or IQ access to the privilege namespace itself.
 */
export function effectivePrivileges(domain: string, c: PrivilegesConfig | undefined): Privileges | undefined {
  if (!c) return undefined;
  const roster = c.roster ?? 'none';
  const presence = c.presence ?? 'none';
  if (presence === 'roster' && !allows(roster, 'get'))
    throw new Error(
      `components.${domain}.privileges: presence "roster" needs roster "get" or "both" (XEP-0356 §7.4)`,
    );
  const iq = new Map<string, Access>();
  for (const [ns, access] of Object.entries(c.iq ?? {})) {
    if (ns === NS_PRIVILEGE)
      throw new Error(`components.${domain}.privileges.iq: ${NS_PRIVILEGE} cannot be granted`);
    if (access !== 'none') iq.set(ns, access);
  }
  const p: Privileges = {
    roster,
    rosterPush: allows(roster, 'get') && (c.rosterPush ?? true),
    message: c.message ?? 'none',
    presence,
    iq,
  };
  if (p.roster === 'none' && p.message === 'none' && p.presence === 'none' && p.iq.size === 0)
    return undefined;
  return p;
}

/** The `<message/>` that tells a component what it may do (XEP-0356 §4.2, §5.2, §6.2, §7.2). */
export function advertisement(from: string, to: string, id: string, p: Privileges): Element {
  return xml(
    'message',
    { xmlns: 'jabber:client', from, to, id },
    xml(
      'privilege',
      { xmlns: NS_PRIVILEGE },
      xml('perm', {
        access: 'roster',
        type: p.roster,
        push: allows(p.roster, 'get') ? String(p.rosterPush) : undefined,
      }),
      xml('perm', { access: 'message', type: p.message }),
      xml('perm', { access: 'presence', type: p.presence }),
      p.iq.size > 0 &&
        xml(
          'perm',
          { access: 'iq' },
          [...p.iq].map(([ns, type]) => xml('namespace', { ns, type })),
        ),
    ),
  );
}
