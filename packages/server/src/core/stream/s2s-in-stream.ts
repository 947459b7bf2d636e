import { xml, type Element } from '@natter/xml';
import { parseJid, type Jid } from '@natter/jid';
import { NS, type StanzaErrorCondition } from '@natter/protocol';
import type { Transport } from '../transport.js';
import type { ServerCore } from '../server-core.js';
import {
  federationAllowed,
  type S2SAuthMethod,
  type S2SStreamHandle,
  type S2SStreamInfo,
} from '../s2s/federation.js';
import { certificateAuthenticates, type CertificateVerdict } from '../s2s/peer-certificate.js';
import { dialbackKeyValid } from '../s2s/dialback-key.js';
import { TokenBucket } from '../../util/token-bucket.js';
import { StreamMachine } from './stream-machine.js';
import { answerable, checkStanza } from './stanza-checks.js';
import { dialbackIn } from './steps/dialback-in.js';

/** `<db:result/>` requests being checked at once on one stream (piggybacked domains). */
const MAX_PENDING_RESULTS = 16;
/** Domain pairs authenticated on one stream (piggybacking): a wildcard zone cannot grow it without end. */
const MAX_PAIRS = 256;
/** Dialback and SASL elements per second on one stream (burst: ten times as many). */
const NONZAS_PER_SECOND = 5;
/** Past this much debt (ms of waiting) a flooding peer is cut off with policy-violation. */
const FLOOD_DEBT_MS = 10_000;

/**
 * Inbound stanza allowance per remote domain (`s2s.stanzasPerSecond`), shared by every stream of
 * that domain (a peer cannot multiply its allowance by opening more connections).
 */
export class RemoteRates {
  private readonly buckets = new Map<string, { bucket: TokenBucket; streams: number }>();

  constructor(private readonly perSecond: number) {}

  join(domain: string): TokenBucket {
    let b = this.buckets.get(domain);
    if (!b)
      this.buckets.set(
        domain,
        (b = { bucket: new TokenBucket(this.perSecond, this.perSecond * 2), streams: 0 }),
      );
    b.streams++;
    return b.bucket;
  }

  leave(domain: string): void {
    const b = this.buckets.get(domain);
    // The last stream of a domain takes its bucket along: a reconnecting peer starts afresh, which
    // the connection caps bound.
    if (b && --b.streams <= 0) this.buckets.delete(domain);
  }
}

/** What the listener tells an inbound stream about its connection. */
export interface InboundOptions {
  /** Per-remote-domain stanza buckets, shared by the listener's streams. */
  rates: RemoteRates;
}

/**
 * The receiving (inbound) server-to-server profile of the stream machine (RFC 6120): a peer opens
 * a `jabber:server` stream to one of our domains; we offer STARTTLS (required unless
 * `s2s.requireEncryption` is off), then SASL EXTERNAL when its certificate authenticates the domain
 * in its header (XEP-0178), and dialback (XEP-0220) unless `s2s.requireTrustedCertificates`.
 * Dialback requests (`<db:result/>`) are checked with the authoritative server through the
 * outbound pool (`<db:verify/>`), or at once when the certificate already authenticates the
 * domain (XEP-0344); several domain pairs may be authenticated on one stream (piggybacking). We
 * also answer `<db:verify/>` as the authoritative server for our own keys. Stanzas are accepted
 * only from a remote domain authenticated for the local domain they are addressed to.
 */
export class S2SInStream extends StreamMachine implements S2SStreamHandle {
  readonly kind = 's2s-in';
  protected readonly contentNs = NS.server;
  readonly host = undefined;
  readonly account = undefined;
  readonly session = undefined;
  /** Authenticated pairs `remote|local`: stanzas from `remote` to `local` are accepted. */
  private readonly pairs = new Set<string>();
  /** Dialback requests being checked, `remote|local`. */
  private readonly pending = new Set<string>();
  private readonly buckets = new Map<string, TokenBucket>();
  private readonly nonzas = new TokenBucket(NONZAS_PER_SECOND, NONZAS_PER_SECOND * 10);
  /** Our domain the peer opened the stream to, and the domain it says it is (header `from`). */
  private headerTo = '';
  private headerFrom = '';
  /** The peer's header had version='1.0' (it can read stream features). */
  private modern = true;
  auth: S2SAuthMethod = 'none';
  /** SASL succeeded: the peer must restart the stream before anything else. */
  private awaitingRestart = false;
  private saslDone = false;
  stanzasIn = 0;
  private readonly idleTimer: NodeJS.Timeout;
  private resumeTimer: NodeJS.Timeout | undefined;

