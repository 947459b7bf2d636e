import { z } from 'zod';
import { xml } from '@natter/xml';
import type { Jid } from '@natter/jid';
import { AccountExistsError } from '../accounts/account-store.js';
import { NATTER_VERSION } from '../version.js';
import type { ServerCore } from '../core/server-core.js';
import type { SessionRecord } from '../core/session.js';
import { isLocal } from '../core/session-registry.js';
import { AdminActionError, endSessions, hostedAccount, removeAccount } from './actions.js';
import { defineCommand, type AdminCommand } from './registry.js';
import type { MucApi } from '../modules/muc/api.js';

/**
 * The administrator's commands (admin/registry.ts serves them on the CLI, the HTTP API and
 * XEP-0133). A new command is one entry in ADMIN_COMMANDS.
 */

/** Longest password accepted (as at in-band registration and the ad-hoc change-password). */
const MAX_PASSWORD = 1024;
/** Most accounts one `user.list` answers. */
const MAX_LIST = 100_000;
/** Longest announcement. */
const MAX_ANNOUNCEMENT = 16 * 1024;

const jidField = z.string().min(3).max(3071).describe('the account, USER@HOST');
const password = z.string().min(1).max(MAX_PASSWORD).describe('the password (never stored: SCRAM keys are)');
const sessionsEnded = z.number().int().describe('how many sessions were ended');
const hostField = z.string().min(1).max(1023).optional().describe('a hosted domain (default: every one)');

