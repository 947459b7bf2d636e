import { xml, type Element } from '@natter/xml';
import { tryParseJid, type Jid } from '@natter/jid';
import { NS, StanzaError, buildForm, parseDateTime, parseForm, type DataForm } from '@natter/protocol';
import { emitterWith, TimeoutError, type Emitter } from '../core/emitter.js';
import type { PluginDefinition } from '../core/plugin.js';
import type { FormValues } from '../pubsub/xep-0060-pubsub.js';

export type MucRole = 'moderator' | 'participant' | 'visitor' | 'none';
export type MucAffiliation = 'owner' | 'admin' | 'member' | 'outcast' | 'none';

export interface Occupant {
  nick: string;
  /** Real JID, when the room shows it to us (non-anonymous rooms, or we are a moderator). */
  jid?: string;
  role: MucRole;
  affiliation: MucAffiliation;
  show?: string;
  status?: string;
  presence: Element;
}

export interface HistoryOptions {
  maxchars?: number;
  maxstanzas?: number;
  seconds?: number;
  since?: Date;
}

export type LeaveReason =
  'left' | 'kicked' | 'banned' | 'affiliation-changed' | 'members-only' | 'shutdown' | 'destroyed';

export interface MucEvents {
  /** We are in the room (XEP-0045 §7.2.3); `created` when the room was new (status 201). */
  joined: { room: string; nick: string; created: boolean; occupants: Occupant[] };
  /** We left or were removed (kicked, banned, room destroyed…). */
  left: { room: string; reason: LeaveReason; actor?: string; text?: string };
  'occupant-joined': { room: string; occupant: Occupant };
  'occupant-left': { room: string; occupant: Occupant; reason: LeaveReason; actor?: string; text?: string };
  'occupant-changed': { room: string; occupant: Occupant; previous: Occupant };
  /** XEP-0045 §7.6: someone (possibly we: `self`) changed nickname (status 303). */
  'nick-changed': { room: string; oldNick: string; newNick: string; self: boolean };
  /** A role or affiliation changed (§9-10). */
  'role-changed': { room: string; nick: string; role: MucRole; affiliation: MucAffiliation; self: boolean };
  message: {
    room: string;
    nick: string;
    body: string;
    self: boolean;
    delayed?: Date;
    id?: string;
    element: Element;
  };
  'private-message': { room: string; nick: string; body: string; element: Element };
  subject: { room: string; subject: string; nick?: string; element: Element };
  /** A mediated (§7.8.2) or direct (XEP-0249) invitation. */
  invite: { room: string; from: string; reason?: string; password?: string; element: Element };
  /** The room was destroyed (§10.9). */
  destroyed: { room: string; reason?: string; alternate?: string };
}

export interface ListItem {
  jid?: string;
  nick?: string;
  affiliation?: MucAffiliation;
  role?: MucRole;
  reason?: string;
}

export interface JoinOptions {
  password?: string;
  history?: HistoryOptions;
  /** ms to wait for the room's answer (default 15 s). */
  timeout?: number;
  /** Extra children for the join presence (e.g. `<show/>`). */
  children?: Element[];
}