  constructor(
    transport: Transport,
    readonly server: ServerCore,
    private readonly opts: InboundOptions,
  ) {
    // Server-to-server traffic is limited per remote domain here, not by the client limits.
    super(transport, { config: server.config, log: server.log, limiter: undefined, metrics: server.metrics });
    server.s2sInbound.add(this);
    this.start();
    const idle = server.config.s2s.idleTimeoutMs;
    this.idleTimer = setInterval(
      () => {
        if (Date.now() - this.lastReceived > idle) {
          server.log.info(
            { remote: this.remoteList(), ip: transport.remoteAddress },
            'closing an idle inbound federation stream',
          );
          this.close();
        }
      },
      Math.min(60_000, Math.max(250, idle / 4)),
    );
    this.idleTimer.unref();
  }

  private get s2s() {
    return this.server.config.s2s;
  }

  get authenticated(): boolean {
    return this.pairs.size > 0;
  }

  protected override headerExtra(): string {
    return ` xmlns:db='${NS.dialback}'` + (this.modern ? ` version='1.0'` : '');
  }

  protected override errorHeaderFrom(): string | undefined {
    return this.headerTo || undefined;
  }

  private remoteList(): string[] {
    return [...new Set([...this.pairs].map((p) => p.split('|')[0]!))];
  }

  info(): S2SStreamInfo {
    return {
      id: this.id,
      direction: 'in',
      localDomains: [...new Set([...this.pairs].map((p) => p.split('|')[1]!))],
      remoteDomains: this.pairs.size > 0 ? this.remoteList() : this.headerFrom ? [this.headerFrom] : [],
      auth: this.auth,
      tls: this.secure,
      tlsVersion: this.transport.tlsVersion?.(),
      address: this.transport.remoteAddress,
      since: this.createdAt,
      stanzasIn: this.stanzasIn,
      stanzasOut: 0,
      state: this.authenticated ? 'authenticated' : this.state,
    };
  }

  // --- the header and features ----------------------------------------------------------------

  protected openStream(attrs: Record<string, string>, contentNs: string): void {
    const to = (attrs.to ?? '').toLowerCase();
    const from = (attrs.from ?? '').toLowerCase();
    const restart = this.state !== 'header';
    if (!restart) this.modern = attrs.version !== undefined && attrs.version.startsWith('1.');
    const served = to !== '' && this.server.router.isLocalDomain(to);
    this.sendHeader(served ? to : undefined, from || undefined);
    if (contentNs !== NS.server) {
      this.fail('invalid-namespace', `a server-to-server stream is qualified by ${NS.server}`);
      return;
    }
    if (!served) {
      this.fail('host-unknown', to === '' ? 'name one of our domains in to' : `${to} is not served here`);
      return;
    }
    if (restart && (to !== this.headerTo || (this.headerFrom !== '' && from !== this.headerFrom))) {
      this.fail('invalid-from', 'a restarted stream keeps its from and to');
      return;
    }
    if (from !== '' && this.server.router.isLocalDomain(from)) {
      this.fail('invalid-from', `${from} is served here; it cannot connect from elsewhere`);
      return;
    }
    if (from !== '' && !federationAllowed(this.s2s, from)) {
      this.server.log.info(
        { remote: from, ip: this.transport.remoteAddress },
        'federation refused by s2s.allow/deny',
      );
      this.fail('policy-violation', `federation with ${from} is not allowed here`);
      return;
    }
    this.headerTo = to;
    this.headerFrom = from;
    this.awaitingRestart = false;
    if (this.state === 'header') this.state = 'negotiating';
    if (!this.modern) {
      // RFC 6120 §4.7.5: a pre-1.0 peer gets no features; it can only use dialback, without TLS.
      if (this.s2s.requireEncryption || this.s2s.requireTrustedCertificates)
        this.fail('unsupported-version', 'this server requires XMPP 1.0 streams with TLS (RFC 6120)');
      return;
    }
    this.writeElement(xml('features', { xmlns: NS.stream }, ...this.features()));
  }

