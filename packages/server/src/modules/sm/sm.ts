import { createHash, randomBytes } from 'node:crypto';
import { z } from 'zod';
import { xml, type Element } from '@natter/xml';
import { NS } from '@natter/protocol';
import { parseJid, type Jid } from '@natter/jid';
import {
  defineModule,
  type ClientStreamView,
  type Session,
  type SessionRecord,
} from '../../core/module-api.js';
import { isCarbon, type CarbonsApi } from '../carbons/api.js';

const options = z
  .object({
    /** Longest time a dropped session is kept for resumption (the client may ask for less). */
    resumeTimeoutMs: z.number().int().min(0).default(300_000),
    /**
     * Unacknowledged stanzas kept per session; beyond it a live stream is closed, a hibernated
     * session ended. A client that acknowledges but parses slowly (a backlog after a reconnection:
     * offline messages, archive pages, live traffic) owes hundreds; ejabberd's default is 5000 too.
     */
    maxQueue: z.number().int().min(1).default(5000),
    /** The server asks for an ack (`<r/>`) once this many stanzas are unacknowledged … */
    requestAfter: z.number().int().min(1).default(5),
    /** … or this long after the first unacknowledged one. */
    requestDelayMs: z.number().int().min(10).default(2000),
  })
  .strict()
  .prefault({});

type Options = z.infer<typeof options>;

/** At most this many stanzas of a burst (offline storage) are written ahead of the client's acks. */
const BURST_WINDOW = 200;

/** Stream management state of one session: outlives streams while hibernated. */
interface SmState {
  id: string;
  session: Session;
  /** The stream counting now; undefined while hibernated. */
  stream: ClientStreamView | undefined;
  resumable: boolean;
  maxMs: number;
  /** Stanzas received from the client (h of our `<a/>`), mod 2^32. */
  inbound: number;
  /** Stanzas the client acknowledged, mod 2^32; queue[i] has sequence number acked + i + 1. */
  acked: number;
  queue: { el: Element; at: number }[];
  ackRequested: boolean;
  ackTimer: NodeJS.Timeout | undefined;
  hibernateTimer: NodeJS.Timeout | undefined;
  hibernatedAt: number | undefined;
}

/** The answer to a `<resume/>`: `<resumed/>` or `<failed/>`, and what follows once it is written. */
interface Resumption {
  element: Element;
  resumed?: boolean;
  after?: () => void;
}

/** Per stream: the SM state it feeds (one symbol for every host). */
const KEY = Symbol('sm');
/** Per stream: a `<resume/>` waits for the node that issued its id. */
const ASKING = Symbol('sm-asking');
const U32 = 2 ** 32;

/**
 * How long a node waits for the node that issued a resumption id to end that session before it
 * answers `<failed/>`: the owner answers within milliseconds when it is alive; a dead owner (or a
 * forged id) gets no answer, and the session it held is gone anyway.
 */
const OWNER_ANSWER_MS = 2000;

/** Stream errors after which a session is not kept for resumption (the server meant to end it). */
const RESUMABLE_AFTER = new Set<string | undefined>([undefined, 'connection-timeout']);

const failed = (condition: string, h?: number) =>
  xml(
    'failed',
    { xmlns: NS.sm, h: h === undefined ? undefined : String(h) },
    xml(condition, { xmlns: NS.stanzas }),
  );

/**
 * Stream management (XEP-0198): acks with `h` counting, resumption of a dropped session within
 * `resumeTimeoutMs` (the resumed session gets everything it had not acknowledged, in order, once),
 * and, when a session ends without resumption, its unacknowledged messages routed again to the bare
 * JID — another resource, offline storage, or an error to the sender (§5) — never dropped.
 */
