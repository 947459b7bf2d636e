/**
 * Load-generator worker process. Holds a share of the client sessions and obeys commands from the
 * coordinator over the IPC channel (see `pool.ts`). All timing of a message (send → delivery) happens
 * inside one worker, since a message's recipients are always sessions of the same worker.
 */
import { performance } from 'node:perf_hooks';
import { Histogram } from './histogram.js';
import { XmppSession, type TlsMode } from '../xmpp/session.js';
import { attr } from '../xmpp/framer.js';
import { loadScramCache, saveScramCache, scramStats } from '../xmpp/scram.js';
import type { Command, Reply, WorkerConfig, TrafficSpec } from './protocol.js';
import {
  floodReport,
  startFlood,
  startMucFlood,
  startUnauth,
  stopFlood,
  stopUnauth,
  unauthReport,
} from './flood.js';

let cfg!: WorkerConfig;
const online = new Map<number, XmppSession>();
let addrIdx = 0;
let presences = 0;
let messagesIn = 0;
const errors: string[] = [];

function noteError(e: unknown): void {
  if (errors.length < 20) errors.push(e instanceof Error ? e.message : String(e));
}

function nextAddress(): string | undefined {
  const a = cfg.localAddresses;
  if (a.length === 0) return undefined;
  return a[addrIdx++ % a.length];
}

function jidOf(id: number): string {
  return `${cfg.userPrefix}${id}@${cfg.domain}`;
}

function newSession(id: number, rosterGet: boolean, resource: string): XmppSession {
  return new XmppSession({
    host: cfg.host,
    port: cfg.tls === 'direct' ? (cfg.tlsPort ?? cfg.port) : cfg.port,
    localAddress: nextAddress(),
    domain: cfg.domain,
    user: `${cfg.userPrefix}${id}`,
    password: cfg.password,
    resource,
    tls: cfg.tls as TlsMode,
    mech: cfg.mech,
    rosterGet,
    timeoutMs: cfg.loginTimeoutMs,
  });
}

let mechUsed = '';

/** Runs `job` over `items` with at most `k` in flight. */
async function pool<T>(
  items: T[],
  k: number,
  job: (item: T) => Promise<void>,
  until = Infinity,
): Promise<void> {
  let next = 0;
  const lanes: Promise<void>[] = [];
  for (let l = 0; l < Math.min(k, items.length); l++) {
    lanes.push(
      (async () => {
        while (next < items.length && performance.now() < until) {
          const item = items[next++]!;
          await job(item);
        }
      })(),
    );
  }
  await Promise.all(lanes);
}

async function login(ids: number[], concurrency: number, rosterGet: boolean): Promise<Reply> {
  const t0 = performance.now();
  let ok = 0;
  let failed = 0;
  const hist = new Histogram();
  await pool(ids, concurrency, async (id) => {
    const s = newSession(id, rosterGet, 'bench');
    s.onElement = onElement;
    const t = performance.now();
    try {
      await s.login();
      hist.record((performance.now() - t) * 1000);
      mechUsed = s.mechUsed;
      ok++;
      online.set(id, s);
      s.onClose = () => {
        if (online.get(id) === s) online.delete(id);
      };
    } catch (e) {
      failed++;
      noteError(e);
    }
  });
  return { ok, failed, elapsedMs: performance.now() - t0, hist: hist.toJSON(), mech: mechUsed };
}

async function loginLoop(
  ids: number[],
  concurrency: number,
  durationMs: number,
  rosterGet: boolean,
): Promise<Reply> {
  const t0 = performance.now();
  const until = t0 + durationMs;
  let ok = 0;
  let failed = 0;
  const hist = new Histogram();
  // Endless cycle over the ids: each lane takes the next id, logs in, closes.
  let next = 0;
  const lanes: Promise<void>[] = [];
  for (let l = 0; l < concurrency; l++) {
    lanes.push(
      (async () => {
        while (performance.now() < until) {
          const id = ids[next++ % ids.length]!;
          const s = newSession(id, rosterGet, `l${next}`);
          const t = performance.now();
          try {
            await s.login();
            hist.record((performance.now() - t) * 1000);
            mechUsed = s.mechUsed;
            ok++;
          } catch (e) {
            failed++;
            noteError(e);
          }
          s.close();
        }
      })(),
    );
  }
  await Promise.all(lanes);
  return { ok, failed, elapsedMs: performance.now() - t0, hist: hist.toJSON(), mech: mechUsed };
}