  private features(): Element[] {
    const out: Element[] = [];
    if (!this.secure) {
      if (this.transport.canStartTls)
        out.push(xml('starttls', { xmlns: NS.tls }, this.s2s.requireEncryption && xml('required')));
      if (!this.s2s.requireEncryption && !this.s2s.requireTrustedCertificates) out.push(dialbackFeature());
      return out;
    }
    // XEP-0178 §2: EXTERNAL only when the certificate authenticates the domain the header names.
    if (!this.saslDone && this.headerFrom !== '' && this.certificateFor(this.headerFrom).ok)
      out.push(xml('mechanisms', { xmlns: NS.sasl }, xml('mechanism', {}, 'EXTERNAL')));
    if (!this.s2s.requireTrustedCertificates) out.push(dialbackFeature());
    return out;
  }

  private certificateFor(domain: string): CertificateVerdict {
    if (!this.secure) return { ok: false, reason: 'no TLS' };
    const v = this.transport.peerVerification();
    return certificateAuthenticates(this.transport.peerCertificate(), v.authorized, v.error, domain);
  }

  // --- elements -------------------------------------------------------------------------------

  protected handleElement(el: Element): void | Promise<void> {
    if (this.awaitingRestart) {
      this.fail('not-authorized', 'restart the stream after SASL');
      return;
    }
    if (el.name === 'message' || el.name === 'presence' || el.name === 'iq') {
      if (el.xmlns !== NS.server) {
        this.fail('invalid-namespace', `stanzas must be qualified by ${NS.server}`);
        return;
      }
      return this.stanza(el);
    }
    if (!this.nonzaAllowed()) return;
    if (el.xmlns === NS.tls && el.name === 'starttls') return this.startTls();
    if (el.xmlns === NS.sasl && el.name === 'auth') return this.sasl(el);
    if (el.xmlns === NS.dialback) {
      if (!this.secure && this.s2s.requireEncryption) {
        this.fail('policy-violation', 'TLS is required before dialback (s2s.requireEncryption)');
        return;
      }
      if (el.name === 'result' && el.attrs.type === undefined) return this.dialbackResult(el);
      if (el.name === 'verify' && el.attrs.type === undefined) return this.dialbackVerify(el);
    }
    this.fail('unsupported-stanza-type', `<${el.name} xmlns='${el.xmlns}'/> is not expected here`);
  }

  /** Dialback and SASL elements are few in a healthy stream: a flood is cut off. */
  private nonzaAllowed(): boolean {
    const wait = this.nonzas.take(1);
    if (wait > FLOOD_DEBT_MS) {
      this.fail('policy-violation', 'too many negotiation requests');
      return false;
    }
    if (wait > 0) this.throttle(wait);
    return true;
  }

  private throttle(ms: number): void {
    if (this.resumeTimer) return;
    this.pauseReading('rate');
    this.resumeTimer = setTimeout(() => {
      this.resumeTimer = undefined;
      this.resumeReading('rate');
    }, ms);
    this.resumeTimer.unref();
  }

  // --- STARTTLS -------------------------------------------------------------------------------

  private async startTls(): Promise<void> {
    // RFC 6120 §5.4.3.3: nothing learnt before TLS survives it, so TLS comes first or not at all.
    if (this.secure || !this.transport.canStartTls || this.pairs.size > 0 || this.pending.size > 0) {
      this.writeElement(xml('failure', { xmlns: NS.tls }));
      this.close();
      return;
    }
    this.discardInput = true;
    this.transport.pause();
    try {
      await this.transport.startTls(`<proceed xmlns='${NS.tls}'/>`, this.headerTo);
    } catch (err) {
      this.server.log.info(
        { ip: this.transport.remoteAddress, remote: this.headerFrom, err: (err as Error).message },
        'inbound federation: TLS handshake failed',
      );
      this.transport.destroy();
      return;
    }
    // RFC 6120 §5.4.3.3: the peer opens a new stream over TLS.
    this.discardInput = false;
    this.newParser();
    this.transport.resume();
  }

  // --- SASL EXTERNAL (XEP-0178) ---------------------------------------------------------------

