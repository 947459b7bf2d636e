import { xml, type Element } from '@natter/xml';
import { NS, StanzaError } from '@natter/protocol';
import type { Transport } from '../transport.js';
import type { ServerCore } from '../server-core.js';
import type { S2SAuthMethod, S2SStreamHandle, S2SStreamInfo } from '../s2s/federation.js';
import { certificateAuthenticates } from '../s2s/peer-certificate.js';
import { StreamMachine } from './stream-machine.js';
import { bounceUnsent, bouncedIfUnsent } from './stanza-checks.js';
import { DIALBACK_NS, DIALBACK_FEATURE_NS, dialbackOut } from './steps/dialback-out.js';

/** What an outbound stream tells the pool that owns it (core/s2s/outbound-pool.ts). */
export interface OutboundEvents {
  /** TLS (when offered or required) is in place: `<db:verify/>` may be sent now. */
  usable(stream: S2SOutStream): void;
  /** `local` may now send stanzas to the remote domain on this stream. */
  authorized(stream: S2SOutStream, local: string): void;
  /** The peer refused `local` on this stream (dialback invalid or error, SASL and dialback failed). */
  refused(stream: S2SOutStream, local: string, error: StanzaError): void;
  /** A `<db:verify/>` answer (we are the receiving server asking the authoritative one). */
  verified(
    stream: S2SOutStream,
    answer: { from: string; to: string; id: string; type: 'valid' | 'invalid' | 'error' },
  ): void;
  /** The stream is over; `why` says why, for the log and for what is still queued. */
  ended(stream: S2SOutStream, why: { condition: string; text?: string | undefined }): void;
}

export interface OutboundOptions {
  /** The local domain the stream is opened for (its header's `from`, authenticated first). */
  local: string;
  remote: string;
  /** The address we connected to, for the operator view. */
  address: string;
  requireEncryption: boolean;
  requireTrustedCertificates: boolean;
}

/**
 * The initiating (outbound) server-to-server profile of the stream machine (RFC 6120 §4–§6):
 * we send the header first, upgrade with STARTTLS when the peer offers it (refusing a peer that
 * cannot encrypt when `s2s.requireEncryption`), authenticate with SASL EXTERNAL (XEP-0178) when
 * the peer offers it, else with dialback (XEP-0220, steps/dialback-out.ts), and then write the
 * stanzas the pool hands it. Further local domains are authorised on the same stream by dialback
 * (piggybacking). It also carries our `<db:verify/>` requests as a receiving server.
 */
export class S2SOutStream extends StreamMachine implements S2SStreamHandle {
  readonly kind = 's2s-out';
  protected readonly contentNs = NS.server;
  readonly host = undefined;
  readonly account = undefined;
  readonly session = undefined;
  /** Local domains authorised on this stream. */
  readonly authorizedDomains = new Set<string>();
  /** Local domains whose dialback is in progress (each answered by `<db:result type=…/>`). */
  readonly pendingDomains = new Set<string>();
  /** The id of the peer's stream header: dialback keys are computed over it. */
  peerStreamId = '';
  /** TLS in place (or refused by configuration): dialback elements may be sent. */
  isUsable = false;
  auth: S2SAuthMethod = 'none';
  stanzasOut = 0;
  lastActivity = Date.now();
  /** The peer offered dialback (XEP-0220 §2.1 stream feature, or its namespace in the header). */
  private dialbackOffered = false;
  /** The peer's header declared the dialback namespace (older servers announce it that way only). */
  private dialbackInHeader = false;
  private saslPending = false;
  /** SASL EXTERNAL succeeded; authorised once the restarted stream's features arrive. */
  private saslSucceeded = false;
  /** Deadlines of the dialback requests in flight, by local domain. */
  private readonly pendingTimers = new Map<string, NodeJS.Timeout>();
  private tlsStarting = false;
  /** The peer's certificate authenticates its domain (RFC 6125), checked once TLS is up. */
  private certificateVerdict: { ok: boolean; reason?: string } = { ok: false, reason: 'no TLS' };