async function logoutAll(): Promise<Reply> {
  const n = online.size;
  for (const s of online.values()) s.close();
  online.clear();
  await new Promise((r) => setTimeout(r, 300));
  return { ok: n };
}

// ---- rooms -------------------------------------------------------------------------------------

interface Room {
  jid: string;
  members: number[];
}
let rooms: Room[] = [];
const joinWaiters = new Map<string, { ok: () => void; fail: (why: string) => void }>();

async function joinRooms(list: Room[], concurrency: number): Promise<Reply> {
  const t0 = performance.now();
  let ok = 0;
  let failed = 0;
  const join = (room: Room, id: number): Promise<void> =>
    new Promise<void>((resolve, reject) => {
      const s = online.get(id);
      if (!s) return reject(new Error(`user ${id} is not online`));
      const key = `${room.jid}/u${id}`;
      const timer = setTimeout(() => {
        joinWaiters.delete(key);
        reject(new Error(`join ${key} timed out`));
      }, cfg.loginTimeoutMs);
      joinWaiters.set(key, {
        ok: () => {
          clearTimeout(timer);
          resolve();
        },
        fail: (why) => {
          clearTimeout(timer);
          reject(new Error(`join ${key} refused: ${why}`));
        },
      });
      s.write(
        `<presence to='${key}'><x xmlns='http://jabber.org/protocol/muc'><history maxstanzas='0'/></x></presence>`,
      );
    });
  let abort = false;
  await pool(list, concurrency, async (room) => {
    if (abort) {
      failed++;
      return;
    }
    const [owner, ...rest] = room.members;
    try {
      await join(room, owner!);
      // Instant room (XEP-0045 §10.1.2): accept the default configuration so the room unlocks.
      await iq(
        owner!,
        `<iq type='set' to='${room.jid}' id='cfg'><query xmlns='http://jabber.org/protocol/muc#owner'><x xmlns='jabber:x:data' type='submit'/></query></iq>`,
        'cfg',
      );
      await Promise.all(rest.map((id) => join(room, id)));
      ok++;
    } catch (e) {
      failed++;
      abort = true; // the service refuses or does not answer: do not wait for every other room
      noteError(e);
    }
  });
  rooms = list.filter(() => true);
  return { ok, failed, elapsedMs: performance.now() - t0 };
}

const iqWaiters = new Map<string, (type: string) => void>();
function iq(id: number, xml: string, iqId: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = online.get(id);
    if (!s) return reject(new Error(`user ${id} is not online`));
    const key = `${jidOf(id)}|${iqId}`;
    const timer = setTimeout(() => reject(new Error(`iq ${iqId} timed out`)), cfg.loginTimeoutMs);
    iqWaiters.set(key, (type) => {
      clearTimeout(timer);
      resolve(type);
    });
    s.write(xml);
  });
}

// ---- traffic -----------------------------------------------------------------------------------

let phaseTag = 0;
let outstanding = new Map<number, number>();
let hist = new Histogram();
/** Latency of messages sent at or after `steadyFrom` (performance.now()), when a phase asks for it. */
let histSteady = new Histogram();
let steadyFrom = Infinity;
let received = 0;
let unexpected = 0;
let onComplete: (() => void) | null = null;