  private sasl(el: Element): void {
    const failure = (condition: string, text: string) => {
      this.server.log.info(
        { ip: this.transport.remoteAddress, remote: this.headerFrom, condition, reason: text },
        'inbound federation: SASL EXTERNAL refused',
      );
      this.writeElement(xml('failure', { xmlns: NS.sasl }, xml(condition), xml('text', {}, text)));
    };
    if (el.attrs.mechanism !== 'EXTERNAL') {
      failure('invalid-mechanism', 'only EXTERNAL is offered to servers');
      return;
    }
    if (!this.secure || this.saslDone) {
      failure(this.secure ? 'aborted' : 'encryption-required', 'EXTERNAL is not available now');
      return;
    }
    const text = el.text().trim();
    let authzid = '';
    if (text !== '' && text !== '=') {
      authzid = Buffer.from(text, 'base64').toString('utf8').toLowerCase();
    }
    const domain = authzid || this.headerFrom;
    if (domain === '' || (this.headerFrom !== '' && domain !== this.headerFrom)) {
      failure('invalid-authzid', 'the authorization identity must be the domain in the stream header');
      return;
    }
    if (!federationAllowed(this.s2s, domain) || this.server.router.isLocalDomain(domain)) {
      failure('not-authorized', `federation with ${domain} is not allowed here`);
      return;
    }
    const verdict = this.certificateFor(domain);
    if (!verdict.ok) {
      failure('not-authorized', verdict.reason);
      return;
    }
    this.saslDone = true;
    this.auth = 'external';
    this.headerFrom = domain;
    this.authenticate(domain, this.headerTo, 'external');
    this.writeElement(xml('success', { xmlns: NS.sasl }));
    this.awaitingRestart = true;
    this.newParser();
  }

  // --- dialback (XEP-0220) --------------------------------------------------------------------

  /** The peer asks us to accept stanzas from its domain `from` to ours `to` (§2.1). */
  private dialbackResult(el: Element): void {
    const from = (el.attrs.from ?? '').toLowerCase();
    const to = (el.attrs.to ?? '').toLowerCase();
    const key = el.text().trim();
    if (from === '' || to === '' || key === '') {
      this.fail('improper-addressing', '<db:result/> needs from, to and a key');
      return;
    }
    const pair = `${from}|${to}`;
    const error = (condition: StanzaErrorCondition, type: 'cancel' | 'wait' | 'auth', text: string) => {
      this.server.log.info(
        { remote: from, local: to, condition, reason: text },
        'inbound federation: dialback refused',
      );
      this.writeElement(dialbackIn.resultError(to, from, condition, type, text));
    };
    if (!this.server.router.isLocalDomain(to))
      return error('item-not-found', 'cancel', `${to} is not served here`);
    if (!federationAllowed(this.s2s, from) || this.server.router.isLocalDomain(from))
      return error('forbidden', 'auth', `federation with ${from} is not allowed here`);
    if (this.s2s.requireTrustedCertificates)
      return error(
        'not-authorized',
        'auth',
        'this server accepts only certificates (s2s.requireTrustedCertificates)',
      );
    if (this.pairs.has(pair)) {
      this.writeElement(dialbackIn.result(to, from, 'valid'));
      return;
    }
    if (this.pending.has(pair)) return error('conflict', 'cancel', 'this domain is being verified already');
    if (this.pairs.size >= MAX_PAIRS)
      return error('resource-constraint', 'cancel', 'too many domains on this stream: open another');
    if (this.pending.size >= MAX_PENDING_RESULTS)
      return error('resource-constraint', 'wait', 'too many dialback requests at once');
    // XEP-0344 §2.1: a certificate that already authenticates the domain makes the callback needless.
    if (this.certificateFor(from).ok) {
      this.dialbackDone(from, to, true, 'certificate');
      return;
    }
    const federation = this.server.federation;
    if (!federation) return error('remote-server-not-found', 'cancel', 'federation is off');
    this.pending.add(pair);
    federation.verifyDialback({ local: to, remote: from, streamId: this.streamId, key }).then(
      (valid) => {
        this.pending.delete(pair);
        this.dialbackDone(from, to, valid, 'key');
      },
      (err: Error) => {
        this.pending.delete(pair);
        if (this.state === 'closed' || this.state === 'closing') return;
        error('remote-server-timeout', 'wait', `cannot verify with ${from}: ${err.message}`);
      },
    );
  }

  private dialbackDone(from: string, to: string, valid: boolean, how: 'key' | 'certificate'): void {
    if (this.state === 'closed' || this.state === 'closing') return;
    this.writeElement(dialbackIn.result(to, from, valid ? 'valid' : 'invalid'));
    if (valid) {
      if (this.auth === 'none') this.auth = 'dialback';
      this.authenticate(from, to, how === 'certificate' ? 'dialback (certificate)' : 'dialback');
      return;
    }
    this.server.log.info(
      { remote: from, local: to, ip: this.transport.remoteAddress },
      'inbound federation: the authoritative server says the dialback key is invalid',
    );
    // XEP-0220 §2.4: an invalid key ends a stream that carries nothing else.
    if (this.pairs.size === 0 && this.pending.size === 0) this.close();
  }