  constructor(
    transport: Transport,
    readonly server: ServerCore,
    readonly opts: OutboundOptions,
    private readonly events: OutboundEvents,
  ) {
    // Server-to-server streams are not client connections: the client limits do not apply.
    // The pool's s2s.connectTimeoutMs bounds negotiation, not the client authentication deadline.
    const limits = {
      ...server.config.limits,
      authTimeoutMs: Math.max(server.config.limits.authTimeoutMs, server.config.s2s.connectTimeoutMs + 1000),
    };
    super(transport, { config: { limits }, log: server.log, limiter: undefined, metrics: server.metrics });
    this.start();
    this.sendHeader(opts.local, opts.remote);
    this.state = 'negotiating';
  }

  get local(): string {
    return this.opts.local;
  }

  get remote(): string {
    return this.opts.remote;
  }

  get authenticated(): boolean {
    return this.authorizedDomains.size > 0;
  }

  /** Whether the peer's certificate authenticated it (and why not), for dialback decisions and logs. */
  get peerCertificate(): { ok: boolean; reason?: string } {
    return this.certificateVerdict;
  }

  /** The dialback namespace is declared on every header we send (XEP-0220 §2.1). */
  protected override headerExtra(): string {
    return ` xmlns:db='${DIALBACK_NS}' version='1.0'`;
  }

  protected override errorHeaderFrom(): string | undefined {
    return this.opts.local;
  }

  info(): S2SStreamInfo {
    return {
      id: this.id,
      direction: 'out',
      localDomains: [...this.authorizedDomains],
      remoteDomains: [this.opts.remote],
      auth: this.auth,
      tls: this.secure,
      tlsVersion: this.transport.tlsVersion?.(),
      address: this.opts.address,
      since: this.createdAt,
      stanzasIn: 0,
      stanzasOut: this.stanzasOut,
      state: this.authenticated ? 'authenticated' : this.state,
    };
  }

  // --- negotiation --------------------------------------------------------------------------------

  protected openStream(attrs: Record<string, string>, contentNs: string): void {
    if (contentNs !== NS.server) {
      this.fail('invalid-namespace', `a server-to-server stream is qualified by ${NS.server}`);
      return;
    }
    if (attrs.version === undefined || !attrs.version.startsWith('1.')) {
      // RFC 6120 §4.7.5: a peer without version='1.0' offers neither TLS nor SASL.
      this.fail('unsupported-version', 'XMPP 1.0 (RFC 6120) streams only');
      return;
    }
    const from = (attrs.from ?? '').toLowerCase();
    if (from !== '' && from !== this.opts.remote) {
      this.fail('invalid-from', `this stream was opened to ${this.opts.remote}, not ${from}`);
      return;
    }
    this.peerStreamId = attrs.id ?? '';
    this.dialbackInHeader = Object.values(attrs).includes(DIALBACK_NS) || 'xmlns:db' in attrs;
  }

  protected handleElement(el: Element): void | Promise<void> {
    if (el.name === 'features' && el.xmlns === NS.stream) return this.features(el);
    if (el.xmlns === NS.tls) return this.tlsAnswer(el);
    if (el.xmlns === NS.sasl) return this.saslAnswer(el);
    if (el.xmlns === DIALBACK_NS) return this.dialbackAnswer(el);
    if (el.name === 'message' || el.name === 'presence' || el.name === 'iq') {
      // RFC 6120 §8.1.1: stanzas flow from the initiating to the receiving server only.
      this.fail('unsupported-stanza-type', 'stanzas are not accepted on this (outbound) stream');
      return;
    }
    this.fail('unsupported-stanza-type', `<${el.name} xmlns='${el.xmlns}'/> is not expected here`);
  }

