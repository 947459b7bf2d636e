import type { StanzaErrorCondition } from '@natter/protocol';
import type { RouteEvent } from '../hooks.js';
import type { ServerCore } from '../server-core.js';
import { S2SOutStream, type OutboundEvents } from '../stream/s2s-out-stream.js';
import { federationAllowed, type Dialer, type Federation, type S2SStreamInfo } from './federation.js';
import { resolveDomain, type Candidate } from './resolve.js';

/** How often idle outbound streams are looked for (at most; a quarter of the idle timeout if shorter). */
const IDLE_SWEEP_MS = 60_000;
/** `<db:verify/>` requests waiting for answers, per remote domain. */
const MAX_PENDING_VERIFY = 256;

interface Queued {
  ev: RouteEvent;
}

interface PendingVerify {
  resolve: (valid: boolean) => void;
  reject: (err: Error) => void;
  timer: NodeJS.Timeout;
  /** The stream the request went out on (its answer must come back on it). */
  stream?: S2SOutStream | undefined;
}

/**
 * Everything we know about one remote domain: its streams (normally one, carrying every local
 * domain; a second one for a local domain the peer would not piggyback), what waits for a stream
 * or for a local domain's authorisation, a connection attempt in progress, and our `<db:verify/>`
 * requests to it.
 */
class RemoteDomain {
  readonly streams = new Set<S2SOutStream>();
  /** Stanzas waiting, by the local domain they come from. */
  readonly queues = new Map<string, Queued[]>();
  queued = 0;
  /** The local domains a connection attempt is running for. */
  readonly connecting = new Set<string>();
  readonly verifies = new Map<string, PendingVerify>();
  /** `<db:verify/>` requests waiting for a usable stream. */
  readonly verifyWaiting: { local: string; remote: string; streamId: string; key: string }[] = [];

  constructor(readonly domain: string) {}

  streamFor(local: string): S2SOutStream | undefined {
    for (const s of this.streams) if (s.authorizedDomains.has(local)) return s;
    return undefined;
  }

  usableStream(): S2SOutStream | undefined {
    for (const s of this.streams) if (s.isUsable) return s;
    return undefined;
  }
}

/**
 * The outbound side of federation (decision 0006): one stream per remote domain shared by every
 * user and every local domain (further local domains authorised by dialback piggybacking, or on a
 * stream of their own when the peer refuses that), a bounded queue while connecting, bounces with
 * `remote-server-not-found` or `remote-server-timeout` within `s2s.connectTimeoutMs`, and idle
 * streams closed after `s2s.idleTimeoutMs`. Also the receiving server's `<db:verify/>` requests.
 */
export class OutboundPool implements Federation {
  private readonly remotes = new Map<string, RemoteDomain>();
  private readonly sweeper: NodeJS.Timeout;
  private stopped = false;

  constructor(
    private readonly core: ServerCore,
    private readonly dial: Dialer,
  ) {
    const idle = core.config.s2s.idleTimeoutMs;
    this.sweeper = setInterval(() => this.sweepIdle(), Math.min(IDLE_SWEEP_MS, Math.max(250, idle / 4)));
    this.sweeper.unref();
  }

  private get s2s() {
    return this.core.config.s2s;
  }

  private get log() {
    return this.core.log;
  }

  private remote(domain: string): RemoteDomain {
    let r = this.remotes.get(domain);
    if (!r) {
      r = new RemoteDomain(domain);
      this.remotes.set(domain, r);
    }
    return r;
  }

  // --- stanzas ------------------------------------------------------------------------------------

  send(ev: RouteEvent): void {
    const remoteDomain = ev.to.domain;
    const local = ev.from.domain;
    if (this.stopped) {
      this.bounce(ev, 'remote-server-timeout', 'the server is shutting down');
      return;
    }
    if (!this.core.router.isLocalDomain(local)) {
      // Only our own domains speak to other servers: a remote sender is never relayed.
      this.bounce(ev, 'not-allowed', `${local} is not served here`);
      return;
    }
    if (!federationAllowed(this.s2s, remoteDomain)) {
      this.bounce(ev, 'remote-server-not-found', `federation with ${remoteDomain} is not allowed here`);
      return;
    }
    const remote = this.remote(remoteDomain);
    const stream = remote.streamFor(local);
    if (stream && stream.state !== 'closing' && stream.state !== 'closed') {
      stream.send(ev.stanza);
      return;
    }
    if (remote.queued >= this.s2s.maxQueue) {
      this.bounce(ev, 'resource-constraint', `too many stanzas wait for ${remoteDomain}`);
      return;
    }
    let q = remote.queues.get(local);
    if (!q) {
      q = [];
      remote.queues.set(local, q);
    }
    q.push({ ev });
    remote.queued++;
    this.ensureAuthorized(remote, local);
  }

