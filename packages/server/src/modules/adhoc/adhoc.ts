import { randomBytes } from 'node:crypto';
import { z } from 'zod';
import { xml, type Element } from '@natter/xml';
import type { Jid } from '@natter/jid';
import { NS, StanzaError, buildForm, parseForm } from '@natter/protocol';
import { defineModule } from '../../core/module-api.js';
import type { DiscoApi } from '../disco/api.js';
import {
  NS_COMMANDS,
  commandError,
  type AdhocApi,
  type AdhocCommand,
  type CommandAction,
  type CommandResponse,
} from './api.js';
import { USER_COMMANDS, userCommands } from './user-commands.js';

export { NS_COMMANDS, commandError } from './api.js';
export type { AdhocApi, AdhocCommand, CommandRequest, CommandResponse } from './api.js';

/** One run of a command by one requester (XEP-0050 §3.3), between its first and its last stage. */
interface CommandSession {
  id: string;
  command: AdhocCommand;
  /** The requester's full JID: nobody else may continue it. */
  owner: string;
  bare: string;
  /** The responses sent so far, last one last (`prev` goes back one). */
  responses: CommandResponse[];
  state: Record<string, unknown>;
  lastUsed: number;
}

const ACTIONS = new Set(['execute', 'next', 'prev', 'complete', 'cancel']);

/**
 * Ad-Hoc Commands (XEP-0050) on the server's JID. Peers register commands through `api.ts`
 * (node, name, `allowed(requester)`, one `execute` per stage); this module lists the commands a
 * requester may run under the `http://jabber.org/protocol/commands` disco node, answers disco#info
 * of each command node, and runs sessions: bound to the requester's full JID, expired after
 * `sessionTimeoutMs` idle, at most `maxSessionsPerUser` open per account, `<actions/>` checked at
 * each stage, `prev` and `cancel` handled here. Ships commands for a host's own accounts: change
 * my password, my sessions (end one), server uptime and version (`userCommands`).
 */