export default defineModule({
  name: 'sm',
  description: 'Stream management: acknowledgements and session resumption',
  specs: ['XEP-0198'],
  enabledByDefault: true,
  options,
  setup(ctx) {
    const opts = ctx.options;
    const byId = new Map<string, SmState>();
    const bySession = new WeakMap<Session, SmState>();
    const mine = (stream: ClientStreamView) => stream.host?.domain === ctx.domain;
    /**
     * Resumption ids start with a tag of the node that issued them (docs/decisions/0009): a
     * `<resume/>` reaching another node is recognised as another node's, which ends the session.
     * A hash, so that ids do not show the cluster's node names to clients.
     */
    const tag = createHash('sha256').update(ctx.cluster.nodeId).digest('base64url').slice(0, 8);
    /** `<resume/>`s for another node's session waiting for its owner to end it, by request id. */
    const awaitingOwner = new Map<string, (h: number | undefined) => void>();

    ctx.streamFeature((stream) =>
      mine(stream) && stream.state === 'authenticated' ? xml('sm', { xmlns: NS.sm }) : null,
    );

    // XEP-0198 in SASL2 (XEP-0388 inline): `<resume/>` in `<authenticate/>`, answered in `<success/>`.
    ctx.sasl2({
      inline: () => [xml('sm', { xmlns: NS.sm })],
      authenticated: async ({ stream, authenticate, account }) => {
        const el = authenticate.getChild('resume', NS.sm);
        if (!el || !mine(stream)) return undefined;
        const r = await resume(stream, el, account);
        return { elements: [r.element], bound: r.resumed === true, after: r.after };
      },
    });
    // XEP-0198 in Bind2 (XEP-0386 §2.3): `<enable/>` in `<bind/>`, `<enabled/>` in `<bound/>`.
    ctx.bind2Feature({
      var: NS.sm,
      bound: ({ stream, element }) =>
        element.name === 'enable' && mine(stream) ? enable(stream, element) : undefined,
    });

    ctx.hook('stream/nonza', ({ stream, element }) => {
      if (element.xmlns !== NS.sm || !mine(stream)) return false;
      switch (element.name) {
        case 'enable':
          stream.writeElement(enable(stream, element));
          return true;
        case 'resume': {
          const done = (r: Resumption) => {
            if (stream.state === 'closing' || stream.state === 'closed') return;
            stream.writeElement(r.element);
            r.after?.();
          };
          if (stream.state !== 'authenticated' || !stream.account) {
            done({ element: failed('unexpected-request') });
            return true;
          }
          const r = resume(stream, element, stream.account);
          if (r instanceof Promise) void r.then(done);
          else done(r);
          return true;
        }
        case 'r': {
          const sm = stream.data.get(KEY) as SmState | undefined;
          if (!sm) {
            stream.fail('unsupported-stanza-type', 'stream management is not enabled');
            return true;
          }
          const h = String(sm.inbound);
          const answer = () => void stream.writeElement(xml('a', { xmlns: NS.sm, h }));
          // What is acknowledged must survive a crash: buffered writes (the archive) commit first,
          // without holding up the stanzas that follow.
          if (!ctx.host.hooks.has('session/acknowledging')) answer();
          else
            void ctx.host.hooks.notify('session/acknowledging', { session: sm.session }).then(answer, answer);
          return true;
        }
        case 'a': {
          const sm = stream.data.get(KEY) as SmState | undefined;
          if (!sm) stream.fail('unsupported-stanza-type', 'stream management is not enabled');
          else if (ack(sm, stream, element.attrs.h)) requestLater(sm);
          return true;
        }
        default:
          stream.fail('unsupported-stanza-type', `<${element.name}/> is not a stream management element`);
          return true;
      }
    });

    /** XEP-0198 §3: `<enabled/>` (counting starts now) or `<failed/>`, for the caller to write. */
    function enable(stream: ClientStreamView, el: Element): Element {
      if (stream.state !== 'bound' || !stream.session || stream.data.has(KEY))
        return failed('unexpected-request');
      const session = stream.session;
      const wantsResume = el.attrs.resume === 'true' || el.attrs.resume === '1';
      const asked = Number.parseInt(el.attrs.max ?? '', 10);
      const maxMs =
        Number.isFinite(asked) && asked > 0
          ? Math.min(asked * 1000, opts.resumeTimeoutMs)
          : opts.resumeTimeoutMs;
      const sm: SmState = {
        id: `${tag}.${randomBytes(12).toString('base64url')}`,
        session,
        stream: undefined,
        resumable: wantsResume && opts.resumeTimeoutMs > 0,
        maxMs,
        inbound: 0,
        acked: 0,
        queue: [],
        ackRequested: false,
        ackTimer: undefined,
        hibernateTimer: undefined,
        hibernatedAt: undefined,
      };
      bySession.set(session, sm);
      if (sm.resumable) byId.set(sm.id, sm);
      attach(sm, stream);
      return xml('enabled', {
        xmlns: NS.sm,
        id: sm.resumable ? sm.id : undefined,
        resume: sm.resumable ? 'true' : undefined,
        max: sm.resumable ? String(Math.ceil(maxMs / 1000)) : undefined,
      });
    }

    /** Unacknowledged stanzas past which bursts (offline storage) wait for the client's `<a/>`. */
    const busyAt = Math.max(1, Math.min(BURST_WINDOW, Math.floor(opts.maxQueue / 2)));

    /** Makes `stream` the one that counts for `sm`. */
    function attach(sm: SmState, stream: ClientStreamView): void {
      sm.stream = stream;
      stream.data.set(KEY, sm);
      stream.pipeline.count(
        'sm',
        {
          received: () => {
            if (sm.stream === stream) sm.inbound = (sm.inbound + 1) % U32;
          },
          written: (el) => {
            if (sm.stream !== stream) return;
            sm.queue.push({ el, at: Date.now() });
            if (sm.queue.length > opts.maxQueue) {
              ctx.log.info(
                { jid: sm.session.jid.toString(), queued: sm.queue.length },
                'client does not acknowledge: disconnecting',
              );
              stream.fail('policy-violation', 'too many unacknowledged stanzas');
              return;
            }
            requestLater(sm);
          },
        },
        // Bursts (offline storage) wait while half the queue is unacknowledged, so that a client
        // that acknowledges is never cut off for reading a backlog.
        {
          tracksDelivery: true,
          busy: () => {
            if (sm.stream !== stream || sm.queue.length < busyAt) return false;
            requestNow(sm); // the acknowledgement that ends the wait (unless one is asked already)
            return true;
          },
        },
      );
    }

    function requestNow(sm: SmState): void {
      clearTimeout(sm.ackTimer);
      sm.ackTimer = undefined;
      const stream = sm.stream;
      if (!stream || sm.ackRequested || sm.queue.length === 0 || stream.state !== 'bound') return;
      sm.ackRequested = true;
      stream.writeElement(xml('r', { xmlns: NS.sm }));
    }

    function requestLater(sm: SmState): void {
      if (sm.ackRequested || sm.queue.length === 0) return;
      if (sm.queue.length >= opts.requestAfter) requestNow(sm);
      else if (!sm.ackTimer) {
        sm.ackTimer = setTimeout(() => requestNow(sm), opts.requestDelayMs);
        sm.ackTimer.unref();
      }
    }

    /** Applies the client's h (XEP-0198 §4); false when the stream was failed for a bad h. */
    function ack(sm: SmState, stream: ClientStreamView, hAttr: string | undefined): boolean {
      const h = Number(hAttr);
      if (hAttr === undefined || !Number.isInteger(h) || h < 0 || h >= U32) {
        stream.fail('undefined-condition', 'h must be an unsigned 32-bit integer');
        return false;
      }
      const n = (h - sm.acked + U32) % U32;
      if (n > sm.queue.length) {
        stream.writeElement(
          xml(
            'error',
            { xmlns: NS.stream },
            xml('undefined-condition', { xmlns: NS.streams }),
            xml('handled-count-too-high', {
              xmlns: NS.sm,
              h: String(h),
              'send-count': String((sm.acked + sm.queue.length) % U32),
            }),
          ),
        );
        stream.closeCondition = 'undefined-condition';
        stream.close();
        return false;
      }
      sm.queue.splice(0, n);
      sm.acked = h;
      sm.ackRequested = false;
      return true;
    }

    /**
     * XEP-0198 §5 for an authenticated `stream` of `account`: `<resumed/>` and what to do once the
     * client has it (re-send what it had not acknowledged), or `<failed/>`. For the caller to write:
     * a nonza of its own, or inside SASL2's `<success/>` (XEP-0388 inline).
     */
    function resume(stream: ClientStreamView, el: Element, account: Jid): Resumption | Promise<Resumption> {
      const previd = el.attrs.previd ?? '';
      if (isForeign(previd)) return resumeElsewhere(stream, previd, account.toBareString());
      const sm = byId.get(previd);
      if (!sm || sm.session.closed || !sm.session.bare.equals(account))
        return { element: failed('item-not-found') };
      const h = Number(el.attrs.h);
      if (!Number.isInteger(h) || h < 0 || h >= U32 || (h - sm.acked + U32) % U32 > sm.queue.length) {
        return {
          element: xml(
            'failed',
            { xmlns: NS.sm, h: String(sm.inbound) },
            xml('unexpected-request', { xmlns: NS.stanzas }),
            xml('handled-count-too-high', {
              xmlns: NS.sm,
              h: el.attrs.h ?? '',
              'send-count': String((sm.acked + sm.queue.length) % U32),
            }),
          ),
        };
      }
      const session = sm.session;
      const old = sm.stream;
      if (old && old !== stream) {
        // The client came back before the server noticed the old connection was dead.
        takeHeld(sm, old);
        sm.stream = undefined;
      }
      clearTimeout(sm.hibernateTimer);
      sm.hibernateTimer = undefined;
      sm.hibernatedAt = undefined;
      session.holder = undefined;
      sm.queue.splice(0, (h - sm.acked + U32) % U32);
      sm.acked = h;
      sm.ackRequested = false;
      const resend = sm.queue.splice(0);
      stream.adoptSession(session);
      attach(sm, stream);
      // Closed once the session has moved, so that its end does not end the session.
      if (old && old !== stream) old.fail('conflict', 'the session was resumed on another connection');
      ctx.log.info({ jid: session.jid.toString(), resent: resend.length }, 'session resumed');
      return {
        element: xml('resumed', { xmlns: NS.sm, previd: sm.id, h: String(sm.inbound) }),
        resumed: true,
        // Re-sent once the answer is written (SASL2: after `<success/>`).
        after: () =>
          resendNow(
            sm,
            stream,
            resend.map((r) => r.el),
          ),
      };
    }

    /** Re-sent through the new stream's filters: counted again, from the client's h. */
    function resendNow(sm: SmState, stream: ClientStreamView, stanzas: Element[]): void {
      for (const stanza of stanzas) stream.deliver(stanza);
      if (sm.queue.length > 0) requestNow(sm);
    }

    /** Whether a resumption id names another node of the cluster (this node holds nothing for it). */
    function isForeign(id: string): boolean {
      // A server alone (`local`, not clustered) issued every id it may be asked for.
      if (ctx.cluster.nodeId === 'local') return false;
      return id.indexOf('.') === tag.length && !id.startsWith(`${tag}.`);
    }

    /**
     * XEP-0198 §5 for a session another node holds (sessions do not move between nodes): its owner
     * ends it now, as its timeout would, routing its unacknowledged messages to the bare JID; only
     * then is the client told `<failed/>`. The client logs in again right after the failure: were
     * the messages routed while its new session became available, one stored offline just after
     * that session fetched offline storage would wait there for the next login.
     */
    function resumeElsewhere(stream: ClientStreamView, previd: string, account: string): Promise<Resumption> {
      // One question to the cluster at a time per stream: a client cannot make every node busy.
      if (stream.data.has(ASKING)) return Promise.resolve({ element: failed('unexpected-request') });
      stream.data.set(ASKING, true);
      const req = randomBytes(9).toString('base64url');
      return new Promise((resolve) => {
        let timer: NodeJS.Timeout | undefined = undefined;
        const answer = (h: number | undefined) => {
          clearTimeout(timer);
          awaitingOwner.delete(req);
          stream.data.delete(ASKING);
          resolve({ element: failed('item-not-found', h) });
        };
        timer = setTimeout(() => answer(undefined), OWNER_ANSWER_MS);
        timer.unref();
        awaitingOwner.set(req, answer);
        ctx.cluster.broadcast('resume-elsewhere', { id: previd, account, req });
      });
    }

    // The owner's side: every node hears the request, the one whose tag the id carries acts.
    ctx.onStop(
      ctx.cluster.on('resume-elsewhere', (data) => {
        const { id, account, req } = (data ?? {}) as { id?: unknown; account?: unknown; req?: unknown };
        if (typeof id !== 'string' || typeof req !== 'string' || !id.startsWith(`${tag}.`)) return;
        const reply = (h?: number) => ctx.cluster.broadcast('resume-answer', { req, h });
        const sm = byId.get(id);
        if (!sm || sm.session.closed || sm.session.bare.toString() !== account) {
          reply();
          return;
        }
        endAbandoned(sm).then(reply, (err: unknown) => {
          ctx.log.error({ err }, 'ending a session resumed on another node failed');
          reply();
        });
      }),
    );
    ctx.onStop(
      ctx.cluster.on('resume-answer', (data) => {
        const { req, h } = (data ?? {}) as { req?: unknown; h?: unknown };
        if (typeof req !== 'string') return;
        awaitingOwner.get(req)?.(
          typeof h === 'number' && Number.isInteger(h) && h >= 0 && h < U32 ? h : undefined,
        );
      }),
    );

    /**
     * Ends a session whose client tried to resume it on another node, through the same path as
     * the end of its resumption time (`session/closed` below routes its queue again). Resolves
     * with the count of stanzas it had received (the `h` of the client's `<failed/>`).
     */
    async function endAbandoned(sm: SmState): Promise<number> {
      const h = sm.inbound;
      const session = sm.session;
      // Whatever its stream does now, nothing will resume this session.
      sm.resumable = false;
      byId.delete(sm.id);
      ctx.log.info(
        { jid: session.jid.toString(), hibernated: sm.stream === undefined },
        'resumption asked on another node: ending the session',
      );
      // The client is gone from a stream this node has not yet seen die.
      sm.stream?.fail('conflict', 'the session was resumed on another connection');
      await ctx.endSession(session, false);
      return h;
    }

    /** Stanzas an outbound filter (CSI) held back on a dying stream belong to the queue. */
    function takeHeld(sm: SmState, stream: ClientStreamView): void {
      const now = Date.now();
      for (const el of stream.pipeline.takeHeld()) sm.queue.push({ el, at: now });
    }

    ctx.onStreamClose(intercept);

    /** A stream ended: hibernate its session if it can be resumed (XEP-0198 §5). */
    function intercept(stream: ClientStreamView, clean: boolean): boolean {
      const sm = stream.data.get(KEY) as SmState | undefined;
      if (!sm || sm.stream !== stream || !mine(stream)) return false;
      takeHeld(sm, stream);
      sm.stream = undefined;
      clearTimeout(sm.ackTimer);
      sm.ackTimer = undefined;
      if (!sm.resumable || clean || ctx.stopping || !RESUMABLE_AFTER.has(stream.closeCondition)) return false;
      hibernate(sm);
      return true;
    }

    function hibernate(sm: SmState): void {
      const session = sm.session;
      sm.hibernatedAt = Date.now();
      session.holder = (el) => {
        sm.queue.push({ el, at: Date.now() });
        void ctx.notify('session/held', { session, stanza: el });
        if (sm.queue.length > opts.maxQueue) {
          ctx.log.info({ jid: session.jid.toString() }, 'hibernated session queue full: ending it');
          void ctx.endSession(session, false);
        }
      };
      sm.hibernateTimer = setTimeout(() => {
        ctx.log.info({ jid: session.jid.toString() }, 'resumption time over: ending the session');
        void ctx.endSession(session, false);
      }, sm.maxMs);
      sm.hibernateTimer.unref();
      ctx.log.info(
        { jid: session.jid.toString(), queued: sm.queue.length, ms: sm.maxMs },
        'session hibernated',
      );
    }

    /** Messages the core delivered to several resources of an account at once (RFC 6121 §8.5.2.1.1). */
    const recipients = new WeakMap<Element, readonly SessionRecord[]>();
    /** Messages a session that ended left to another recipient still open, to re-route in its place. */
    const handedOver = new WeakSet<Element>();
    ctx.hook('message/delivered', (ev) => {
      if (ev.sessions.length > 1) recipients.set(ev.stanza, ev.sessions);
    });

    /**
     * Whether another resource of the account already has this unacknowledged stanza, so that routing
     * it again to the bare JID would show it twice: carbons (the account's other resources got the
     * original or their own copy), messages the account sent itself, and messages delivered to
     * several resources or copied to them as carbons. Of several recipients that all drop, the
     * last one to end routes it again.
     */
    function seenElsewhere(session: Session, el: Element): boolean {
      if (el.name !== 'message') return false;
      if (isCarbon(el, NS.carbons)) return true;
      try {
        if (parseJid(el.attrs.from ?? '').bare.equals(session.bare)) return true;
      } catch {
        /* a server address or none: not the account's own */
      }
      const others = [
        ...(recipients.get(el) ?? []),
        ...(ctx.use<CarbonsApi>('carbons')?.copiedTo(el) ?? []),
      ].filter((s) => s !== session);
      if (others.length === 0) return false;
      if (others.some((s) => !s.closed)) {
        handedOver.add(el);
        return true;
      }
      return !handedOver.has(el);
    }

    ctx.hook(
      'session/closed',
      async ({ session }) => {
        const sm = bySession.get(session);
        if (!sm) return;
        bySession.delete(session);
        byId.delete(sm.id);
        clearTimeout(sm.hibernateTimer);
        clearTimeout(sm.ackTimer);
        if (sm.stream) takeHeld(sm, sm.stream);
        sm.stream = undefined;
        const queued = sm.queue.splice(0);
        const pending = queued.filter(({ el }) => !seenElsewhere(session, el));
        if (queued.length > 0)
          ctx.log.info(
            { jid: session.jid.toString(), count: pending.length, skipped: queued.length - pending.length },
            'routing unacknowledged stanzas again',
          );
        for (const { el, at } of pending) {
          try {
            await ctx.reroute(session, el, at);
          } catch (err) {
            ctx.log.error({ err }, 'could not route an unacknowledged stanza again');
          }
        }
      },
      100,
    );
  },
});

export type SmOptions = Options;
