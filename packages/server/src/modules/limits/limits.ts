import { isIP } from 'node:net';
import { z } from 'zod';
import { defineModule, type StreamLimiter, type StreamView } from '../../core/module-api.js';
import { TokenBucket } from '../../util/token-bucket.js';
import { ipKey } from '../../util/ip-key.js';

const rate = z
  .object({
    bytesPerSecond: z.number().positive().optional(),
    burstBytes: z.number().positive().optional(),
    stanzasPerSecond: z.number().positive().optional(),
    burstStanzas: z.number().positive().optional(),
  })
  .strict();
const shaper = z.object({ authenticated: rate.optional(), unauthenticated: rate.optional() }).strict();

const options = z
  .object({
    /** Per connection, by authentication state; overridden per listener type below. */
    authenticated: rate.prefault({}),
    unauthenticated: rate.prefault({}),
    /** Per listener type (c2s, c2s-tls, http: WebSocket and BOSH on http and https listeners): overrides of the two above. */
    listeners: z
      .object({ c2s: shaper.optional(), 'c2s-tls': shaper.optional(), http: shaper.optional() })
      .strict()
      .prefault({}),
    /** Every connection of one IP address together. */
    perIp: z
      .object({
        bytesPerSecond: z
          .number()
          .positive()
          .default(1024 * 1024),
        burstBytes: z
          .number()
          .positive()
          .default(4 * 1024 * 1024),
        stanzasPerSecond: z.number().positive().default(2000),
        burstStanzas: z.number().positive().default(10_000),
      })
      .strict()
      .prefault({}),
    /** Open connections per IP address (the oldest unauthenticated one is closed to make room, else refused). */
    maxConnectionsPerIp: z.number().int().min(1).default(500),
    /** Unauthenticated connections per IP address (the oldest is closed to make room). */
    maxUnauthenticatedPerIp: z.number().int().min(1).default(50),
    /** Unauthenticated connections in total (the oldest is closed to make room). */
    maxUnauthenticated: z.number().int().min(1).default(1000),
    /** Time for the opening stream header to arrive complete (slowloris); `limits.authTimeoutMs` bounds the rest. */
    headerTimeoutMs: z.number().int().min(100).default(10_000),
    /** Stanzas owed beyond the allowance after which a flooding client gets policy-violation. */
    stanzaFloodDebt: z.number().int().min(1).default(2000),
    /**
     * Failed authentications per IP address (password guessing over many connections): `burst`
     * failures are allowed at once, then `perMinute`; beyond that the address's attempts are refused
     * with <temporary-auth-failure/> before any password is checked, until it has waited.
     */
    authFailuresPerIp: z
      .object({
        burst: z.number().int().min(1).default(20),
        perMinute: z.number().positive().default(10),
      })
      .strict()
      .prefault({}),
    /** Addresses no limit applies to (e.g. a trusted reverse proxy or a load generator). */
    exempt: z.array(z.string()).default([]),
  })
  .strict()
  .prefault({});

type Rate = Required<z.infer<typeof rate>>;

export const DEFAULT_AUTHENTICATED: Rate = {
  bytesPerSecond: 64 * 1024,
  burstBytes: 64 * 1024,
  stanzasPerSecond: 200,
  burstStanzas: 200,
};
export const DEFAULT_UNAUTHENTICATED: Rate = {
  bytesPerSecond: 8 * 1024,
  burstBytes: 32 * 1024,
  stanzasPerSecond: 10,
  burstStanzas: 50,
};

const LISTENER_OF = { tcp: 'c2s', tls: 'c2s-tls', websocket: 'http', bosh: 'http' } as const;

function normalizeIp(ip: string): string {
  const a = ip.startsWith('::ffff:') && isIP(ip.slice(7)) === 4 ? ip.slice(7) : ip;
  return a.toLowerCase();
}

interface StreamState {
  ip: string;
  authenticated: boolean;
  bytes: TokenBucket;
  stanzas: TokenBucket;
  timer: NodeJS.Timeout | undefined;
  resumeAt: number;
  headerTimer: NodeJS.Timeout | undefined;
}

/**
 * Limits and abuse handling: token buckets on bytes and stanzas per connection (by listener and
 * authentication state) and per IP; throttling pauses reading (back-pressure, nothing is dropped);
 * a client that keeps flooding beyond `stanzaFloodDebt` gets `policy-violation`. Caps connections
 * per IP and unauthenticated connections in total, closing the oldest unauthenticated one to make
 * room, so idle attackers cannot lock out a client that authenticates. `limits.disabled: true` in
 * the server configuration turns all of it off.
 */
