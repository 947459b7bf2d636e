import { z } from 'zod';
import type { Jid } from '@natter/jid';
import { StanzaError, errorReply } from '@natter/protocol';
import { defineModule, resultReply } from '../../core/module-api.js';
import type { PrivilegeApi } from './api.js';
import type { RosterApi } from '../roster/api.js';
import { handlePrivilegedIq, handlePrivilegedMessage } from './xep-0356-on-behalf.js';
import {
  NS_PRIVILEGE,
  advertisement,
  allows,
  effectivePrivileges,
  type Privileges,
} from './xep-0356-permissions.js';
import { PresenceRelay } from './xep-0356-presence.js';

let advertisementCounter = 0;

/**
 * Privileged Entity (XEP-0356 v0.4.1): external components granted, in the server's
 * configuration (`components.<domain>.privileges`), access to the rosters of this host's users,
 * messages and IQs in their name, and their presence. Nothing is granted unless configured.
 */
export default defineModule({
  name: 'privilege',
  description:
    'Privileged components: roster, message, IQ and presence access, granted only by `components.<domain>.privileges`',
  specs: ['XEP-0356'],
  enabledByDefault: true,
  options: z.object({}).strict().prefault({}),
  setup(ctx) {
    const configured = ctx.config.components;
    const table = new Map<string, Privileges>();
    for (const [domain, c] of Object.entries(configured ?? {})) {
      const p = effectivePrivileges(domain, c.privileges);
      if (p) table.set(domain, p);
    }
    const connected = new Set<string>();
    const privilegesOf = (sender: Jid): Privileges | undefined => table.get(sender.domain);

    ctx.provide<PrivilegeApi>('privilege', {
      mayRoster: (entity, type) => allows(privilegesOf(entity)?.roster, type),
      rosterPushTargets: () => [...connected].filter((d) => table.get(d)!.rosterPush),
    });
    if (table.size === 0) return;

    const presenceTargets = () => {
      const out: { domain: string; roster: boolean }[] = [];
      for (const d of connected) {
        const p = table.get(d)!.presence;
        if (p !== 'none') out.push({ domain: d, roster: p === 'roster' });
      }
      return out;
    };
    const anyPresence = [...table.values()].some((p) => p.presence !== 'none');
    const anyRosterPresence = [...table.values()].some((p) => p.presence === 'roster');
    const relay = anyPresence ? new PresenceRelay(ctx, presenceTargets) : undefined;

    // §4.2: once a privileged component is connected, it is told what it may do on this host.
    ctx.hook('component/connected', ({ domain }) => {
      const p = table.get(domain);
      if (!p) return;
      connected.add(domain);
      const id = `privilege-${(++advertisementCounter).toString(36)}`;
      void ctx.send(advertisement(ctx.domain, domain, id, p));
      if (p.presence !== 'none') relay?.connected(domain, p.presence === 'roster');
    });
    ctx.hook('component/disconnected', ({ domain }) => {
      connected.delete(domain);
      relay?.disconnected(domain);
    });

    // §5: messages in the name of a user (or of the server), addressed to the server.
    ctx.hook('message/host', (ev) => handlePrivilegedMessage(ctx, privilegesOf, ev), 100);

    // §6: IQs in the name of a user, addressed to the user's bare JID. Answered when the inner
    // IQ's answer comes (up to 30 s): the component's stream goes on meanwhile, rather than
    // holding every later stanza of the gateway behind one slow addressee. Taken in the filter
    // stage, after blocking (a user who blocked the component refuses its privileged IQs too) and
    // before the account's IQ handlers, which would answer service-unavailable.
    ctx.hook('stanza/in', (ev) => {
      if (ev.stanza.name !== 'iq' || ev.to.domain !== ctx.domain) return false;
      if (ev.to.local === '' || ev.to.resource !== '') return false;
      const type = ev.stanza.attrs.type;
      if (type !== 'get' && type !== 'set') return false;
      const payload = ev.stanza.firstElement();
      if (!payload || payload.name !== 'privileged_iq' || payload.xmlns !== NS_PRIVILEGE) return false;
      const req = { ...ev, payload, type: type as 'get' | 'set' };
      void handlePrivilegedIq(ctx, privilegesOf, req)
        .then(
          (answer) => resultReply(ev.stanza, answer),
          (err: unknown) => {
            if (err instanceof StanzaError) return errorReply(ev.stanza, err);
            ctx.log.error({ err }, 'privileged IQ failed');
            return errorReply(ev.stanza, new StanzaError('internal-server-error'));
          },
        )
        .then((reply) => ctx.send(reply));
      return true;
    });

    // §7: presence of the users (and of their contacts) to components that may see it.
    if (relay) {
      ctx.hook(
        'stanza/out',
        (ev) => {
          if (ev.stanza.name === 'presence' && ev.origin && ev.stanza.attrs.to === undefined)
            relay.fromUser(ev.origin, ev.stanza);
          return false;
        },
        -100,
      );
      ctx.hook('session/closed', ({ session }) => {
        if (session.jid.domain === ctx.domain) relay.sessionClosed(session);
      });
      if (anyRosterPresence) {
        // §7.4: the presence of the users' roster contacts (whose presence the user receives:
        // subscription to or both), not whatever directed presence a user is sent (MUC occupants,
        // strangers, other components' addresses).
        const contact = (ev: Parameters<typeof relay.toUser>[0]) => {
          if (ev.stanza.attrs.to === undefined) return false;
          const type = ev.stanza.attrs.type;
          if (type !== undefined && type !== 'unavailable') return false;
          const roster = ctx.use<RosterApi>('roster');
          if (!roster) return false;
          return roster.get(ev.to.bare, ev.from.bare).then(
            (item) => {
              if (item?.subscription === 'to' || item?.subscription === 'both') relay.toUser(ev);
              else if (type === 'unavailable') relay.toUserIfRelayed(ev); // a contact removed meanwhile
              return false;
            },
            () => false,
          );
        };
        ctx.hook('presence/bare', contact, 100);
        ctx.hook('presence/full', contact, 100);
      }
    }
  },
});
