import type { Jid } from '@natter/jid';
import { StanzaError, fieldValue, type FormField } from '@natter/protocol';
import { NATTER_VERSION, type ModuleContext } from '../../core/module-api.js';
import { commandError, type AdhocCommand } from './api.js';

/** The commands for a host's own accounts, by their `userCommands` option name. */
export const USER_COMMANDS = ['change-password', 'sessions', 'uptime'] as const;
export type UserCommand = (typeof USER_COMMANDS)[number];

/** Their nodes on the server's JID. */
export const USER_COMMAND_NODES: Record<UserCommand, string> = {
  'change-password': 'https://natter.dev/commands/change-password',
  sessions: 'https://natter.dev/commands/sessions',
  uptime: 'https://natter.dev/commands/uptime',
};

/** Longest password accepted (as at in-band registration). */
const MAX_PASSWORD = 1024;

/** "3 d 4 h 5 min 6 s" */
export function formatDuration(ms: number): string {
  let s = Math.max(0, Math.floor(ms / 1000));
  const parts: string[] = [];
  for (const [unit, size] of [
    ['d', 86_400],
    ['h', 3600],
    ['min', 60],
  ] as const) {
    if (s >= size) {
      parts.push(`${Math.floor(s / size)} ${unit}`);
      s %= size;
    }
  }
  if (s > 0 || parts.length === 0) parts.push(`${s} s`);
  return parts.join(' ');
}

/**
 * Ad-hoc commands for the accounts of the host (nobody else sees them): change my password, my
 * sessions (and end one of the others), the server's uptime and version.
 */
export function userCommands(ctx: ModuleContext<unknown>, enabled: readonly UserCommand[]): AdhocCommand[] {
  const ownAccount = (requester: Jid) => requester.local !== '' && requester.domain === ctx.domain;
  const started = Date.now();

  const changePassword: AdhocCommand = {
    node: USER_COMMAND_NODES['change-password'],
    name: 'Change my password',
    allowed: ownAccount,
    async execute({ requester, secure, stage, form }) {
      // Credentials travel in the form: only where they may travel at login.
      if (!secure)
        throw new StanzaError('not-authorized', {
          text: 'change your password over an encrypted connection',
        });
      if (stage === 0) {
        const field = (v: string, label: string): FormField => ({
          var: v,
          type: 'text-private',
          label,
          required: true,
          values: [],
        });
        return {
          status: 'executing',
          form: {
            type: 'form',
            title: 'Change my password',
            instructions: `The new password of ${requester.bare.toString()}. Your other sessions will be closed.`,
            fields: [field('password', 'New password'), field('password-confirm', 'New password again')],
          },
        };
      }
      const password = form && fieldValue(form, 'password');
      const confirm = form && fieldValue(form, 'password-confirm');
      if (!password) throw commandError('bad-payload', 'a new password is required');
      if (password.length > MAX_PASSWORD)
        throw commandError('bad-payload', `a password has at most ${MAX_PASSWORD} characters`);
      if (confirm !== password) throw commandError('bad-payload', 'the two passwords differ');
      if (!(await ctx.accounts.setPassword(requester.local, requester.domain, password)))
        throw new StanzaError('item-not-found', { text: 'no such account' });
      ctx.log.info({ account: requester.bare.toString() }, 'password changed by ad-hoc command');
      // What was tied to the old password goes (FAST tokens, XEP-0484).
      await ctx.notify('user/password-changed', { jid: requester.bare });
      // As with XEP-0077: whoever knew the old password is logged out (every other session of the
      // account, here or on another node, with <reset/>), after the result is sent.
      const others = ctx.sessions.ofAccount(requester.bare).filter((s) => !s.jid.equals(requester));
      setImmediate(() => {
        for (const s of others)
          ctx
            .kickSession(s, 'reset', 'the password was changed')
            .catch((err: unknown) => ctx.log.error({ err }, 'could not end a session'));
      });
      return {
        status: 'completed',
        notes: [{ type: 'info', text: 'Your password was changed; your other sessions are being closed.' }],
      };
    },
  };

  const sessions: AdhocCommand = {
    node: USER_COMMAND_NODES.sessions,
    name: 'My sessions',
    allowed: ownAccount,
    async execute({ requester, stage, form }) {
      const mine = ctx.sessions.ofAccount(requester.bare).filter((s) => !s.closed);
      const others = mine.filter((s) => !s.jid.equals(requester));
      if (stage === 0) {
        const describe = (s: (typeof mine)[number]) => {
          const live = ctx.sessionInfo(s);
          const parts = [s.jid.resource];
          if (s.jid.equals(requester)) parts.push('(this one)');
          if (live) {
            parts.push(`from ${live.ip}`, `since ${new Date(live.since).toISOString()}`);
            if (live.hibernated) parts.push('(waiting to be resumed)');
          } else parts.push('(on another node of the cluster)');
          return parts.join(' ');
        };
        const fields: FormField[] = mine.map((s, i) => ({
          var: `session-${i}`,
          type: 'fixed',
          values: [describe(s)],
        }));
        if (others.length === 0)
          return {
            status: 'completed',
            form: { type: 'result', title: 'My sessions', fields },
            notes: [{ type: 'info', text: 'This is your only session.' }],
          };
        fields.push({
          var: 'end',
          type: 'list-single',
          label: 'End this session',
          values: [],
          options: others.map((s) => ({ label: describe(s), value: s.jid.resource })),
        });
        return {
          status: 'executing',
          form: {
            type: 'form',
            title: 'My sessions',
            instructions: 'Choose one of your other sessions to end it, or none to leave them all.',
            fields,
          },
        };
      }
      const resource = form && fieldValue(form, 'end');
      if (!resource) return { status: 'completed', notes: [{ type: 'info', text: 'No session was ended.' }] };
      if (resource === requester.resource)
        throw commandError('bad-payload', 'this is the session you are using: log out instead');
      const target = others.find((s) => s.jid.resource === resource);
      if (!target) throw commandError('bad-payload', `you have no session "${resource}"`);
      const ended = await ctx.kickSession(
        target,
        'not-authorized',
        'ended from another session of the account',
      );
      ctx.log.info(
        { session: target.jid.toString(), by: requester.toString() },
        'session ended by ad-hoc command',
      );
      return {
        status: 'completed',
        notes: [
          ended
            ? { type: 'info', text: `The session "${resource}" was ended.` }
            : { type: 'warn', text: `The session "${resource}" had ended already.` },
        ],
      };
    },
  };

  const uptime: AdhocCommand = {
    node: USER_COMMAND_NODES.uptime,
    name: 'Server uptime and version',
    allowed: ownAccount,
    execute() {
      const ms = Date.now() - started;
      return {
        status: 'completed',
        form: {
          type: 'result',
          title: 'Server',
          fields: [
            { var: 'software', type: 'text-single', label: 'Software', values: ['Natter'] },
            { var: 'version', type: 'text-single', label: 'Version', values: [NATTER_VERSION] },
            { var: 'uptime', type: 'text-single', label: 'Up for', values: [formatDuration(ms)] },
            {
              var: 'uptime-seconds',
              type: 'text-single',
              label: 'Up for (seconds)',
              values: [String(Math.floor(ms / 1000))],
            },
            {
              var: 'started',
              type: 'text-single',
              label: 'Up since',
              values: [new Date(started).toISOString()],
            },
          ],
        },
      };
    },
  };

  const all: Record<UserCommand, AdhocCommand> = { 'change-password': changePassword, sessions, uptime };
  return enabled.map((name) => all[name]);
}
