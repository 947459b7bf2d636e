/**
 * Worker side of the `flood` scenario: authenticated flooders (sessions already logged in by the
 * worker's `login` command) that write stanzas as fast as their socket accepts, and unauthenticated
 * connections held open (idle, or trickling a stream header one byte per second), reopened when the
 * server closes them. Everything here is cheap for the generator: one pre-built chunk is written
 * again and again, and received data is only scanned for a stream error.
 */
import { connect, type Socket } from 'node:net';
import { readFileSync } from 'node:fs';
import type { XmppSession } from '../xmpp/session.js';
import type { Reply } from './protocol.js';

const STREAM_ERROR = /<stream:error[^>]*>\s*<([a-z-]+)/;

/** `a.b.c.d:port` as /proc/net/tcp writes it on a little-endian machine (`0100007F:1F90`). */
function procAddr(ip: string, port: number): string {
  const hex = ip
    .split('.')
    .reverse()
    .map((b) => Number(b).toString(16).padStart(2, '0'))
    .join('');
  return `${hex}:${port.toString(16).padStart(4, '0')}`.toUpperCase();
}

/** Send queue (tx) and receive queue (rx) of every IPv4 TCP socket, keyed `local|remote`. */
function tcpQueues(): Map<string, { tx: number; rx: number }> {
  const out = new Map<string, { tx: number; rx: number }>();
  let text = '';
  try {
    text = readFileSync('/proc/net/tcp', 'utf8');
  } catch {
    return out;
  }
  for (const line of text.split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f.length < 5) continue;
    const [tx, rx] = f[4]!.split(':');
    out.set(`${f[1]}|${f[2]}`, { tx: parseInt(tx ?? '0', 16), rx: parseInt(rx ?? '0', 16) });
  }
  return out;
}

function bump(m: Record<string, number>, k: string): void {
  m[k] = (m[k] ?? 0) + 1;
}

// ---- authenticated flooders --------------------------------------------------------------------

interface Flooder {
  s: XmppSession;
  /** Bytes the kernel took from us (write callbacks). */
  written: number;
  /** Last estimate of what the server itself read: written − our send queue − its receive queue. */
  accepted: number;
  local: string;
  remote: string;
  closed: boolean;
  condition: string | null;
}

let flooders: Flooder[] = [];
let flooding = false;

/**
 * One chunk of stanzas: a message to oneself, a message to a user that does not exist, a presence
 * update — repeated to about 16 KiB.
 */
function floodChunk(jid: string, domain: string): string {
  const one =
    `<message to='${jid}' type='chat'><body>flood to self</body></message>` +
    `<message to='nobody-here-${Math.floor(Math.random() * 1e6)}@${domain}' type='chat'><body>flood</body></message>` +
    `<presence><status>flooding</status></presence>`;
  return one.repeat(Math.ceil(16_384 / one.length));
}

export function startFlood(sessions: XmppSession[], domain: string): Reply {
  flooding = true;
  flooders = [];
  for (const s of sessions) pump(s, Buffer.from(floodChunk(`${s.o.user}@${domain}`, domain)));
  return { flooders: flooders.length };
}

/**
 * `muc-flood`: one occupant writes groupchat messages to its room as fast as its socket accepts
 * (the server's inbound limits decide how many it reads); what comes back (its reflections,
 * errors) is only scanned for a stream error.
 */
export function startMucFlood(s: XmppSession | undefined, room: string): Reply {
  flooding = true;
  flooders = [];
  const one = `<message to='${room}' type='groupchat'><body>flood flood flood flood</body></message>`;
  if (s) pump(s, Buffer.from(one.repeat(Math.ceil(16_384 / one.length))));
  return { flooders: flooders.length };
}