export default defineModule({
  name: 'adhoc',
  description:
    "Ad-hoc commands on the server's JID, with commands for users: change password, list or end own sessions, uptime",
  specs: ['XEP-0050', 'XEP-0004'],
  enabledByDefault: true,
  options: z
    .object({
      /** A command session untouched this long is over (not-allowed, session-expired). */
      sessionTimeoutMs: z.number().int().min(100).default(600_000),
      /** Command sessions one account may have open at once (resource-constraint beyond). */
      maxSessionsPerUser: z.number().int().min(1).default(5),
      /** The commands for the host's own accounts that are offered. */
      userCommands: z.array(z.enum(USER_COMMANDS)).default([...USER_COMMANDS]),
    })
    .strict()
    .prefault({}),
  setup(ctx) {
    const { sessionTimeoutMs, maxSessionsPerUser } = ctx.options;
    const commands = new Map<string, AdhocCommand>();
    const sessions = new Map<string, CommandSession>();
    /** Sessions that expired, kept one more timeout to answer session-expired rather than bad-sessionid. */
    const expired = new Map<string, { owner: string; at: number }>();

    const api: AdhocApi = {
      register(command) {
        if (commands.has(command.node)) throw new Error(`an ad-hoc command ${command.node} exists already`);
        commands.set(command.node, command);
        return () => {
          if (commands.get(command.node) !== command) return;
          commands.delete(command.node);
          for (const [id, s] of sessions) if (s.command === command) sessions.delete(id);
        };
      },
    };
    ctx.provide<AdhocApi>('adhoc', api);

    const allowedFor = async (requester: Jid): Promise<AdhocCommand[]> => {
      const out: AdhocCommand[] = [];
      for (const c of commands.values()) if (await c.allowed(requester)) out.push(c);
      return out;
    };

    // XEP-0050 §2.2-§2.3: the command list and each command's info, through the disco module.
    const disco = ctx.use<DiscoApi>('disco');
    if (!disco) {
      // Listed after disco (modules/index.ts): without it, commands cannot be discovered.
      ctx.log.info('disco is disabled: no ad-hoc commands (XEP-0050)');
      return;
    }
    ctx.onStop(
      disco.addHostNodes({
        async items(node, requester) {
          if (node !== NS_COMMANDS) return undefined;
          return (await allowedFor(requester)).map((c) => ({
            jid: ctx.domain,
            node: c.node,
            name: c.name,
          }));
        },
        async info(node, requester) {
          if (node === NS_COMMANDS)
            return {
              identities: [{ category: 'automation', type: 'command-list', name: 'Commands' }],
              features: [NS_COMMANDS],
            };
          const command = commands.get(node);
          if (!command || !(await command.allowed(requester))) return undefined;
          return {
            identities: [{ category: 'automation', type: 'command-node', name: command.name }],
            features: [NS_COMMANDS, NS.dataForms],
          };
        },
      }),
    );

    const isExpired = (s: CommandSession, now: number) => now - s.lastUsed > sessionTimeoutMs;
    const expire = (s: CommandSession, now: number) => {
      sessions.delete(s.id);
      expired.set(s.id, { owner: s.owner, at: now });
    };
    ctx.every(Math.min(sessionTimeoutMs, 60_000), () => {
      const now = Date.now();
      for (const s of sessions.values()) if (isExpired(s, now)) expire(s, now);
      for (const [id, e] of expired) if (now - e.at > sessionTimeoutMs) expired.delete(id);
    });
    // A session is the requester's resource's: it ends with it.
    ctx.hook('session/closed', ({ session }) => {
      const full = session.jid.toString();
      for (const [id, s] of sessions) if (s.owner === full) sessions.delete(id);
    });

    const reply = (s: { id: string; command: AdhocCommand }, r: CommandResponse): Element => {
      const form = r.form && ('fields' in r.form ? buildForm(r.form) : r.form);
      const actions =
        r.status === 'executing'
          ? xml(
              'actions',
              { execute: r.actions?.execute ?? (r.actions ? undefined : 'complete') },
              (r.actions?.allowed ?? ['complete']).map((a) => xml(a)),
            )
          : undefined;
      return xml(
        'command',
        { xmlns: NS_COMMANDS, node: s.command.node, sessionid: s.id, status: r.status },
        actions,
        (r.notes ?? []).map((n) => xml('note', { type: n.type ?? 'info' }, n.text)),
        form,
      );
    };
    const allowedActions = (r: CommandResponse): CommandAction[] => r.actions?.allowed ?? ['complete'];

    ctx.iq('host', 'set', NS_COMMANDS, 'command', async (req) => {
      const { node, sessionid } = req.payload.attrs;
      const action = req.payload.attrs.action ?? 'execute';
      if (!ACTIONS.has(action)) throw commandError('malformed-action', `unknown action "${action}"`);
      const command = node === undefined ? undefined : commands.get(node);
      if (!command) throw new StanzaError('item-not-found', { text: 'no such command' });
      if (!(await command.allowed(req.from)))
        throw new StanzaError('forbidden', { text: 'you may not run this command' });
      const now = Date.now();
      const owner = req.from.toString();
      const secure = req.origin !== undefined && ctx.sessionInfo(req.origin)?.credentialsAllowed === true;
      const x = req.payload.getChild('x', NS.dataForms);
      const submitted = x && x.attrs.type !== 'cancel' ? x : undefined;

      if (sessionid === undefined) {
        // XEP-0050 §3.3: a command starts with execute; every other action continues a session.
        if (action === 'cancel') throw commandError('bad-sessionid', 'cancel what? no sessionid');
        if (action !== 'execute') throw commandError('bad-action', `${action} needs a session`);
        const bare = req.from.bare.toString();
        let open = 0;
        for (const s of sessions.values()) if (s.bare === bare && !isExpired(s, now)) open++;
        if (open >= maxSessionsPerUser)
          throw new StanzaError('resource-constraint', {
            text: `at most ${maxSessionsPerUser} command sessions at once: finish or cancel one`,
          });
        const session: CommandSession = {
          id: randomBytes(9).toString('base64url'),
          command,
          owner,
          bare,
          responses: [],
          state: {},
          lastUsed: now,
        };
        const first = await command.execute({
          requester: req.from,
          secure,
          stage: 0,
          action: 'execute',
          form: undefined,
          formElement: undefined,
          state: session.state,
        });
        if (first.status === 'executing') {
          session.responses.push(first);
          sessions.set(session.id, session);
        }
        return reply(session, first);
      }

      const session = sessions.get(sessionid);
      if (!session || session.owner !== owner || session.command !== command) {
        const gone = expired.get(sessionid);
        if (!session && gone?.owner === owner)
          throw commandError('session-expired', 'this session has expired');
        throw commandError('bad-sessionid', 'no such session');
      }
      if (isExpired(session, now)) {
        expire(session, now);
        throw commandError('session-expired', 'this session has expired');
      }
      session.lastUsed = now;
      const last = session.responses[session.responses.length - 1]!;
      if (action === 'cancel') {
        sessions.delete(session.id);
        return reply(session, { status: 'canceled' });
      }
      const allowed = allowedActions(last);
      const wanted: CommandAction =
        action === 'execute'
          ? (last.actions?.execute ?? (allowed.includes('next') ? 'next' : 'complete'))
          : (action as CommandAction);
      if (!allowed.includes(wanted))
        throw commandError('bad-action', `${action} is not allowed at this stage (${allowed.join(', ')})`);
      if (wanted === 'prev') {
        if (session.responses.length < 2) throw commandError('bad-action', 'there is no previous stage');
        session.responses.pop();
        return reply(session, session.responses[session.responses.length - 1]!);
      }
      if (last.form && !submitted) throw commandError('bad-payload', 'submit the form of this stage');
      const response = await command.execute({
        requester: req.from,
        secure,
        stage: session.responses.length,
        action: wanted,
        form: submitted && parseForm(submitted),
        formElement: submitted,
        state: session.state,
      });
      if (response.status === 'executing') session.responses.push(response);
      else sessions.delete(session.id);
      return reply(session, response);
    });

    for (const command of userCommands(ctx, ctx.options.userCommands)) ctx.onStop(api.register(command));
  },
});