  /** A receiving server asks us (authoritative) whether a key it got from our domain is ours (§2.3). */
  private dialbackVerify(el: Element): void {
    const from = (el.attrs.from ?? '').toLowerCase();
    const to = (el.attrs.to ?? '').toLowerCase();
    const id = el.attrs.id ?? '';
    const key = el.text().trim();
    if (from === '' || to === '' || id === '') {
      this.fail('improper-addressing', '<db:verify/> needs from, to and id');
      return;
    }
    if (!this.server.router.isLocalDomain(to)) {
      this.writeElement(dialbackIn.verifyError(to, from, id, 'item-not-found'));
      return;
    }
    if (!federationAllowed(this.s2s, from)) {
      this.writeElement(dialbackIn.verifyError(to, from, id, 'forbidden'));
      return;
    }
    const valid = key !== '' && dialbackKeyValid(this.server.s2sSecret, from, to, id, key);
    this.writeElement(dialbackIn.verify(to, from, id, valid ? 'valid' : 'invalid'));
    // A stream that only verifies stays held to the authentication deadline (limits.authTimeoutMs):
    // answering verifications does not let an unauthenticated peer keep a connection open.
  }

  private authenticate(remote: string, local: string, how: string): void {
    const first = this.pairs.size === 0;
    this.pairs.add(`${remote}|${local}`);
    if (!this.buckets.has(remote)) this.buckets.set(remote, this.opts.rates.join(remote));
    if (first) {
      this.state = 'bound';
      this.established();
    }
    this.server.log.info(
      {
        remote,
        local,
        auth: how,
        tls: this.transport.tlsVersion?.() ?? false,
        ip: this.transport.remoteAddress,
      },
      'inbound federation stream authenticated',
    );
  }

  // --- stanzas --------------------------------------------------------------------------------

  /** RFC 6120 §8.1.1.2 / §13.7: addresses on an authenticated pair only, then the router. */
  private stanza(el: Element): void | Promise<void> {
    const fromAttr = el.attrs.from;
    const toAttr = el.attrs.to;
    if (!fromAttr || !toAttr) {
      this.fail('improper-addressing', 'a server-to-server stanza needs both from and to');
      return;
    }
    let from: Jid;
    try {
      from = parseJid(fromAttr);
    } catch {
      this.fail('invalid-from', `${fromAttr} is not a valid JID`);
      return;
    }
    let to: Jid;
    try {
      to = parseJid(toAttr);
    } catch {
      // Nobody here can be addressed by it; the sender's server learns nothing it could not know.
      this.server.log.debug({ remote: from.domain, to: toAttr }, 'inbound federation: malformed to, dropped');
      return;
    }
    if (!this.pairs.has(`${from.domain}|${to.domain}`)) {
      if (!this.server.router.isLocalDomain(to.domain)) {
        this.fail('host-unknown', `${to.domain} is not served here`);
        return;
      }
      this.fail('invalid-from', `${from.domain} is not authenticated for ${to.domain} on this stream`);
      return;
    }
    const bucket = this.buckets.get(from.domain)!;
    const wait = bucket.take(1);
    if (wait > FLOOD_DEBT_MS) {
      this.server.log.warn({ remote: from.domain }, 'inbound federation: stanza flood, closing the stream');
      this.fail('policy-violation', `too many stanzas from ${from.domain}: slow down`);
      return;
    }
    if (wait > 0) this.throttle(wait);
    el.attrs.from = from.toString();
    el.attrs.to = to.toString();
    this.stanzasIn++;
    const ev = { stanza: el, from, to, origin: undefined };
    const invalid = checkStanza(el);
    if (invalid) {
      if (answerable(el)) this.server.router.bounce(ev, invalid.condition, invalid.text);
      return;
    }
    return this.server.routeFromRemote(ev);
  }

  protected async finished_(): Promise<void> {
    clearInterval(this.idleTimer);
    clearTimeout(this.resumeTimer);
    this.server.s2sInbound.delete(this);
    for (const remote of this.buckets.keys()) this.opts.rates.leave(remote);
    this.buckets.clear();
    if (this.pairs.size > 0)
      this.server.log.info(
        { remote: this.remoteList(), ip: this.transport.remoteAddress },
        'inbound federation stream closed',
      );
  }
}

/** XEP-0220 §2.1 stream feature, with `<errors/>` (we understand dialback error conditions). */
function dialbackFeature(): Element {
  return xml('dialback', { xmlns: NS.dialbackFeature }, xml('errors'));
}