  /** Gets `local` authorised towards `remote`: piggybacked on a live stream, or a new connection. */
  private ensureAuthorized(remote: RemoteDomain, local: string): void {
    // One connection attempt per remote domain at a time: other local domains wait for it, then
    // piggyback on its stream (or share its failure).
    if (remote.connecting.size > 0) return;
    for (const s of remote.streams) if (s.pendingDomains.has(local)) return;
    const carrier = [...remote.streams].find(
      (s) => s.isUsable && s.authenticated && !this.refusedOn(s, local) && s.state !== 'closing',
    );
    if (carrier) {
      carrier.authorize(local);
      return;
    }
    void this.connect(remote, local);
  }

  /** Local domains a stream's peer refused (not asked again on that stream). */
  private readonly refusals = new WeakMap<S2SOutStream, Set<string>>();

  private refusedOn(stream: S2SOutStream, local: string): boolean {
    return this.refusals.get(stream)?.has(local) ?? false;
  }

  // --- connecting ---------------------------------------------------------------------------------

  /**
   * Resolves the remote domain and tries its candidates in order until one gives an authenticated
   * stream for `local`, all within `s2s.connectTimeoutMs`; what waits bounces otherwise.
   */
  private async connect(remote: RemoteDomain, local: string): Promise<void> {
    remote.connecting.add(local);
    const deadline = Date.now() + this.s2s.connectTimeoutMs;
    let succeeded = false;
    let failure: { condition: StanzaErrorCondition; text: string } = {
      condition: 'remote-server-timeout',
      text: `could not reach ${remote.domain}`,
    };
    try {
      const resolution = await resolveDomain(remote.domain, {
        routes: this.s2s.routes,
        dnsServers: this.s2s.dnsServers,
        timeoutMs: Math.min(5000, this.s2s.connectTimeoutMs),
      });
      if (resolution.candidates.length === 0) {
        failure = {
          condition: 'remote-server-not-found',
          text:
            resolution.source === 'invalid-domain'
              ? `${remote.domain} is not a valid domain name`
              : `${remote.domain} offers no XMPP server-to-server service (SRV target ".")`,
        };
      } else {
        let notFound = 0;
        let left = resolution.candidates.length;
        for (const candidate of resolution.candidates) {
          if (this.stopped || Date.now() >= deadline) break;
          const outcome = await this.attempt(remote, local, candidate, deadline, left);
          left--;
          if (outcome === 'ok') {
            succeeded = true;
            break;
          }
          if (outcome.notFound) notFound++;
          failure = { condition: 'remote-server-timeout', text: outcome.text };
        }
        if (notFound === resolution.candidates.length)
          failure = { condition: 'remote-server-not-found', text: `${remote.domain} does not exist` };
      }
    } catch (err) {
      failure = { condition: 'remote-server-timeout', text: (err as Error).message };
    } finally {
      remote.connecting.delete(local);
    }
    if (succeeded) {
      // Local domains that waited for this attempt now ride on its stream (piggybacking).
      for (const other of [...remote.queues.keys()]) this.ensureAuthorized(remote, other);
      return;
    }
    this.log.info({ remote: remote.domain, local, reason: failure.text }, 'federation attempt failed');
    this.flushFailed(remote, local, failure);
    // Local domains that waited for this attempt fail with it, unless a stream is on its way for them.
    if (!this.stopped)
      for (const other of [...remote.queues.keys()])
        if (![...remote.streams].some((s) => s.pendingDomains.has(other) || s.authorizedDomains.has(other)))
          this.flushFailed(remote, other, failure);
    this.failVerifies(remote, new Error(failure.text));
  }