export interface MucApi extends Emitter<MucEvents> {
  /** Joins a room (§7.2); resolves once our own presence comes back. */
  join(room: string | Jid, nick: string, opts?: JoinOptions): Promise<MucEvents['joined']>;
  /** Creates an instant room (§10.1.2): join, then accept the default configuration. */
  createInstant(room: string | Jid, nick: string, opts?: JoinOptions): Promise<MucEvents['joined']>;
  /** Creates a reserved room (§10.1.3): join, then submit the configuration form with `config`. */
  createReserved(
    room: string | Jid,
    nick: string,
    config: FormValues,
    opts?: JoinOptions,
  ): Promise<MucEvents['joined']>;
  /** The room configuration form (§10.2). */
  getConfig(room: string | Jid): Promise<DataForm>;
  /** Submits room configuration (muc#roomconfig_* fields). */
  configure(room: string | Jid, values: FormValues): Promise<void>;
  leave(room: string | Jid, status?: string): Promise<void>;
  changeNick(room: string | Jid, nick: string): Promise<void>;
  /** Sends a groupchat message; resolves with its id. */
  send(room: string | Jid, body: string, children?: Element[]): Promise<string>;
  /** Sends a private message to an occupant (§7.5). */
  sendPrivate(room: string | Jid, nick: string, body: string): Promise<string>;
  setSubject(room: string | Jid, subject: string): Promise<void>;
  kick(room: string | Jid, nick: string, reason?: string): Promise<void>;
  ban(room: string | Jid, jid: string | Jid, reason?: string): Promise<void>;
  setRole(room: string | Jid, nick: string, role: MucRole, reason?: string): Promise<void>;
  /** Grants or revokes membership, admin or owner status (§9.3-§10.7). */
  setAffiliation(
    room: string | Jid,
    jid: string | Jid,
    affiliation: MucAffiliation,
    reason?: string,
  ): Promise<void>;
  /** The ban list (`outcast`), member, admin or owner list (§9.1, §9.5, §10.5, §10.8). */
  affiliationList(room: string | Jid, affiliation: MucAffiliation): Promise<ListItem[]>;
  /** The moderator (or participant/visitor) list (§9.8). */
  roleList(room: string | Jid, role: MucRole): Promise<ListItem[]>;
  /** Changes several list entries (one request each, in order). */
  modifyList(room: string | Jid, items: ListItem[]): Promise<void>;
  /** Mediated invitation (§7.8.2). */
  invite(room: string | Jid, jid: string | Jid, reason?: string): Promise<void>;
  /** Destroys a room (§10.9). */
  destroy(room: string | Jid, opts?: { reason?: string; alternate?: string }): Promise<void>;
  /** Rooms we are in. */
  rooms(): string[];
  occupants(room: string | Jid): Occupant[];
  /** Our nick in a room. */
  nick(room: string | Jid): string | undefined;
}

interface RoomState {
  nick: string;
  joined: boolean;
  occupants: Map<string, Occupant>;
  pending?: { resolve(v: MucEvents['joined']): void; reject(e: Error): void; created: boolean };
  nickChange?: { resolve(): void; reject(e: Error): void; nick: string };
  leaving?: () => void;
}

function roomJid(room: string | Jid): string {
  const j = tryParseJid(String(room));
  if (!j || j.local === '')
    throw new StanzaError('jid-malformed', { text: `not a room JID: ${String(room)}` });
  return j.bare.toString();
}

function parseItem(el: Element): ListItem {
  return {
    jid: el.attr('jid'),
    nick: el.attr('nick'),
    affiliation: el.attr('affiliation') as MucAffiliation | undefined,
    role: el.attr('role') as MucRole | undefined,
    reason: el.getChildText('reason') || undefined,
  };
}

function leaveReason(codes: Set<string>, destroyed: boolean): LeaveReason {
  if (destroyed) return 'destroyed';
  if (codes.has('301')) return 'banned';
  if (codes.has('307')) return 'kicked';
  if (codes.has('321')) return 'affiliation-changed';
  if (codes.has('322')) return 'members-only';
  if (codes.has('332')) return 'shutdown';
  return 'left';
}

export interface MucOptions {
  /** Join the rooms we were in again after a new session (not after a resumed one); default true. */
  autoRejoin?: boolean;
}