  private features(el: Element): void {
    this.dialbackOffered =
      el.getChild('dialback', DIALBACK_FEATURE_NS) !== undefined || this.dialbackInHeader;
    if (el.getChild('starttls', NS.tls) && !this.secure) {
      if (!this.transport.canStartTls) {
        this.fail('undefined-condition', 'cannot start TLS on this connection');
        return;
      }
      this.tlsStarting = true;
      this.writeElement(xml('starttls', { xmlns: NS.tls }));
      return;
    }
    if (!this.secure && this.opts.requireEncryption) {
      this.give_up(
        'policy-violation',
        `${this.opts.remote} does not offer TLS, which s2s.requireEncryption requires`,
      );
      return;
    }
    if (this.saslSucceeded) {
      // After SASL's restart: the stream is authenticated for our domain.
      if (!this.authorizedDomains.has(this.opts.local)) {
        this.authorizedDomains.add(this.opts.local);
        this.established();
        this.usableNow();
        this.events.authorized(this, this.opts.local);
      }
      return;
    }
    if (this.secure) {
      const v = this.transport.peerVerification();
      this.certificateVerdict = certificateAuthenticates(
        this.transport.peerCertificate(),
        v.authorized,
        v.error,
        this.opts.remote,
      );
    }
    if (this.opts.requireTrustedCertificates && !this.certificateVerdict.ok) {
      this.give_up(
        'remote-connection-failed',
        `the certificate of ${this.opts.remote} does not authenticate it (${this.certificateVerdict.reason ?? ''}), and s2s.requireTrustedCertificates is on`,
      );
      return;
    }
    const mechanisms = el.getChild('mechanisms', NS.sasl);
    const external = mechanisms?.getChildren('mechanism').some((m) => m.text().trim() === 'EXTERNAL');
    if (external && this.secure) {
      this.saslPending = true;
      // XEP-0178 §3: the authorization identity is our domain.
      this.writeElement(
        xml(
          'auth',
          { xmlns: NS.sasl, mechanism: 'EXTERNAL' },
          Buffer.from(this.opts.local).toString('base64'),
        ),
      );
      return;
    }
    this.startDialback();
  }

  private startDialback(): void {
    if (!this.dialbackOffered) {
      this.give_up(
        'remote-connection-failed',
        `${this.opts.remote} offers no authentication we can use (no SASL EXTERNAL for our certificate, no dialback)`,
      );
      return;
    }
    this.usableNow();
    this.authorize(this.opts.local);
  }

  private usableNow(): void {
    if (this.isUsable) return;
    this.isUsable = true;
    this.events.usable(this);
  }

  /**
   * Asks the peer to accept stanzas from `local` on this stream (dialback, XEP-0220 §2.1; for a
   * second domain, piggybacking §2.5). The answer comes as `authorized` or `refused`.
   */
  authorize(local: string): void {
    if (this.authorizedDomains.has(local) || this.pendingDomains.has(local)) return;
    if (!this.isUsable || this.saslPending) return;
    if (!this.dialbackOffered) {
      this.events.refused(
        this,
        local,
        new StanzaError('remote-server-timeout', { text: `${this.opts.remote} does not offer dialback` }),
      );
      return;
    }
    this.pendingDomains.add(local);
    // A peer that never answers must not hold the domain's stanzas forever.
    const timer = setTimeout(() => {
      if (!this.pendingDomains.delete(local)) return;
      this.pendingTimers.delete(local);
      this.events.refused(
        this,
        local,
        new StanzaError('remote-server-timeout', {
          text: `${this.opts.remote} did not answer dialback for ${local}`,
        }),
      );
      if (this.authorizedDomains.size === 0 && this.pendingDomains.size === 0) this.close();
    }, this.server.config.s2s.connectTimeoutMs);
    timer.unref();
    this.pendingTimers.set(local, timer);
    if (this.auth === 'none') this.auth = 'dialback';
    this.writeElement(dialbackOut.result(this.server.s2sSecret, local, this.opts.remote, this.peerStreamId));
  }

  /** Sends `<db:verify/>` for an inbound stream's key (the receiving server's check, §2.3). */
  verify(req: { local: string; remote: string; streamId: string; key: string }): void {
    this.lastActivity = Date.now();
    this.writeElement(dialbackOut.verify(req));
  }

  private async tlsAnswer(el: Element): Promise<void> {
    if (el.name !== 'proceed' || !this.tlsStarting) {
      this.give_up('remote-connection-failed', `${this.opts.remote} refused STARTTLS`);
      return;
    }
    this.tlsStarting = false;
    this.discardInput = true;
    try {
      await this.transport.startTls('');
    } catch (err) {
      this.give_up(
        'remote-connection-failed',
        `TLS handshake with ${this.opts.remote} failed: ${(err as Error).message}`,
      );
      this.transport.destroy();
      return;
    }
    // RFC 6120 §5.4.3.3: a new stream over TLS.
    this.discardInput = false;
    this.newParser();
    this.sendHeader(this.opts.local, this.opts.remote);
  }

