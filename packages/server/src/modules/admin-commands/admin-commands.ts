import { z } from 'zod';
import { parseJid, type Jid } from '@natter/jid';
import { StanzaError, fieldValue, type DataForm, type FormField } from '@natter/protocol';
import { AdminCommandFailed, defineModule, type ModuleContext } from '../../core/module-api.js';
import { commandError, type AdhocApi, type AdhocCommand, type CommandResponse } from '../adhoc/api.js';

/**
 * XEP-0133 Service Administration: the administrator's commands (the same ones the CLI and the
 * HTTP API run, admin/registry.ts) as ad-hoc commands on the server's JID, for the accounts listed
 * in `admins`. Each node here only translates XEP-0133's form fields to a command's input and its
 * output to a result form.
 */

/** XEP-0133's namespace: the FORM_TYPE of its forms and the prefix of its nodes. */
export const NS_ADMIN = 'http://jabber.org/protocol/admin';

/** The XEP-0133 commands Natter serves, by the name after `#` in their node. */
export const ADMIN_NODES = [
  'add-user',
  'delete-user',
  'disable-user',
  'reenable-user',
  'end-user-session',
  'change-user-password',
  'get-registered-users-num',
  'get-disabled-users-num',
  'get-online-users-num',
  'get-active-users-num',
  'get-registered-users-list',
  'get-disabled-users-list',
  'get-online-users-list',
  'get-active-users',
  'announce',
] as const;
export type AdminNode = (typeof ADMIN_NODES)[number];

/** Most JIDs one command acts on (`accountjids`). */
const MAX_TARGETS = 100;

const hidden: FormField = { var: 'FORM_TYPE', type: 'hidden', values: [NS_ADMIN] };
const field = (v: string, type: FormField['type'], label: string, required = false): FormField => ({
  var: v,
  type,
  label,
  values: [],
  ...(required ? { required } : {}),
});
/** XEP-0133's `max_items` choice of the list commands. */
const maxItems: FormField = {
  var: 'max_items',
  type: 'list-single',
  label: 'Maximum number of items to show',
  values: ['100'],
  options: ['25', '50', '75', '100', '150', '200', 'none'].map((value) => ({ label: value, value })),
};

function form(title: string, fields: FormField[], instructions?: string): DataForm {
  return { type: 'form', title, ...(instructions ? { instructions } : {}), fields: [hidden, ...fields] };
}

function result(title: string, fields: FormField[]): DataForm {
  return { type: 'result', title, fields: [hidden, ...fields] };
}

/** The stanza error for a refused command (status as the HTTP API would answer). */
function refusal(err: unknown): unknown {
  if (!(err instanceof AdminCommandFailed)) return err;
  if (err.status === 404) return new StanzaError('item-not-found', { text: err.message });
  if (err.status === 409) return new StanzaError('conflict', { text: err.message });
  if (err.status === 400) return commandError('bad-payload', err.message);
  return new StanzaError('internal-server-error', { text: err.message });
}

/**
 * The JIDs of a jid-multi field (one per value, or one per line of a value), deduplicated: bare,
 * or as given when `fullJids` (end-user-session ends one session of a full JID).
 */
function accountJids(f: DataForm | undefined, name: string, fullJids: boolean): string[] {
  const values = (f?.fields.find((x) => x.var === name)?.values ?? [])
    .flatMap((v) => v.split(/\s+/))
    .filter((v) => v !== '');
  if (values.length === 0) throw commandError('bad-payload', `${name}: at least one JID is required`);
  if (values.length > MAX_TARGETS)
    throw commandError('bad-payload', `${name}: at most ${MAX_TARGETS} JIDs at a time`);
  const out = new Set<string>();
  for (const v of values) {
    let j: Jid;
    try {
      j = parseJid(v);
    } catch {
      throw commandError('bad-payload', `${v} is not a JID`);
    }
    out.add(fullJids ? j.toString() : j.bare.toString());
  }
  return [...out];
}

export default defineModule({
  name: 'admin-commands',
  description:
    'XEP-0133 service administration for the accounts in `admins`: add, delete, disable and re-enable users, change passwords, end sessions, counts and lists of users, announcements',
  specs: ['XEP-0133'],
  enabledByDefault: true,
  options: z
    .object({
      /** The XEP-0133 commands offered (default all). */
      commands: z.array(z.enum(ADMIN_NODES)).default([...ADMIN_NODES]),
    })
    .strict()
    .prefault({}),
  setup(ctx) {
    const adhoc = ctx.use<AdhocApi>('adhoc');
    const runner = ctx.adminCommands;
    // Listed after adhoc (modules/index.ts): without it there is nothing to serve these through.
    if (!adhoc || !runner) {
      ctx.log.info('adhoc is disabled: no XEP-0133 admin commands');
      return;
    }
    const undo = adminCommands(ctx, ctx.options.commands).map((c) => adhoc.register(c));
    return () => {
      for (const u of undo) u();
    };
  },
});