/** Writes `chunk` again and again on `s` while the flood lasts, as fast as its socket accepts. */
function pump(s: XmppSession, chunk: Buffer): void {
  const sock = s.socket;
  if (!sock || s.phase !== 'ready') return;
  const f: Flooder = {
    s,
    written: 0,
    accepted: 0,
    local: procAddr(sock.localAddress ?? '', sock.localPort ?? 0),
    remote: procAddr(sock.remoteAddress ?? '', sock.remotePort ?? 0),
    closed: false,
    condition: null,
  };
  flooders.push(f);
  const done = (): void => {
    f.written += chunk.length;
  };
  // Echoes and errors coming back are only checked for a stream error (the framer still reads them,
  // so the server never sees a slow reader here).
  s.onElement = (xml) => {
    if (xml.startsWith('<stream:error')) f.condition = STREAM_ERROR.exec(xml)?.[1] ?? 'unknown';
  };
  const prevClose = s.onClose;
  s.onClose = () => {
    f.closed = true;
    prevClose?.();
  };
  const next = (): void => {
    while (flooding && !f.closed && s.phase === 'ready') {
      if (!sock.write(chunk, done)) {
        sock.once('drain', next);
        return;
      }
    }
  };
  next();
}

export function floodReport(): Reply {
  const q = tcpQueues();
  for (const f of flooders) {
    if (f.closed) continue;
    const mine = q.get(`${f.local}|${f.remote}`);
    const theirs = q.get(`${f.remote}|${f.local}`);
    if (mine && theirs) f.accepted = Math.max(f.accepted, f.written - mine.tx - theirs.rx);
  }
  const conditions: Record<string, number> = {};
  for (const f of flooders) if (f.closed) bump(conditions, f.condition ?? 'closed without stream error');
  return {
    flooders: flooders.length,
    accepted: flooders.reduce((a, f) => a + f.accepted, 0),
    written: flooders.reduce((a, f) => a + f.written, 0),
    disconnected: flooders.filter((f) => f.closed).length,
    conditions,
  };
}

export function stopFlood(): void {
  flooding = false;
  for (const f of flooders) f.s.destroy();
  flooders = [];
}

// ---- unauthenticated connections ---------------------------------------------------------------

interface UnauthState {
  running: boolean;
  sockets: Set<Socket>;
  opened: number;
  closedByServer: number;
  connectErrors: number;
  conditions: Record<string, number>;
  ticker: NodeJS.Timeout | null;
}

const unauth: UnauthState = {
  running: false,
  sockets: new Set(),
  opened: 0,
  closedByServer: 0,
  connectErrors: 0,
  conditions: {},
  ticker: null,
};

/**
 * Holds `count` connections that never authenticate, spread over `addresses`: even ones idle
 * (nothing sent), odd ones trickling a stream header one byte per second. A connection the server
 * closes is reopened 200 ms later, so the server faces `count` of them for as long as this runs.
 */
export function startUnauth(
  count: number,
  host: string,
  port: number,
  domain: string,
  addresses: string[],
): Reply {
  unauth.running = true;
  const header = `<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='${domain}' version='1.0'>`;
  const trickling = new Map<Socket, number>();
  const open = (i: number): void => {
    if (!unauth.running) return;
    const sock = connect({ host, port, localAddress: addresses[i % addresses.length] });
    let got = '';
    let connected = false;
    unauth.sockets.add(sock);
    sock.on('connect', () => {
      connected = true;
      unauth.opened++;
      if (i % 2 === 1) trickling.set(sock, 0);
    });
    sock.on('data', (d: Buffer) => {
      if (got.length < 4096) got += d.toString('utf8');
    });
    sock.on('error', () => {
      if (!connected && unauth.running) unauth.connectErrors++;
    });
    sock.on('close', () => {
      unauth.sockets.delete(sock);
      trickling.delete(sock);
      if (!unauth.running) return;
      if (connected) {
        unauth.closedByServer++;
        bump(unauth.conditions, STREAM_ERROR.exec(got)?.[1] ?? 'closed without stream error');
      }
      setTimeout(() => open(i), 200).unref();
    });
  };
  for (let i = 0; i < count; i++) open(i);
  unauth.ticker = setInterval(() => {
    for (const [sock, pos] of trickling) {
      if (pos >= header.length) continue;
      sock.write(header[pos]!);
      trickling.set(sock, pos + 1);
    }
  }, 1000);
  return {};
}

export function unauthReport(): Reply {
  return {
    open: unauth.sockets.size,
    opened: unauth.opened,
    closedByServer: unauth.closedByServer,
    connectErrors: unauth.connectErrors,
    conditions: { ...unauth.conditions },
  };
}

export function stopUnauth(): void {
  unauth.running = false;
  if (unauth.ticker) clearInterval(unauth.ticker);
  unauth.ticker = null;
  for (const s of unauth.sockets) s.destroy();
  unauth.sockets.clear();
}