function onElement(xml: string): void {
  const c = xml.charCodeAt(1);
  if (c === 109 /* m */ && xml.startsWith('<message')) {
    messagesIn++;
    const b = xml.indexOf('<body>');
    if (b < 0) return;
    const e = xml.indexOf('</body>', b);
    const body = xml.slice(b + 6, e);
    const sp1 = body.indexOf(' ');
    const sp2 = body.indexOf(' ', sp1 + 1);
    if (sp1 < 0 || sp2 < 0 || Number(body.slice(0, sp1)) !== phaseTag) {
      unexpected++;
      return;
    }
    const seq = Number(body.slice(sp1 + 1, sp2));
    const left = outstanding.get(seq);
    if (left === undefined) {
      unexpected++;
      return;
    }
    received++;
    const sp3 = body.indexOf(' ', sp2 + 1);
    const sentAt = Number(body.slice(sp2 + 1, sp3 < 0 ? undefined : sp3));
    const us = (performance.now() - sentAt) * 1000;
    hist.record(us);
    if (sentAt >= steadyFrom) histSteady.record(us);
    if (left <= 1) {
      outstanding.delete(seq);
      onComplete?.();
    } else outstanding.set(seq, left - 1);
  } else if (c === 112 /* p */ && xml.startsWith('<presence')) {
    presences++;
    if (joinWaiters.size > 0) {
      const from = attr(xml, 'from');
      const w = from ? joinWaiters.get(from) : undefined;
      if (w && from) {
        if (attr(xml, 'type') === 'error') {
          joinWaiters.delete(from);
          w.fail(xml.slice(0, 300));
        } else if (xml.includes("code='110'") || xml.includes('code="110"')) {
          // XEP-0045 §7.2.3: status 110 marks the occupant's own presence, the end of the join.
          joinWaiters.delete(from);
          w.ok();
        }
      }
    }
  } else if (c === 105 /* i */ && iqWaiters.size > 0) {
    const to = attr(xml, 'to') ?? '';
    const key = `${to.split('/')[0]}|${attr(xml, 'id')}`;
    const w = iqWaiters.get(key);
    if (w) {
      iqWaiters.delete(key);
      w(attr(xml, 'type') ?? '');
    }
  }
}

async function traffic(spec: TrafficSpec): Promise<Reply> {
  phaseTag = spec.phaseTag;
  outstanding = new Map();
  hist = new Histogram();
  histSteady = new Histogram();
  steadyFrom = Infinity;
  received = 0;
  unexpected = 0;
  const users = [...online.keys()];
  if (spec.pairs) {
    users.sort((x, y) => x - y);
    if (users.length % 2 === 1) users.pop();
  }
  const roomList = rooms.filter((r) => r.members.every((m) => online.has(m)));
  if (spec.mode === 'chat' && users.length < 2)
    return { error: 'chat needs at least 2 online users per worker' };
  if (spec.mode === 'muc' && roomList.length === 0) return { error: 'no joined rooms in this worker' };
  let seq = 0;
  let sent = 0;
  let expected = 0;
  const pad = spec.bodyPad > 0 ? ' ' + 'x'.repeat(spec.bodyPad) : '';
  const sendOne = (): void => {
    seq++;
    const t = performance.now().toFixed(3);
    if (spec.mode === 'chat') {
      const ai = (Math.random() * users.length) | 0;
      const a = users[ai]!;
      let b = spec.pairs ? users[ai ^ 1]! : users[(Math.random() * users.length) | 0]!;
      if (b === a) b = users[(ai + 1) % users.length]!;
      outstanding.set(seq, 1);
      expected++;
      online
        .get(a)
        ?.write(
          `<message to='${jidOf(b)}' type='chat' id='m${seq}'><body>${phaseTag} ${seq} ${t}${pad}</body></message>`,
        );
    } else {
      const r = roomList[(Math.random() * roomList.length) | 0]!;
      const a = r.members[(Math.random() * r.members.length) | 0]!;
      outstanding.set(seq, r.members.length);
      expected += r.members.length;
      online
        .get(a)
        ?.write(
          `<message to='${r.jid}' type='groupchat' id='g${seq}'><body>${phaseTag} ${seq} ${t}${pad}</body></message>`,
        );
    }
    sent++;
  };
  const t0 = performance.now();
  if (spec.steadyAfterMs !== undefined) steadyFrom = t0 + spec.steadyAfterMs;
  let running = true;
  let cpu0 = process.cpuUsage();
  if (spec.window !== undefined) {
    const window = spec.window;
    onComplete = () => {
      if (running) sendOne();
    };
    for (let i = 0; i < window; i++) sendOne();
    await new Promise((r) => setTimeout(r, spec.durationMs));
  } else {
    const rate = spec.rate ?? 0;
    await new Promise<void>((resolve) => {
      const tick = setInterval(() => {
        const el = performance.now() - t0;
        if (el >= spec.durationMs) {
          clearInterval(tick);
          resolve();
          return;
        }
        const due = Math.floor((rate * el) / 1000) - sent;
        for (let i = 0; i < due; i++) sendOne();
        // Every millisecond (Node's finest timer): a coarser tick sends bursts that grow with the
        // rate, and the last message of a burst waits for the others, so a faster server measured
        // at its own higher rate would see a tail made by the generator.
      }, 1);
    });
  }
  running = false;
  onComplete = null;
  const elapsedMs = performance.now() - t0;
  const receivedInPhase = received;
  const cpu = process.cpuUsage(cpu0);
  cpu0 = process.cpuUsage();
  // Drain: wait until everything sent has arrived or the drain period ends.
  const drainUntil = performance.now() + spec.drainMs;
  while (outstanding.size > 0 && performance.now() < drainUntil) await new Promise((r) => setTimeout(r, 50));
  let lost = 0;
  for (const left of outstanding.values()) lost += left;
  return {
    sent,
    expected,
    received,
    receivedInPhase,
    lost,
    unexpected,
    elapsedMs,
    hist: hist.toJSON(),
    ...(spec.steadyAfterMs !== undefined ? { histSteady: histSteady.toJSON() } : {}),
    phaseCpuUs: cpu.user + cpu.system,
  };
}