/** XEP-0045 multi-user chat (XMPPRoom's equivalent), for any number of rooms. */
export function muc(options: MucOptions = {}): PluginDefinition<MucApi> {
  return {
    name: 'muc',
    setup(ctx) {
      const { client } = ctx;
      ctx.addFeature(NS.muc);
      ctx.addFeature(NS.conference);
      const rooms = new Map<string, RoomState>();
      /** Rooms to be in (for rejoining after a new session): nick and password. */
      const wanted = new Map<string, { nick: string; password?: string }>();
      const admin = (room: string, items: Element[]) =>
        client.iq(xml('iq', { type: 'set', to: room }, xml('query', { xmlns: NS.mucAdmin }, items)));
      const ownerSubmit = (room: string, values: FormValues | null) =>
        client.iq(
          xml(
            'iq',
            { type: 'set', to: room },
            xml(
              'query',
              { xmlns: NS.mucOwner },
              buildForm({
                type: 'submit',
                formType: values === null ? undefined : 'http://jabber.org/protocol/muc#roomconfig',
                fields:
                  values === null
                    ? []
                    : Object.entries(values).map(([k, v]) => ({
                        var: k,
                        values: Array.isArray(v) ? v : [typeof v === 'boolean' ? (v ? '1' : '0') : String(v)],
                      })),
              }),
            ),
          ),
        );
      const list = async (room: string | Jid, attr: 'affiliation' | 'role', value: string) => {
        const res = await client.request(
          'get',
          roomJid(room),
          xml('query', { xmlns: NS.mucAdmin }, xml('item', { [attr]: value })),
        );
        return (res?.getChildren('item', NS.mucAdmin) ?? []).map(parseItem);
      };

      const api: MucApi = emitterWith<MucApi>(
        {
          join(room: string | Jid, nick: string, opts: JoinOptions = {}) {
            const r = roomJid(room);
            const h = opts.history;
            const state: RoomState = { nick, joined: false, occupants: new Map() };
            const p = new Promise<MucEvents['joined']>((resolve, reject) => {
              state.pending = { resolve, reject, created: false };
            });
            rooms.set(r, state);
            wanted.set(r, opts.password === undefined ? { nick } : { nick, password: opts.password });
            const timeout = opts.timeout ?? 15000;
            const timer = setTimeout(
              () => state.pending?.reject(new TimeoutError(`no answer from ${r} within ${timeout} ms`)),
              timeout,
            );
            client
              .send(
                xml(
                  'presence',
                  { to: `${r}/${nick}` },
                  xml(
                    'x',
                    { xmlns: NS.muc },
                    h &&
                      xml('history', {
                        maxchars: h.maxchars,
                        maxstanzas: h.maxstanzas,
                        seconds: h.seconds,
                        since: h.since?.toISOString(),
                      }),
                    opts.password !== undefined && xml('password', null, opts.password),
                  ),
                  opts.children ?? [],
                ),
              )
              .catch((e: Error) => state.pending?.reject(e));
            return p.finally(() => {
              clearTimeout(timer);
              state.pending = undefined;
              if (!state.joined && rooms.get(r) === state) rooms.delete(r);
            });
          },
          async createInstant(room: string | Jid, nick: string, opts: JoinOptions = {}) {
            const joined = await api.join(room, nick, opts);
            if (joined.created) await ownerSubmit(joined.room, null);
            return joined;
          },
          async createReserved(room: string | Jid, nick: string, config: FormValues, opts: JoinOptions = {}) {
            const joined = await api.join(room, nick, opts);
            await api.getConfig(joined.room);
            await ownerSubmit(joined.room, config);
            return joined;
          },
          async getConfig(room: string | Jid) {
            const res = await client.request('get', roomJid(room), xml('query', { xmlns: NS.mucOwner }));
            const x = res?.getChild('x', NS.dataForms);
            return x ? parseForm(x) : { type: 'form' as const, fields: [] };
          },
          async configure(room: string | Jid, values: FormValues) {
            await ownerSubmit(roomJid(room), values);
          },
          async leave(room: string | Jid, status?: string) {
            const r = roomJid(room);
            const state = rooms.get(r);
            if (!state) return;
            const done = new Promise<void>((resolve) => (state.leaving = resolve));
            await client.send(
              xml(
                'presence',
                { to: `${r}/${state.nick}`, type: 'unavailable' },
                status !== undefined && xml('status', null, status),
              ),
            );
            wanted.delete(r);
            await Promise.race([done, new Promise((res) => setTimeout(res, 5000))]);
            rooms.delete(r);
          },
          async changeNick(room: string | Jid, nick: string) {
            const r = roomJid(room);
            const state = rooms.get(r);
            if (!state) throw new StanzaError('not-acceptable', { text: `not in ${r}` });
            const done = new Promise<void>(
              (resolve, reject) => (state.nickChange = { resolve, reject, nick }),
            );
            await client.send(xml('presence', { to: `${r}/${nick}` }));
            await Promise.race([
              done,
              new Promise((_, rej) =>
                setTimeout(() => rej(new TimeoutError('nick change not confirmed')), 10000),
              ),
            ]);
          },
          async send(room: string | Jid, body: string, children: Element[] = []) {
            return client.sendMessage({ to: roomJid(room), type: 'groupchat', body, children });
          },
          async sendPrivate(room: string | Jid, nick: string, body: string) {
            return client.sendMessage({
              to: `${roomJid(room)}/${nick}`,
              type: 'chat',
              body,
              children: [xml('x', { xmlns: NS.mucUser })],
            });
          },
          async setSubject(room: string | Jid, subject: string) {
            await client.send(
              xml('message', { to: roomJid(room), type: 'groupchat' }, xml('subject', null, subject)),
            );
          },
          async kick(room: string | Jid, nick: string, reason?: string) {
            await api.setRole(room, nick, 'none', reason);
          },
          async ban(room: string | Jid, jid: string | Jid, reason?: string) {
            await api.setAffiliation(room, jid, 'outcast', reason);
          },
          async setRole(room: string | Jid, nick: string, role: MucRole, reason?: string) {
            await admin(roomJid(room), [
              xml('item', { nick, role }, reason !== undefined && xml('reason', null, reason)),
            ]);
          },
          async setAffiliation(
            room: string | Jid,
            jid: string | Jid,
            affiliation: MucAffiliation,
            reason?: string,
          ) {
            await admin(roomJid(room), [
              xml(
                'item',
                { jid: tryParseJid(String(jid))?.bare.toString() ?? String(jid), affiliation },
                reason !== undefined && xml('reason', null, reason),
              ),
            ]);
          },
          affiliationList: (room: string | Jid, affiliation: MucAffiliation) =>
            list(room, 'affiliation', affiliation),
          roleList: (room: string | Jid, role: MucRole) => list(room, 'role', role),
          async modifyList(room: string | Jid, items: ListItem[]) {
            // One request per item: XEP-0045 allows several items per request, but some servers
            // (Prosody 0.12) apply only the first.
            for (const i of items) {
              await admin(roomJid(room), [
                xml(
                  'item',
                  { jid: i.jid, nick: i.nick, affiliation: i.affiliation, role: i.role },
                  i.reason !== undefined && xml('reason', null, i.reason),
                ),
              ]);
            }
          },
          async invite(room: string | Jid, jid: string | Jid, reason?: string) {
            await client.send(
              xml(
                'message',
                { to: roomJid(room) },
                xml(
                  'x',
                  { xmlns: NS.mucUser },
                  xml('invite', { to: String(jid) }, reason !== undefined && xml('reason', null, reason)),
                ),
              ),
            );
          },
          async destroy(room: string | Jid, opts: { reason?: string; alternate?: string } = {}) {
            await client.iq(
              xml(
                'iq',
                { type: 'set', to: roomJid(room) },
                xml(
                  'query',
                  { xmlns: NS.mucOwner },
                  xml(
                    'destroy',
                    { jid: opts.alternate },
                    opts.reason !== undefined && xml('reason', null, opts.reason),
                  ),
                ),
              ),
            );
          },
          rooms: () => [...rooms.entries()].filter(([, s]) => s.joined).map(([r]) => r),
          occupants: (room: string | Jid) => [...(rooms.get(roomJid(room))?.occupants.values() ?? [])],
          nick: (room: string | Jid) => rooms.get(roomJid(room))?.nick,
        },
        ctx.reportError,
      );

      client.on('presence', (p) => {
        const from = tryParseJid(p.attr('from') ?? '');
        if (!from) return;
        const r = from.bare.toString();
        const state = rooms.get(r);
        if (!state) return;
        const nick = from.resource;
        const type = p.attr('type');
        if (type === 'error') {
          if (state.pending && nick === state.nick) state.pending.reject(StanzaError.fromStanza(p));
          else if (state.nickChange && nick === state.nickChange.nick) {
            state.nickChange.reject(StanzaError.fromStanza(p));
            state.nickChange = undefined;
          }
          return;
        }
        const x = p.getChild('x', NS.mucUser);
        const item = x?.getChild('item', NS.mucUser);
        const codes = new Set((x?.getChildren('status', NS.mucUser) ?? []).map((s) => s.attr('code') ?? ''));
        const self = codes.has('110') || nick === state.nick;
        const occupant: Occupant = {
          nick,
          jid: item?.attr('jid'),
          role: (item?.attr('role') as MucRole | undefined) ?? 'none',
          affiliation: (item?.attr('affiliation') as MucAffiliation | undefined) ?? 'none',
          show: p.getChildText('show'),
          status: p.getChildText('status'),
          presence: p,
        };
        const previous = state.occupants.get(nick);
        if (type === 'unavailable') {
          state.occupants.delete(nick);
          if (codes.has('303')) {
            const newNick = item?.attr('nick') ?? '';
            if (self) {
              state.nick = newNick;
              const w = wanted.get(r);
              if (w) w.nick = newNick;
            }
            api.emit('nick-changed', { room: r, oldNick: nick, newNick, self });
            return;
          }
          const destroy = x?.getChild('destroy', NS.mucUser);
          const reason = leaveReason(codes, destroy !== undefined);
          const actor = item?.getChild('actor', NS.mucUser)?.attr('nick');
          const text =
            item?.getChildText('reason', NS.mucUser) ||
            destroy?.getChildText('reason', NS.mucUser) ||
            undefined;
          if (self) {
            if (state.pending)
              state.pending.reject(new StanzaError('not-allowed', { text: 'removed while joining' }));
            rooms.delete(r);
            wanted.delete(r);
            state.leaving?.();
            if (destroy) api.emit('destroyed', { room: r, reason: text, alternate: destroy.attr('jid') });
            api.emit('left', { room: r, reason, actor, text });
          } else if (state.joined)
            api.emit('occupant-left', { room: r, occupant: previous ?? occupant, reason, actor, text });
          return;
        }
        state.occupants.set(nick, occupant);
        if (self && state.pending) {
          state.joined = true;
          state.pending.resolve({
            room: r,
            nick,
            created: codes.has('201'),
            occupants: [...state.occupants.values()],
          });
          api.emit('joined', {
            room: r,
            nick,
            created: codes.has('201'),
            occupants: [...state.occupants.values()],
          });
          return;
        }
        if (self && state.nickChange && nick === state.nickChange.nick) {
          state.nick = nick;
          state.nickChange.resolve();
          state.nickChange = undefined;
        }
        if (!state.joined) return; // occupants present before us, reported by 'joined'
        if (!previous) api.emit('occupant-joined', { room: r, occupant });
        else {
          if (previous.role !== occupant.role || previous.affiliation !== occupant.affiliation) {
            api.emit('role-changed', {
              room: r,
              nick,
              role: occupant.role,
              affiliation: occupant.affiliation,
              self,
            });
          }
          api.emit('occupant-changed', { room: r, occupant, previous });
        }
      });

      client.on('message', (m) => {
        const from = tryParseJid(m.attr('from') ?? '');
        if (!from) return;
        const r = from.bare.toString();
        const type = m.attr('type') ?? 'normal';
        const userX = m.getChild('x', NS.mucUser);
        const invite = userX?.getChild('invite', NS.mucUser);
        if (invite && type !== 'error') {
          api.emit('invite', {
            room: r,
            from: invite.attr('from') ?? '',
            reason: invite.getChildText('reason', NS.mucUser) || undefined,
            password: userX?.getChildText('password', NS.mucUser),
            element: m,
          });
          return;
        }
        const direct = m.getChild('x', NS.conference);
        if (direct && type !== 'error') {
          api.emit('invite', {
            room: direct.attr('jid') ?? '',
            from: from.toString(),
            reason: direct.attr('reason'),
            password: direct.attr('password'),
            element: m,
          });
          return;
        }
        const state = rooms.get(r);
        if (!state) return;
        const body = m.getChildText('body');
        if (type === 'groupchat') {
          const subject = m.getChild('subject');
          if (subject && body === undefined) {
            api.emit('subject', {
              room: r,
              subject: subject.text(),
              nick: from.resource || undefined,
              element: m,
            });
            return;
          }
          if (body === undefined) return;
          const delay = m.getChild('delay', NS.delay);
          api.emit('message', {
            room: r,
            nick: from.resource,
            body,
            self: from.resource === state.nick,
            delayed: delay ? parseDateTime(delay.attr('stamp')) : undefined,
            id: m.attr('id'),
            element: m,
          });
        } else if ((type === 'chat' || type === 'normal') && from.resource && body !== undefined) {
          api.emit('private-message', { room: r, nick: from.resource, body, element: m });
        }
      });

      client.on('offline', ({ resumable, manual }) => {
        if (!resumable) rooms.clear();
        if (manual) wanted.clear();
      });
      client.on('online', ({ resumed }) => {
        if (resumed || !(options.autoRejoin ?? true)) return;
        for (const [room, w] of wanted) {
          if (rooms.has(room)) continue;
          api
            .join(
              room,
              w.nick,
              w.password === undefined
                ? { history: { maxstanzas: 0 } }
                : { password: w.password, history: { maxstanzas: 0 } },
            )
            .catch((err: unknown) => client.emit('error', err as Error));
        }
      });
      return api;
    },
  };
}