  private saslAnswer(el: Element): void {
    if (!this.saslPending) {
      this.fail('not-authorized', 'unexpected SASL element');
      return;
    }
    this.saslPending = false;
    if (el.name === 'success') {
      // RFC 6120 §6.4.6: a new stream; stanzas wait for its features (see `features`).
      this.auth = 'external';
      this.saslSucceeded = true;
      this.newParser();
      this.sendHeader(this.opts.local, this.opts.remote);
      return;
    }
    // XEP-0178 §3 / RFC 6120 §6.4.5: EXTERNAL failed; dialback may still work on this stream.
    const condition = el.children[0] && typeof el.children[0] !== 'string' ? el.children[0].name : 'failure';
    this.server.log.info(
      { remote: this.opts.remote, condition },
      'SASL EXTERNAL refused by the peer: falling back to dialback',
    );
    this.startDialback();
  }

  private dialbackAnswer(el: Element): void {
    const type = el.attrs.type;
    const from = (el.attrs.from ?? '').toLowerCase();
    const to = (el.attrs.to ?? '').toLowerCase();
    if (el.name === 'verify') {
      this.events.verified(this, {
        from,
        to,
        id: el.attrs.id ?? '',
        type: type === 'valid' ? 'valid' : type === 'error' ? 'error' : 'invalid',
      });
      return;
    }
    if (el.name !== 'result' || from !== this.opts.remote || !this.pendingDomains.has(to)) {
      this.fail('invalid-xml', 'unexpected dialback element');
      return;
    }
    this.pendingDomains.delete(to);
    clearTimeout(this.pendingTimers.get(to));
    this.pendingTimers.delete(to);
    if (type === 'valid') {
      this.authorizedDomains.add(to);
      this.established();
      this.events.authorized(this, to);
      return;
    }
    const error = el.getChild('error');
    const condition = error?.children.find((c) => typeof c !== 'string' && c.xmlns === NS.stanzas);
    const text =
      `${this.opts.remote} refused dialback for ${to}` +
      (type === 'error'
        ? ` (${condition && typeof condition !== 'string' ? condition.name : 'error'})`
        : ' (invalid key)');
    this.server.log.info({ remote: this.opts.remote, local: to, type }, text);
    this.events.refused(this, to, new StanzaError('remote-server-timeout', { text }));
    // XEP-0220 §2.4: a stream that carries nothing (no domain authorised, none pending) ends.
    if (this.authorizedDomains.size === 0 && this.pendingDomains.size === 0) this.close();
  }

  /** Ends the attempt with a stream error; the pool hears why. */
  private give_up(condition: 'policy-violation' | 'remote-connection-failed', text: string): void {
    this.failReason = { condition, text };
    this.fail(condition === 'policy-violation' ? 'policy-violation' : 'undefined-condition', text);
  }

  private failReason: { condition: string; text?: string } | undefined;

  // --- stanzas ------------------------------------------------------------------------------------

  /** Writes a stanza from an authorised local domain. */
  send(stanza: Element): void {
    this.stanzasOut++;
    this.lastActivity = Date.now();
    this.writeStanza(stanza);
  }

  /** Messages and IQ requests are kept until the kernel took them: a peer cut off as a slow reader bounces them. */
  protected override keepsUntilSent(el: Element): boolean {
    return bouncedIfUnsent(el);
  }

  protected override cutOffUnsent(unsent: Element[]): void {
    bounceUnsent(this.server.router, unsent, 'remote-server-timeout', `${this.opts.remote} stopped reading`);
  }

  protected async finished_(): Promise<void> {
    for (const t of this.pendingTimers.values()) clearTimeout(t);
    this.pendingTimers.clear();
    this.events.ended(
      this,
      this.failReason ?? {
        condition: this.closeCondition ?? 'closed',
        text: `the stream to ${this.opts.remote} ended`,
      },
    );
  }
}