export default defineModule({
  name: 'limits',
  description: 'Rate limits (token buckets), connection caps and flood protection',
  specs: ['RFC 6120 §13.12'],
  enabledByDefault: true,
  options,
  // Read at each use: rates apply to the buckets made after the reload (new connections, new
  // addresses), caps and timeouts at once. `exempt` and `authFailuresPerIp` are set up at start.
  reloadable: [
    'authenticated',
    'unauthenticated',
    'listeners',
    'perIp',
    'maxConnectionsPerIp',
    'maxUnauthenticatedPerIp',
    'maxUnauthenticated',
    'headerTimeoutMs',
    'stanzaFloodDebt',
  ],
  setup(ctx) {
    // Limits are per process: the first host configures them.
    if (ctx.serverLimits.disabled) return;
    const o = ctx.options;
    const exempt = new Set(o.exempt.map(normalizeIp));
    /** Counters key on the address, IPv6 grouped by `limits.ipv6Prefix`; exemptions are exact. */
    const keyOf = (ip: string) => ipKey(ip, ctx.serverLimits.ipv6Prefix);
    const streams = new Map<StreamView, StreamState>();
    const perIpCount = new Map<string, number>();
    const perIpUnauth = new Map<string, number>();
    const dec = (m: Map<string, number>, ip: string) => {
      const n = (m.get(ip) ?? 1) - 1;
      if (n <= 0) m.delete(ip);
      else m.set(ip, n);
    };
    const perIpBytes = new Map<string, { bucket: TokenBucket; stanzas: TokenBucket; used: number }>();
    function ipBuckets(ip: string): { bucket: TokenBucket; stanzas: TokenBucket; used: number } {
      let b = perIpBytes.get(ip);
      if (!b) {
        b = {
          bucket: new TokenBucket(o.perIp.bytesPerSecond, o.perIp.burstBytes),
          stanzas: new TokenBucket(o.perIp.stanzasPerSecond, o.perIp.burstStanzas),
          used: 0,
        };
        perIpBytes.set(ip, b);
      }
      b.used = Date.now();
      return b;
    }
    /** Unauthenticated streams, oldest first (Set keeps insertion order). */
    const unauthenticated = new Set<StreamView>();
    const authFailures = new Map<string, TokenBucket>();

    function rateFor(stream: StreamView, authenticated: boolean): Rate {
      const base = authenticated ? DEFAULT_AUTHENTICATED : DEFAULT_UNAUTHENTICATED;
      const general = authenticated ? o.authenticated : o.unauthenticated;
      const listener = o.listeners[LISTENER_OF[stream.transport.kind]];
      const specific = authenticated ? listener?.authenticated : listener?.unauthenticated;
      return { ...base, ...strip(general), ...strip(specific) };
    }

    function strip(r: z.infer<typeof rate> | undefined): Partial<Rate> {
      const out: Partial<Rate> = {};
      if (!r) return out;
      for (const [k, v] of Object.entries(r)) if (v !== undefined) out[k as keyof Rate] = v;
      return out;
    }

    function buckets(stream: StreamView, authenticated: boolean): Pick<StreamState, 'bytes' | 'stanzas'> {
      const r = rateFor(stream, authenticated);
      return {
        bytes: new TokenBucket(r.bytesPerSecond, r.burstBytes),
        stanzas: new TokenBucket(r.stanzasPerSecond, r.burstStanzas),
      };
    }

    function stateOf(stream: StreamView): StreamState | undefined {
      const st = streams.get(stream);
      if (!st) return undefined;
      if (!st.authenticated && stream.authenticated) {
        // New allowance once authenticated.
        st.authenticated = true;
        if (unauthenticated.delete(stream)) dec(perIpUnauth, st.ip);
        Object.assign(st, buckets(stream, true));
      }
      return st;
    }

    function throttle(stream: StreamView, st: StreamState, waitMs: number, limit: 'bytes' | 'stanzas'): void {
      const until = Date.now() + waitMs;
      if (st.timer && until <= st.resumeAt) return;
      ctx.throttled(limit);
      clearTimeout(st.timer);
      st.resumeAt = until;
      stream.pauseReading('rate');
      st.timer = setTimeout(() => {
        st.timer = undefined;
        stream.resumeReading('rate');
      }, waitMs);
      st.timer.unref();
    }

    function evictOldest(
      filter: (s: StreamView) => boolean,
      condition: 'policy-violation' | 'resource-constraint',
      text: string,
    ): boolean {
      for (const s of unauthenticated) {
        if (s.authenticated) {
          stateOf(s);
          continue;
        }
        if (!filter(s)) continue;
        ctx.log.info(
          { ip: s.transport.remoteAddress, condition },
          'closing an unauthenticated connection to make room',
        );
        ctx.throttled('unauthenticated-evicted');
        s.fail(condition, text);
        s.transport.destroy();
        return true;
      }
      return false;
    }

    const limiter: StreamLimiter = {
      opened(stream) {
        if (exempt.has(normalizeIp(stream.transport.remoteAddress))) return;
        const ip = keyOf(stream.transport.remoteAddress);
        const headerTimer = setTimeout(() => {
          if (stream.state === 'header' && stream.host === undefined)
            stream.fail('connection-timeout', 'no stream header in time');
        }, o.headerTimeoutMs);
        headerTimer.unref();
        streams.set(stream, {
          ip,
          authenticated: false,
          ...buckets(stream, false),
          timer: undefined,
          resumeAt: 0,
          headerTimer,
        });
        perIpCount.set(ip, (perIpCount.get(ip) ?? 0) + 1);
        perIpUnauth.set(ip, (perIpUnauth.get(ip) ?? 0) + 1);
        unauthenticated.add(stream);
      },
      closed(stream) {
        const st = streams.get(stream);
        if (!st) return;
        streams.delete(stream);
        if (unauthenticated.delete(stream)) dec(perIpUnauth, st.ip);
        clearTimeout(st.timer);
        clearTimeout(st.headerTimer);
        dec(perIpCount, st.ip);
      },
      consume(stream, bytes) {
        const st = stateOf(stream);
        if (!st) return;
        let wait = st.bytes.take(bytes);
        const ipWait = ipBuckets(st.ip).bucket.take(bytes);
        // The address is over its allowance: its heavy connections pay (those that used more than half
        // their own burst), so that one flooding connection does not stall its light neighbours.
        if (ipWait > 0 && st.bytes.available < st.bytes.burst / 2) wait = Math.max(wait, ipWait);
        if (wait > 0) throttle(stream, st, wait, 'bytes');
      },
      stanza(stream) {
        const st = stateOf(stream);
        if (!st) return true;
        let wait = st.stanzas.take(1);
        const ipWait = ipBuckets(st.ip).stanzas.take(1);
        if (ipWait > 0 && st.stanzas.available < st.stanzas.burst / 2) wait = Math.max(wait, ipWait);
        if (wait === 0) return true;
        if (st.stanzas.debt > o.stanzaFloodDebt) {
          ctx.log.warn({ ip: st.ip, jid: stream.session?.jid.toString() }, 'stanza flood: disconnecting');
          stream.fail('policy-violation', 'too many stanzas: slow down');
          ctx.throttled('stanza-flood');
          return false;
        }
        throttle(stream, st, wait, 'stanzas');
        return true;
      },
      authFailed(ip) {
        if (exempt.has(normalizeIp(ip))) return;
        const key = keyOf(ip);
        let b = authFailures.get(key);
        if (!b)
          authFailures.set(
            key,
            (b = new TokenBucket(o.authFailuresPerIp.perMinute / 60, o.authFailuresPerIp.burst)),
          );
        b.take(1);
        const retryInMs = b.waitFor(1);
        if (retryInMs > 0) ctx.throttled('auth-failures');
        if (retryInMs > 0)
          ctx.log.warn(
            { ip: key, retryInMs },
            'too many failed authentications from one address: its attempts are refused for now',
          );
      },
      authWait(ip) {
        return authFailures.get(keyOf(ip))?.waitFor(1) ?? 0;
      },
    };

    const admit = (rawIp: string): boolean => {
      if (exempt.has(normalizeIp(rawIp))) return true;
      const ip = keyOf(rawIp);
      const mineUnauth = (s: StreamView) => streams.get(s)?.ip === ip;
      if ((perIpUnauth.get(ip) ?? 0) >= o.maxUnauthenticatedPerIp) {
        evictOldest(mineUnauth, 'policy-violation', 'too many unauthenticated connections from your address');
      }
      if ((perIpCount.get(ip) ?? 0) >= o.maxConnectionsPerIp) {
        if (!evictOldest(mineUnauth, 'policy-violation', 'too many connections from your address')) {
          ctx.log.info({ ip }, 'connection refused: too many connections from this address');
          ctx.throttled('connections-per-ip');
          return false;
        }
      }
      if (unauthenticated.size >= o.maxUnauthenticated) {
        evictOldest(() => true, 'resource-constraint', 'too many unauthenticated connections');
      }
      return true;
    };
    if (!ctx.installLimiter(limiter, admit)) return;

    // Forget idle per-IP and auth-failure buckets.
    ctx.every(60_000, () => {
      const old = Date.now() - 60_000;
      for (const [ip, b] of perIpBytes) {
        if (b.used < old && b.bucket.debt === 0 && b.stanzas.debt === 0) perIpBytes.delete(ip);
      }
      for (const [ip, b] of authFailures) if (b.available >= b.burst) authFailures.delete(ip);
    });

    return () => {
      for (const st of streams.values()) {
        clearTimeout(st.timer);
        clearTimeout(st.headerTimer);
      }
    };
  },
});