function adminCommands(ctx: ModuleContext<unknown>, enabled: readonly AdminNode[]): AdhocCommand[] {
  const runner = ctx.adminCommands!;
  const run = async (requester: Jid, id: string, input: Record<string, unknown>): Promise<unknown> => {
    try {
      return await runner.run(id, input, { via: 'xmpp', by: requester.toString() });
    } catch (err) {
      throw refusal(err);
    }
  };
  const allowed = (requester: Jid) => ctx.isAdmin(requester);

  /** A command of one form (stage 0 answers it; stage 1 runs `complete` with the submitted form). */
  const oneForm = (
    name: AdminNode,
    title: string,
    fields: FormField[],
    complete: (requester: Jid, f: DataForm | undefined) => Promise<CommandResponse>,
    opts: { credentials?: boolean; instructions?: string } = {},
  ): AdhocCommand => ({
    node: `${NS_ADMIN}#${name}`,
    name: title,
    allowed,
    async execute({ requester, secure, stage, form: submitted }) {
      // Passwords travel in these forms: only where they may travel at login.
      if (opts.credentials && !secure)
        throw new StanzaError('not-authorized', { text: 'send passwords over an encrypted connection' });
      if (stage === 0) return { status: 'executing', form: form(title, fields, opts.instructions) };
      return complete(requester, submitted);
    },
  });

  /**
   * A command over `accountjids`: each JID in turn. One JID refused is the command's error; of
   * several, each refused one is an error note and the others are done.
   */
  const forEachAccount = (
    name: AdminNode,
    title: string,
    id: string,
    done: string,
    opts: { fullJids?: boolean } = {},
  ) =>
    oneForm(
      name,
      title,
      [field('accountjids', 'jid-multi', 'The Jabber ID(s)', true)],
      async (requester, f) => {
        const jids = accountJids(f, 'accountjids', opts.fullJids === true);
        const input = (jid: string) => ({
          jid,
          ...(id === 'user.disable' ? { reason: `by ${requester.bare.toString()}` } : {}),
        });
        if (jids.length === 1) {
          await run(requester, id, input(jids[0]!));
          return { status: 'completed', notes: [{ type: 'info', text: `${done}: ${jids[0]!}` }] };
        }
        const failed: string[] = [];
        for (const jid of jids) {
          try {
            await run(requester, id, input(jid));
          } catch (err) {
            failed.push(`${jid}: ${(err as Error).message}`);
          }
        }
        return {
          status: 'completed',
          notes: [
            ...(jids.length > failed.length
              ? [{ type: 'info' as const, text: `${done}: ${jids.length - failed.length} of ${jids.length}` }]
              : []),
            ...failed.map((text) => ({ type: 'error' as const, text })),
          ],
        };
      },
    );

  /** A command answering at once with one number (XEP-0133 §4.13–4.16). */
  const count = (
    name: AdminNode,
    title: string,
    field: string,
    pick: (h: HostStats) => number,
  ): AdhocCommand => ({
    node: `${NS_ADMIN}#${name}`,
    name: title,
    allowed,
    async execute({ requester }) {
      const stats = (await run(requester, 'server.stats', { host: ctx.domain })) as { hosts: HostStats[] };
      const n = pick(stats.hosts[0]!);
      return {
        status: 'completed',
        form: result(title, [{ var: field, type: 'text-single', label: title, values: [String(n)] }]),
      };
    },
  });

  /** A command listing JIDs, at most `max_items` of them (XEP-0133 §4.18–4.21). */
  const list = (
    name: AdminNode,
    title: string,
    resultField: string,
    jids: (requester: Jid) => Promise<string[]>,
  ) =>
    oneForm(name, title, [maxItems], async (requester, f) => {
      const max = (f && fieldValue(f, 'max_items')) ?? '100';
      // "none" (XEP-0133) or "all" (what Prosody offers): no limit.
      const unlimited = max === 'none' || max === 'all';
      if (!unlimited && !/^\d{1,6}$/.test(max))
        throw commandError('bad-payload', 'max_items: a number or "none"');
      const all = await jids(requester);
      const shown = unlimited ? all : all.slice(0, Number(max));
      return {
        status: 'completed',
        form: result(title, [
          { var: resultField, type: 'jid-multi', label: 'The list of all users', values: shown },
        ]),
        ...(shown.length < all.length
          ? { notes: [{ type: 'info', text: `${shown.length} of ${all.length} shown` }] }
          : {}),
      };
    });

  const online = async (requester: Jid, availableOnly: boolean) => {
    const { sessions } = (await run(requester, 'sessions.list', { host: ctx.domain })) as {
      sessions: { jid: string; state: string }[];
    };
    const bare = sessions
      .filter((s) => !availableOnly || s.state === 'available')
      .map((s) => parseJid(s.jid).bare.toString());
    return [...new Set(bare)].sort();
  };
  const users = async (requester: Jid, disabled?: boolean) =>
    (
      (await run(requester, 'user.list', {
        host: ctx.domain,
        limit: 100_000,
        ...(disabled !== undefined ? { disabled } : {}),
      })) as { users: string[] }
    ).users;

  const all: Record<AdminNode, AdhocCommand> = {
    'add-user': oneForm(
      'add-user',
      'Add a User',
      [
        field('accountjid', 'jid-single', 'The Jabber ID for the account to be added', true),
        field('password', 'text-private', 'The password for this account', true),
        field('password-verify', 'text-private', 'Retype password', true),
        field('email', 'text-multi', 'Email address'),
        field('given_name', 'text-single', 'Given name'),
        field('surname', 'text-single', 'Family name'),
      ],
      async (requester, f) => {
        const jid = f && fieldValue(f, 'accountjid');
        const password = f && fieldValue(f, 'password');
        if (!jid) throw commandError('bad-payload', 'accountjid is required');
        if (!password) throw commandError('bad-payload', 'a password is required');
        if (fieldValue(f, 'password-verify') !== password)
          throw commandError('bad-payload', 'the two passwords differ');
        const out = (await run(requester, 'user.add', { jid: parseBare(jid), password })) as { jid: string };
        return {
          status: 'completed',
          notes: [{ type: 'info', text: `The account ${out.jid} was created.` }],
        };
      },
      { credentials: true },
    ),
    'delete-user': forEachAccount('delete-user', 'Delete a User', 'user.remove', 'Accounts deleted'),
    'disable-user': forEachAccount('disable-user', 'Disable a User', 'user.disable', 'Accounts disabled'),
    'reenable-user': forEachAccount(
      'reenable-user',
      'Re-Enable a User',
      'user.enable',
      'Accounts enabled again',
    ),
    'end-user-session': forEachAccount(
      'end-user-session',
      'End User Session',
      'sessions.end',
      'Sessions ended',
      { fullJids: true },
    ),
    'change-user-password': oneForm(
      'change-user-password',
      'Change User Password',
      [
        field('accountjid', 'jid-single', 'The Jabber ID for this account', true),
        field('password', 'text-private', 'The password for this account', true),
      ],
      async (requester, f) => {
        const jid = f && fieldValue(f, 'accountjid');
        const password = f && fieldValue(f, 'password');
        if (!jid) throw commandError('bad-payload', 'accountjid is required');
        if (!password) throw commandError('bad-payload', 'a password is required');
        const out = (await run(requester, 'user.passwd', { jid: parseBare(jid), password })) as {
          jid: string;
          sessions: number;
        };
        return {
          status: 'completed',
          notes: [
            {
              type: 'info',
              text: `The password of ${out.jid} was changed; ${out.sessions} session(s) ended.`,
            },
          ],
        };
      },
      { credentials: true },
    ),
    'get-registered-users-num': count(
      'get-registered-users-num',
      'Get Number of Registered Users',
      'registeredusersnum',
      (h) => h.registered,
    ),
    'get-disabled-users-num': count(
      'get-disabled-users-num',
      'Get Number of Disabled Users',
      'disabledusersnum',
      (h) => h.disabled,
    ),
    'get-online-users-num': count(
      'get-online-users-num',
      'Get Number of Online Users',
      'onlineusersnum',
      (h) => h.online,
    ),
    'get-active-users-num': count(
      'get-active-users-num',
      'Get Number of Active Users',
      'activeusersnum',
      (h) => h.active,
    ),
    'get-registered-users-list': list(
      'get-registered-users-list',
      'Get List of Registered Users',
      'registereduserjids',
      (r) => users(r),
    ),
    'get-disabled-users-list': list(
      'get-disabled-users-list',
      'Get List of Disabled Users',
      'disableduserjids',
      (r) => users(r, true),
    ),
    'get-online-users-list': list(
      'get-online-users-list',
      'Get List of Online Users',
      'onlineuserjids',
      (r) => online(r, false),
    ),
    'get-active-users': list('get-active-users', 'Get List of Active Users', 'activeuserjids', (r) =>
      online(r, true),
    ),
    announce: oneForm(
      'announce',
      'Send Announcement to Online Users',
      [field('subject', 'text-single', 'Subject'), field('announcement', 'text-multi', 'Announcement', true)],
      async (requester, f) => {
        const body = f?.fields.find((x) => x.var === 'announcement')?.values.join('\n') ?? '';
        if (body.trim() === '') throw commandError('bad-payload', 'announcement is required');
        const subject = f && fieldValue(f, 'subject');
        const out = (await run(requester, 'server.announce', {
          host: ctx.domain,
          body,
          ...(subject ? { subject } : {}),
        })) as { recipients: number };
        return {
          status: 'completed',
          notes: [{ type: 'info', text: `Sent to ${out.recipients} session(s).` }],
        };
      },
    ),
  };
  return enabled.map((n) => all[n]);
}

interface HostStats {
  registered: number;
  disabled: number;
  online: number;
  active: number;
}

/** The bare JID of a jid-single value; bad-payload when it is not one. */
function parseBare(v: string): string {
  try {
    return parseJid(v.trim()).bare.toString();
  } catch {
    throw commandError('bad-payload', `${v} is not a JID`);
  }
}