const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? '' : 's'}`;

/** The hosted domains `host` names (one, or all when absent); 400 when it is not hosted. */
function hostsOf(core: ServerCore, host: string | undefined): string[] {
  if (host === undefined) return [...core.hosts.keys()];
  const h = host.toLowerCase();
  if (!core.hosts.has(h))
    throw new AdminActionError(
      400,
      `${host} is not hosted by this server (hosts: ${[...core.hosts.keys()].join(', ')})`,
    );
  return [h];
}

/** Every session record of the cluster as this node knows them: its own, then the others'. */
function allSessions(core: ServerCore): SessionRecord[] {
  return [...core.sessions.all(), ...core.sessions.remote()];
}

const userAdd = defineCommand({
  id: 'user.add',
  summary: 'Create an account',
  mutates: true,
  cli: { words: ['user', 'add'], positional: 'jid', secret: 'password' },
  http: { method: 'POST', path: '/api/users/add' },
  input: z.object({ jid: jidField, password }).strict(),
  output: z.object({ jid: z.string() }),
  async run(core, { jid, password }) {
    const account = hostedAccount(core, jid);
    try {
      await core.accounts.create(account.local, account.domain, password);
    } catch (err) {
      if (err instanceof AccountExistsError)
        throw new AdminActionError(409, `account ${account.toString()} already exists`);
      throw err;
    }
    return { jid: account.toString() };
  },
  text: (o) => `created ${o.jid}`,
});

const userRemove = defineCommand({
  id: 'user.remove',
  summary: 'Delete an account, its data and its sessions',
  description:
    'The account first (no new login), then its sessions (stream error not-authorized), then its data: roster, archive, offline messages, vCard, PEP, blocking list, last activity.',
  mutates: true,
  cli: { words: ['user', 'remove'], positional: 'jid' },
  http: { method: 'POST', path: '/api/users/remove' },
  input: z.object({ jid: jidField }).strict(),
  output: z.object({ jid: z.string(), sessions: sessionsEnded }),
  async run(core, { jid }) {
    const account = hostedAccount(core, jid);
    const { sessions } = await removeAccount(core, account);
    return { jid: account.toString(), sessions };
  },
  text: (o) => `removed ${o.jid} and its data; ${plural(o.sessions, 'session')} ended`,
});

const userPasswd = defineCommand({
  id: 'user.passwd',
  summary: "Change an account's password",
  description:
    'Every session of the account ends with <reset/> (RFC 6120 §4.9.3.16) and its FAST tokens are dropped: the old password logs nobody in any more.',
  mutates: true,
  cli: { words: ['user', 'passwd'], positional: 'jid', secret: 'password' },
  http: { method: 'POST', path: '/api/users/password' },
  input: z.object({ jid: jidField, password }).strict(),
  output: z.object({ jid: z.string(), sessions: sessionsEnded }),
  async run(core, { jid, password }) {
    const account = hostedAccount(core, jid);
    if (!(await core.accounts.setPassword(account.local, account.domain, password)))
      throw new AdminActionError(404, `no account ${account.toString()}`);
    const { sessions } = await endSessions(core, account, 'password');
    return { jid: account.toString(), sessions };
  },
  text: (o) => `password changed for ${o.jid}; ${plural(o.sessions, 'session')} ended`,
});

const userDisable = defineCommand({
  id: 'user.disable',
  summary: 'Disable an account',
  description:
    'Its sessions end (not-authorized) and logins fail with <account-disabled/> until it is enabled again; its data, contacts and offline messages stay.',
  mutates: true,
  cli: { words: ['user', 'disable'], positional: 'jid' },
  http: { method: 'POST', path: '/api/users/disable' },
  input: z
    .object({
      jid: jidField,
      reason: z.string().max(1024).default('').describe('why (kept with the account, shown by user.info)'),
    })
    .strict(),
  output: z.object({ jid: z.string(), sessions: sessionsEnded }),
  async run(core, { jid, reason }) {
    const account = hostedAccount(core, jid);
    if (!(await core.accounts.setDisabled(account.local, account.domain, { reason })))
      throw new AdminActionError(404, `no account ${account.toString()}`);
    const sessions = await core.kickAccount(account, 'not-authorized', {
      text: 'the account was disabled by the administrator',
    });
    return { jid: account.toString(), sessions };
  },
  text: (o) => `disabled ${o.jid}; ${plural(o.sessions, 'session')} ended`,
});

const userEnable = defineCommand({
  id: 'user.enable',
  summary: 'Enable a disabled account again',
  mutates: true,
  cli: { words: ['user', 'enable'], positional: 'jid' },
  http: { method: 'POST', path: '/api/users/enable' },
  input: z.object({ jid: jidField }).strict(),
  output: z.object({ jid: z.string() }),
  async run(core, { jid }) {
    const account = hostedAccount(core, jid);
    if (!(await core.accounts.setDisabled(account.local, account.domain, false)))
      throw new AdminActionError(404, `no account ${account.toString()}`);
    return { jid: account.toString() };
  },
  text: (o) => `enabled ${o.jid}`,
});

const sessionView = z.object({
  jid: z.string(),
  state: z.enum(['available', 'connected', 'hibernated']),
  node: z.string().optional().describe('the cluster node holding it'),
  ip: z.string().optional(),
  transport: z.string().optional(),
  since: z.string().optional().describe('ISO 8601'),
});

function viewSession(core: ServerCore, s: SessionRecord): z.input<typeof sessionView> {
  if (!isLocal(s))
    return { jid: s.jid.toString(), state: s.available ? 'available' : 'connected', node: s.node };
  return {
    jid: s.jid.toString(),
    state: s.hibernated ? 'hibernated' : s.available ? 'available' : 'connected',
    ...(core.cluster ? { node: core.cluster.nodeId } : {}),
    ip: s.ip,
    transport: s.stream.transport.kind,
    since: new Date(s.createdAt).toISOString(),
  };
}

const userInfo = defineCommand({
  id: 'user.info',
  summary: 'An account: when it was created, whether it is disabled, its sessions',
  mutates: false,
  cli: { words: ['user', 'info'], positional: 'jid' },
  http: { method: 'GET', path: '/api/users/info' },
  input: z.object({ jid: jidField }).strict(),
  output: z.object({
    jid: z.string(),
    createdAt: z.string().describe('ISO 8601'),
    disabled: z.object({ at: z.string(), reason: z.string() }).optional(),
    sessions: z.array(sessionView),
  }),
  async run(core, { jid }) {
    const account = hostedAccount(core, jid);
    const info = await core.accounts.info(account.local, account.domain);
    if (!info) throw new AdminActionError(404, `no account ${account.toString()}`);
    return {
      jid: account.toString(),
      createdAt: new Date(info.createdAt).toISOString(),
      ...(info.disabled
        ? { disabled: { at: new Date(info.disabled.at).toISOString(), reason: info.disabled.reason } }
        : {}),
      sessions: core.sessions.ofAccount(account).map((s) => viewSession(core, s)),
    };
  },
  text: (o) =>
    [
      `${o.jid}: created ${o.createdAt}`,
      o.disabled
        ? `disabled since ${o.disabled.at}${o.disabled.reason ? `: ${o.disabled.reason}` : ''}`
        : 'enabled',
      `${plural(o.sessions.length, 'session')}`,
      ...o.sessions.map(
        (s) =>
          `  ${s.jid}\t${s.state}${s.transport ? `\t${s.transport}\t${s.ip}` : ''}${s.node ? `\t${s.node}` : ''}`,
      ),
    ].join('\n'),
});

const userList = defineCommand({
  id: 'user.list',
  summary: 'The accounts of a hosted domain',
  mutates: false,
  cli: { words: ['user', 'list'], positional: 'host' },
  http: { method: 'GET', path: '/api/users' },
  input: z
    .object({
      host: hostField.describe('a hosted domain (default: the first of hosts)'),
      disabled: z.boolean().optional().describe('true: only disabled accounts; false: only enabled ones'),
      search: z.string().max(1023).optional().describe('only usernames containing this text'),
      after: z
        .string()
        .max(1023)
        .optional()
        .describe('only usernames sorted after this one (the next page: the last one of the previous)'),
      limit: z.number().int().min(1).max(MAX_LIST).default(10_000).describe('at most this many'),
    })
    .strict(),
  output: z.object({
    host: z.string(),
    users: z.array(z.string()).describe('bare JIDs, sorted'),
    more: z.boolean().describe('there are more than `limit`'),
  }),
  async run(core, { host, disabled, search, after, limit }) {
    const domain = hostsOf(core, host ?? core.config.hosts[0]!.toLowerCase())[0]!;
    // `after` may be given as a bare JID (the last line of the previous page): its username.
    const from = after?.endsWith(`@${domain}`) ? after.slice(0, -domain.length - 1) : after;
    const names = await core.accounts.list(domain, {
      ...(disabled !== undefined ? { disabled } : {}),
      ...(search ? { contains: search } : {}),
      ...(from ? { after: from } : {}),
      limit: limit + 1,
    });
    return {
      host: domain,
      users: names.slice(0, limit).map((u) => `${u}@${domain}`),
      more: names.length > limit,
    };
  },
  text: (o) => [...o.users, ...(o.more ? [`… more than ${o.users.length}: pass --limit`] : [])].join('\n'),
});

const sessionsList = defineCommand({
  id: 'sessions.list',
  summary: 'Online sessions (of the whole cluster), optionally of one domain',
  mutates: false,
  cli: { words: ['sessions', 'list'] },
  http: { method: 'GET', path: '/api/sessions' },
  input: z.object({ host: hostField }).strict(),
  output: z.object({ sessions: z.array(sessionView) }),
  async run(core, { host }) {
    const domains = new Set(hostsOf(core, host));
    return {
      sessions: allSessions(core)
        .filter((s) => domains.has(s.jid.domain))
        .map((s) => viewSession(core, s))
        .sort((a, b) => (a.jid < b.jid ? -1 : a.jid > b.jid ? 1 : 0)),
    };
  },
  text: (o) =>
    o.sessions
      .map(
        (s) =>
          `${s.jid}\t${s.state}\t${s.transport ?? ''}\t${s.ip ?? ''}\t${s.since ?? ''}${s.node ? `\t${s.node}` : ''}`,
      )
      .join('\n') || 'no sessions',
});

const sessionsEnd = defineCommand({
  id: 'sessions.end',
  summary: "End an account's sessions, or one session (a full JID)",
  mutates: true,
  cli: { words: ['sessions', 'end'], positional: 'jid' },
  http: { method: 'POST', path: '/api/sessions/end' },
  input: z
    .object({ jid: z.string().min(3).max(3071).describe('USER@HOST, or USER@HOST/RESOURCE for one session') })
    .strict(),
  output: z.object({ jid: z.string(), sessions: sessionsEnded }),
  async run(core, { jid }) {
    const account = hostedAccount(core, jid);
    const resource = jid.includes('/') ? jid.slice(jid.indexOf('/') + 1) : '';
    const target: Jid = resource ? account.withResource(resource) : account;
    const { sessions } = await endSessions(core, target, 'admin');
    return { jid: target.toString(), sessions };
  },
  text: (o) => `${plural(o.sessions, 'session')} of ${o.jid} ended`,
});

const hostStats = z.object({
  host: z.string(),
  registered: z.number().int(),
  disabled: z.number().int(),
  online: z.number().int().describe('accounts with at least one session'),
  active: z.number().int().describe('accounts with an available session'),
  sessions: z.number().int(),
});

const stats = defineCommand({
  id: 'server.stats',
  summary: 'Accounts, online users, sessions, streams and uptime',
  mutates: false,
  cli: { words: ['server', 'stats'] },
  http: { method: 'GET', path: '/api/stats' },
  input: z.object({ host: hostField }).strict(),
  output: z.object({
    version: z.string(),
    uptimeSeconds: z.number().int(),
    hosts: z.array(hostStats),
    s2sStreams: z.number().int(),
    components: z.number().int(),
  }),
  async run(core, { host }) {
    const hosts = [];
    const records = allSessions(core);
    for (const domain of hostsOf(core, host)) {
      const mine = records.filter((s) => s.jid.domain === domain);
      hosts.push({
        host: domain,
        registered: await core.accounts.count(domain),
        disabled: await core.accounts.count(domain, { disabled: true }),
        online: new Set(mine.map((s) => s.jid.local)).size,
        active: new Set(mine.filter((s) => s.available).map((s) => s.jid.local)).size,
        sessions: mine.length,
      });
    }
    return {
      version: NATTER_VERSION,
      uptimeSeconds: Math.floor((Date.now() - core.startedAt) / 1000),
      hosts,
      s2sStreams: core.s2sInbound.size + (core.federation?.list().length ?? 0),
      components: core.components.size,
    };
  },
  text: (o) =>
    [
      `natter ${o.version}, up ${o.uptimeSeconds} s; ${plural(o.s2sStreams, 'server-to-server stream')}, ${plural(o.components, 'component')}`,
      ...o.hosts.map(
        (h) =>
          `${h.host}: ${plural(h.registered, 'account')} (${h.disabled} disabled), ${h.online} online (${h.active} available), ${plural(h.sessions, 'session')}`,
      ),
    ].join('\n'),
});

const announce = defineCommand({
  id: 'server.announce',
  summary: 'Send a message to every online user',
  description:
    "A headline message from the domain to every available session of the domain's accounts (XEP-0133 announce).",
  mutates: true,
  cli: { words: ['server', 'announce'] },
  http: { method: 'POST', path: '/api/announce' },
  input: z
    .object({
      host: hostField,
      subject: z.string().max(1024).optional(),
      body: z.string().min(1).max(MAX_ANNOUNCEMENT).describe('the announcement'),
    })
    .strict(),
  output: z.object({ recipients: z.number().int().describe('sessions it was sent to') }),
  async run(core, { host, subject, body }) {
    let recipients = 0;
    const domains = new Set(hostsOf(core, host));
    for (const s of allSessions(core)) {
      if (!domains.has(s.jid.domain) || !s.available) continue;
      core.router.deliver(
        s,
        xml(
          'message',
          { type: 'headline', from: s.jid.domain, to: s.jid.toString() },
          ...(subject ? [xml('subject', {}, subject)] : []),
          xml('body', {}, body),
        ),
      );
      recipients++;
    }
    return { recipients };
  },
  text: (o) => `announced to ${plural(o.recipients, 'session')}`,
});

const roomsList = defineCommand({
  id: 'rooms.list',
  summary: 'The multi-user chat rooms of the hosted domains (module muc)',
  description:
    "Each host's MUC service (conference.<host>) as its muc module reports it; in a cluster, the rooms are run by one node: ask that one. A host without the muc module lists none.",
  mutates: false,
  cli: { words: ['rooms', 'list'], positional: 'host' },
  http: { method: 'GET', path: '/api/rooms' },
  input: z.object({ host: hostField }).strict(),
  output: z.object({
    rooms: z.array(
      z.object({
        jid: z.string(),
        name: z.string(),
        occupants: z.number().int(),
        persistent: z.boolean(),
        public: z.boolean(),
        locked: z.boolean(),
      }),
    ),
  }),
  async run(core, { host }) {
    const rooms = [];
    for (const domain of hostsOf(core, host))
      rooms.push(...((core.hosts.get(domain)?.provided.get('muc') as MucApi | undefined)?.rooms() ?? []));
    return { rooms: rooms.sort((a, b) => (a.jid < b.jid ? -1 : a.jid > b.jid ? 1 : 0)) };
  },
  text: (o) =>
    o.rooms
      .map(
        (r) =>
          `${r.jid}\t${plural(r.occupants, 'occupant')}${r.persistent ? '\tpersistent' : ''}${r.public ? '' : '\thidden'}${r.locked ? '\tlocked' : ''}`,
      )
      .join('\n') || 'no rooms',
});

/** Every command, in the order the CLI's help and the OpenAPI document list them. */
export const ADMIN_COMMANDS: readonly AdminCommand[] = [
  userAdd,
  userRemove,
  userPasswd,
  userDisable,
  userEnable,
  userInfo,
  userList,
  sessionsList,
  sessionsEnd,
  stats,
  announce,
  roomsList,
] as unknown as readonly AdminCommand[];

/** The command of that id; undefined when there is none. */
export function adminCommand(id: string): AdminCommand | undefined {
  return ADMIN_COMMANDS.find((c) => c.id === id);
}