// ---- command loop ------------------------------------------------------------------------------

async function run(cmd: Command): Promise<Reply> {
  switch (cmd.cmd) {
    case 'init':
      cfg = cmd.cfg;
      return { cached: loadScramCache(cfg.cacheDir) };
    case 'login':
      return login(cmd.ids, cmd.concurrency, cmd.rosterGet);
    case 'loginLoop':
      return loginLoop(cmd.ids, cmd.concurrency, cmd.durationMs, cmd.rosterGet);
    case 'joinRooms':
      return joinRooms(cmd.rooms, cmd.concurrency);
    case 'traffic':
      return traffic(cmd.spec);
    case 'counters':
      return { online: online.size, presences, messagesIn, rssBytes: process.memoryUsage().rss };
    case 'resetCounters':
      presences = 0;
      messagesIn = 0;
      return {};
    case 'logoutAll':
      return logoutAll();
    case 'floodStart':
      return startFlood([...online.values()], cfg.domain);
    case 'mucFloodStart':
      return startMucFlood(online.get(cmd.id), cmd.room);
    case 'floodReport':
      return { ...floodReport(), unauth: unauthReport() };
    case 'unauthStart':
      return startUnauth(cmd.count, cfg.host, cfg.port, cfg.domain, cmd.addresses);
    case 'floodStop':
      stopUnauth();
      stopFlood();
      return {};
    case 'exit':
      stopUnauth();
      stopFlood();
      saveScramCache(cfg.cacheDir);
      await logoutAll();
      setTimeout(() => process.exit(0), 50);
      return {};
  }
}

process.on('message', (m: { seq: number; cmd: Command }) => {
  run(m.cmd).then(
    (r) => {
      const cpu = process.cpuUsage();
      process.send?.({
        seq: m.seq,
        reply: { ...r, errors: errors.splice(0), cpuUs: cpu.user + cpu.system, scram: { ...scramStats } },
      });
    },
    (e: Error) => process.send?.({ seq: m.seq, reply: { error: e.message, errors: errors.splice(0) } }),
  );
});
process.on('disconnect', () => process.exit(0));