  /** One candidate: connect, negotiate, authenticate `local`; 'ok' or why not. */
  private attempt(
    remote: RemoteDomain,
    local: string,
    candidate: Candidate,
    deadline: number,
    candidatesLeft: number,
  ): Promise<'ok' | { text: string; notFound: boolean }> {
    const address = `${candidate.directTls ? 'tls://' : ''}${candidate.host}:${candidate.port}`;
    const certificates = this.core.s2sCertificates;
    if (!certificates)
      return Promise.resolve({ text: 'no certificates for server-to-server TLS', notFound: false });
    return new Promise((resolve) => {
      let settled = false;
      let stream: S2SOutStream | undefined;
      const settle = (r: 'ok' | { text: string; notFound: boolean }) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        resolve(r);
      };
      const timer = setTimeout(
        () => {
          const text = `no authenticated stream to ${remote.domain} at ${address} within ${this.s2s.connectTimeoutMs} ms`;
          stream?.fail('connection-timeout', text);
          settle({ text, notFound: false });
        },
        Math.max(0, deadline - Date.now()),
      );
      timer.unref();
      this.dial({
        host: candidate.host,
        port: candidate.port,
        directTls: candidate.directTls,
        servername: remote.domain,
        context: certificates.contextFor(local),
        // One address that swallows connections must leave time for the next ones.
        timeoutMs: Math.max(
          1,
          Math.min(deadline - Date.now(), Math.max(3000, (deadline - Date.now()) / candidatesLeft)),
        ),
      }).then(
        (transport) => {
          if (settled || this.stopped) {
            transport.destroy();
            settle({ text: 'gave up', notFound: false });
            return;
          }
          stream = new S2SOutStream(
            transport,
            this.core,
            {
              local,
              remote: remote.domain,
              address,
              requireEncryption: this.s2s.requireEncryption,
              requireTrustedCertificates: this.s2s.requireTrustedCertificates,
            },
            this.events(remote, (r) => settle(r)),
          );
          remote.streams.add(stream);
        },
        (err: NodeJS.ErrnoException) => {
          settle({
            text: `${address}: ${err.message}`,
            notFound: err.code === 'ENOTFOUND' || err.code === 'EAI_NONAME',
          });
        },
      );
    });
  }

  /** The pool's side of one stream's life; `attempt` settles the connection attempt. */
  private events(
    remote: RemoteDomain,
    attempt: (r: 'ok' | { text: string; notFound: boolean }) => void,
  ): OutboundEvents {
    return {
      usable: () => this.sendWaitingVerifies(remote),
      authorized: (stream, local) => {
        this.log.info(
          { remote: remote.domain, local, auth: stream.auth, tls: stream.info().tlsVersion ?? false },
          'federation stream authenticated',
        );
        attempt('ok');
        this.flush(remote, local, stream);
        // Other local domains waiting for this remote ride on this stream (piggybacking).
        for (const other of remote.queues.keys()) if (other !== local) this.ensureAuthorized(remote, other);
        this.sendWaitingVerifies(remote);
      },
      refused: (stream, local, error) => {
        let set = this.refusals.get(stream);
        if (!set) this.refusals.set(stream, (set = new Set()));
        set.add(local);
        if (local === stream.local && !stream.authenticated) {
          attempt({ text: error.text ?? `${remote.domain} refused ${local}`, notFound: false });
          return;
        }
        // A piggybacked domain the peer refused: a stream of its own.
        if (remote.queues.has(local)) void this.connect(remote, local);
      },
      verified: (stream, answer) => {
        const key = `${answer.to}|${answer.from}|${answer.id}`;
        const pending = remote.verifies.get(key);
        if (!pending || pending.stream !== stream) return;
        remote.verifies.delete(key);
        clearTimeout(pending.timer);
        // XEP-0220 §2.4: an error is no verdict on the key (the inbound side says so, not "invalid").
        if (answer.type === 'error')
          pending.reject(new Error(`${remote.domain} answered the verification with an error`));
        else pending.resolve(answer.type === 'valid');
        this.forget(remote);
      },
      ended: (stream, why) => {
        remote.streams.delete(stream);
        // Verifications whose answer can no longer come (XEP-0220: treated as failed).
        for (const [key, pending] of remote.verifies)
          if (pending.stream === stream) {
            remote.verifies.delete(key);
            clearTimeout(pending.timer);
            pending.reject(new Error(`the stream to ${remote.domain} ended before it answered`));
          }
        attempt({ text: why.text ?? why.condition, notFound: false });
        if (stream.authenticated)
          this.log.info(
            { remote: remote.domain, reason: why.text ?? why.condition },
            'federation stream closed',
          );
        // What waited for a domain pending on this stream is tried again (or bounces) elsewhere.
        for (const local of stream.pendingDomains)
          if (remote.queues.has(local)) this.ensureAuthorized(remote, local);
        this.forget(remote);
      },
    };
  }

  private flush(remote: RemoteDomain, local: string, stream: S2SOutStream): void {
    const q = remote.queues.get(local);
    if (!q) return;
    remote.queues.delete(local);
    remote.queued -= q.length;
    for (const { ev } of q) stream.send(ev.stanza);
  }

  private flushFailed(
    remote: RemoteDomain,
    local: string,
    failure: { condition: StanzaErrorCondition; text: string },
  ): void {
    const q = remote.queues.get(local);
    if (q) {
      remote.queues.delete(local);
      remote.queued -= q.length;
      for (const { ev } of q) this.bounce(ev, failure.condition, failure.text);
    }
    this.forget(remote);
  }

  /** A remote with nothing left (no stream, queue, attempt or verification) is dropped. */
  private forget(remote: RemoteDomain): void {
    if (
      remote.streams.size === 0 &&
      remote.queued === 0 &&
      remote.connecting.size === 0 &&
      remote.verifies.size === 0 &&
      this.remotes.get(remote.domain) === remote
    )
      this.remotes.delete(remote.domain);
  }

  /**
   * A stanza that cannot reach the remote domain goes back to its sender, except presence that is
   * not a subscription request (RFC 6121 §4.6: availability to an unreachable server is dropped).
   */
  private bounce(ev: RouteEvent, condition: StanzaErrorCondition, text: string): void {
    if (ev.stanza.name === 'presence') {
      const type = ev.stanza.attrs.type;
      if (type !== 'subscribe') return;
    }
    this.core.router.bounce(ev, condition, text);
  }

  // --- dialback verification (we are the receiving server) -----------------------------------

  verifyDialback(req: { local: string; remote: string; streamId: string; key: string }): Promise<boolean> {
    if (this.stopped) return Promise.reject(new Error('the server is shutting down'));
    if (!federationAllowed(this.s2s, req.remote))
      return Promise.reject(new Error(`federation with ${req.remote} is not allowed here`));
    const remote = this.remote(req.remote);
    if (remote.verifies.size >= MAX_PENDING_VERIFY)
      return Promise.reject(new Error(`too many dialback verifications pending for ${req.remote}`));
    const key = `${req.local}|${req.remote}|${req.streamId}`;
    if (remote.verifies.has(key)) return Promise.reject(new Error('this stream is being verified already'));
    return new Promise<boolean>((resolve, reject) => {
      const timer = setTimeout(() => {
        remote.verifies.delete(key);
        const i = remote.verifyWaiting.findIndex((w) => `${w.local}|${w.remote}|${w.streamId}` === key);
        if (i >= 0) remote.verifyWaiting.splice(i, 1);
        reject(new Error(`${req.remote} did not answer the dialback verification in time`));
        this.forget(remote);
      }, this.s2s.connectTimeoutMs);
      timer.unref();
      remote.verifies.set(key, { resolve, reject, timer });
      const stream = remote.usableStream();
      if (stream) {
        remote.verifies.get(key)!.stream = stream;
        stream.verify(req);
      } else {
        remote.verifyWaiting.push(req);
        if (remote.connecting.size === 0 && remote.streams.size === 0) void this.connect(remote, req.local);
      }
    });
  }

  private sendWaitingVerifies(remote: RemoteDomain): void {
    const stream = remote.usableStream();
    if (!stream) return;
    for (const req of remote.verifyWaiting.splice(0)) {
      const pending = remote.verifies.get(`${req.local}|${req.remote}|${req.streamId}`);
      if (!pending) continue;
      pending.stream = stream;
      stream.verify(req);
    }
  }

  private failVerifies(remote: RemoteDomain, err: Error): void {
    if (remote.usableStream()) return;
    for (const req of remote.verifyWaiting.splice(0)) {
      const key = `${req.local}|${req.remote}|${req.streamId}`;
      const pending = remote.verifies.get(key);
      if (!pending) continue;
      remote.verifies.delete(key);
      clearTimeout(pending.timer);
      pending.reject(err);
    }
    this.forget(remote);
  }

  // --- operation ----------------------------------------------------------------------------------

  list(): S2SStreamInfo[] {
    return [...this.remotes.values()].flatMap((r) => [...r.streams].map((s) => s.info()));
  }

  private sweepIdle(): void {
    const cutoff = Date.now() - this.s2s.idleTimeoutMs;
    for (const remote of this.remotes.values())
      for (const stream of remote.streams)
        if (stream.authenticated && stream.lastActivity < cutoff && remote.verifies.size === 0) {
          this.log.info(
            { remote: remote.domain, idleMs: Date.now() - stream.lastActivity },
            'closing an idle federation stream',
          );
          stream.close();
        }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.sweeper);
    const streams = [...this.remotes.values()].flatMap((r) => [...r.streams]);
    for (const remote of this.remotes.values()) {
      for (const local of [...remote.queues.keys()])
        this.flushFailed(remote, local, {
          condition: 'remote-server-timeout',
          text: 'the server is shutting down',
        });
      for (const [, pending] of remote.verifies) {
        clearTimeout(pending.timer);
        pending.reject(new Error('the server is shutting down'));
      }
      remote.verifies.clear();
    }
    for (const s of streams) s.close();
    await Promise.all(
      streams.map(
        (s) =>
          new Promise<void>((resolve) => {
            if (s.state === 'closed') resolve();
            else s.transport.onClose(() => resolve());
          }),
      ),
    );
  }
}
