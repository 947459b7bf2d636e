import { createHash, randomBytes } from 'node:crypto';
import { xml, type Element } from '@natter/xml';
import type { Jid } from '@natter/jid';
import { NS, toBase64, SaslFailure, StanzaError } from '@natter/protocol';
import { saslOffer } from '../../sasl-offer.js';
import type { Session } from '../../session.js';
import type { Sasl2Request, UserAgent } from '../../sasl2-extension.js';
import type { SaslAttempt } from './sasl-attempt.js';
import { NOT_MINE, type ClientNegotiation, type NegotiationStep } from './step.js';

/** XEP-0388 §2.3: the user-agent id, a UUID by the XEP's advice; anything similar and short is accepted. */
const USER_AGENT_ID = /^[A-Za-z0-9._:-]{1,64}$/;
const USER_AGENT_TEXT_MAX = 256;
/** XEP-0386 §2.2: the tag names the client software; it becomes the start of the resource. */
const BIND_TAG = /^[\p{L}\p{N} ._+-]{1,64}$/u;

/**
 * SASL2 (XEP-0388) with Bind2 (XEP-0386): the same mechanisms, channel binding, limits and failure
 * accounting as RFC 6120 SASL (one `SaslAttempt` for both), in `urn:xmpp:sasl:2` syntax, without a
 * stream restart. Modules add inline features through the host's SASL2 extensions (stream
 * resumption, FAST tokens) and Bind2 features (carbons, CSI, stream management); the core knows
 * none of them.
 */
export class Sasl2Step implements NegotiationStep {
  readonly name = 'sasl2';
  /** The `<authenticate/>` of the exchange in progress. */
  private request: Sasl2Request | undefined;

  constructor(
    private readonly stream: ClientNegotiation,
    private readonly sasl: SaslAttempt,
  ) {}

  features(): Element[] {
    const { stream } = this;
    if (!stream.credentialsAllowed() || !stream.host) return [];
    const inline: Element[] = [];
    const host = stream.host;
    inline.push(
      xml(
        'bind',
        { xmlns: NS.bind2 },
        xml(
          'inline',
          null,
          host.bind2Features.map((f) => xml('feature', { var: f.var })),
        ),
      ),
    );
    for (const ext of host.sasl2Extensions) if (ext.inline) inline.push(...ext.inline(stream));
    return [
      xml(
        'authentication',
        { xmlns: NS.sasl2 },
        saslOffer(stream.transport, stream.server.config.auth.offerScramSha256).mechanisms.map((m) =>
          xml('mechanism', null, m),
        ),
        xml('inline', null, inline),
      ),
    ];
  }

  handle(el: Element): typeof NOT_MINE | void | Promise<void> {
    if (el.xmlns !== NS.sasl2) return NOT_MINE;
    if (!this.stream.credentialsAllowed()) {
      this.failure(new SaslFailure('encryption-required', 'authenticate over TLS'), false);
      return;
    }
    switch (el.name) {
      case 'authenticate':
        return this.authenticate(el);
      case 'response':
        if (!this.sasl.inProgress || !this.request) {
          this.failure(new SaslFailure('malformed-request', 'no authentication in progress'));
          return;
        }
        return this.step(el.text() === '=' ? '' : el.text());
      case 'abort':
        this.request = undefined;
        this.failure(new SaslFailure('aborted', 'authentication aborted by the client'));
        return;
      default:
        this.failure(new SaslFailure('malformed-request', `<${el.name}/> is not a SASL2 request`));
        return;
    }
  }

  private async authenticate(el: Element): Promise<void> {
    const { stream } = this;
    const host = stream.host!;
    this.request = undefined;
    this.sasl.abort();
    let userAgent: UserAgent | undefined;
    try {
      userAgent = readUserAgent(el);
      checkRequest(el);
    } catch (err) {
      if (!(err instanceof SaslFailure)) throw err;
      this.failure(err);
      return;
    }
    const req: Sasl2Request = { stream, authenticate: el, mechanism: el.attrs.mechanism ?? '', userAgent };
    for (const ext of host.sasl2Extensions) {
      const refused = ext.check?.(req);
      if (refused) {
        this.failure(refused);
        return;
      }
    }
    const refused = this.sasl.begin(req.mechanism, () => {
      for (const ext of host.sasl2Extensions) {
        const m = ext.mechanism?.({
          ...req,
          domain: host.domain,
          noteUsername: (u) => this.sasl.noteUsername(u),
        });
        if (m) return m;
      }
      return undefined;
    });
    if (refused) {
      this.failure(refused);
      return;
    }
    this.request = req;
    const initial = el.getChild('initial-response', NS.sasl2);
    await this.step(initial ? (initial.text() === '=' ? '' : initial.text()) : null);
  }

  private async step(b64: string | null): Promise<void> {
    const { stream } = this;
    const r = await this.sasl.step(b64);
    if (stream.state === 'closed' || stream.state === 'closing') return;
    switch (r.kind) {
      case 'challenge':
        stream.writeElement(xml('challenge', { xmlns: NS.sasl2 }, toBase64(r.data)));
        return;
      case 'failure':
        this.request = undefined;
        this.failure(r.failure);
        return;
      case 'success':
        return this.succeed(r.account, r.additionalData);
    }
  }

  /** XEP-0388 §2.6.1: inline features first (resumption, tokens), then Bind2, then `<success/>`. */
  private async succeed(account: Jid, additionalData: Uint8Array | undefined): Promise<void> {
    const { stream } = this;
    const host = stream.host!;
    const req = this.request!;
    this.request = undefined;
    stream.server.log.debug({ stream: stream.id, account: account.toString() }, 'authenticated (SASL2)');
    stream.authenticatedAs(account, false);
    const inline: Element[] = [];
    const after: (() => void)[] = [];
    let resumed = false;
    for (const ext of host.sasl2Extensions) {
      if (!ext.authenticated) continue;
      const r = await ext.authenticated({ ...req, account });
      if (stream.state === 'closed' || stream.state === 'closing') return;
      if (!r) continue;
      if (r.elements) inline.push(...r.elements);
      if (r.after) after.push(r.after);
      if (r.bound) resumed = true;
    }
    const bindRequest = req.authenticate.getChild('bind', NS.bind2);
    let bound: { session: Session; element: Element } | undefined;
    if (!resumed && bindRequest) {
      try {
        bound = await this.bind2(account, bindRequest, req.userAgent);
      } catch (err) {
        if (!(err instanceof StanzaError)) throw err;
        // Authenticated, but no session can be made: the client is told why, and the stream ends.
        stream.writeElement(
          xml(
            'failure',
            { xmlns: NS.sasl2 },
            xml('temporary-auth-failure', { xmlns: NS.sasl }),
            xml(err.condition, { xmlns: NS.stanzas }),
            xml('text', { 'xml:lang': 'en' }, err.text ?? err.condition),
          ),
        );
        stream.fail('policy-violation', err.text ?? err.condition);
        return;
      }
      if (stream.state === 'closed' || stream.state === 'closing') return;
    }
    const identity = stream.session ? stream.session.jid.toString() : account.toString();
    // `<success/>` and what follows it at once (stanzas re-sent after a resumption) leave together:
    // a client may write while it handles `<success/>` (xmpp.js 0.14 re-sends its own queue then),
    // and Node's TLS then reads whatever else has arrived in the middle of its parsing.
    stream.corked(() => {
      stream.writeElement(
        xml(
          'success',
          { xmlns: NS.sasl2 },
          additionalData ? xml('additional-data', null, toBase64(additionalData)) : undefined,
          xml('authorization-identifier', null, identity),
          inline,
          bound?.element,
        ),
      );
      for (const fn of after) fn();
    });
    if (bound) await host.hooks.notify('session/bound', { session: bound.session });
    // Not bound (no Bind2, no resumption): the stream goes on with the features after
    // authentication (RFC 6120 binding, stream management …), without a restart.
    else if (!stream.session) stream.sendFeatures();
  }

  /** XEP-0386 §2.2–§2.4: a resource from the tag, a session, then the modules' inline features. */
  private async bind2(
    account: Jid,
    bind: Element,
    userAgent: UserAgent | undefined,
  ): Promise<{ session: Session; element: Element }> {
    const { stream } = this;
    const host = stream.host!;
    const tag = bind.getChildText('tag', NS.bind2)?.trim();
    // The same installation (user-agent id) gets the same resource, so that its new session
    // replaces its old one (RFC 6120 §7.7.2.2 conflict); others get a random one.
    const suffix = userAgent?.id
      ? createHash('sha256')
          .update(`${account.toBareString()}\n${userAgent.id}`)
          .digest('base64url')
          .slice(0, 8)
      : randomBytes(6).toString('hex');
    let full: Jid;
    try {
      full = account.withResource(tag ? `${tag}.${suffix}` : suffix);
    } catch (err) {
      throw new StanzaError('bad-request', { text: (err as Error).message });
    }
    const result = await stream.server.bind(stream, full);
    if (result instanceof StanzaError) throw result;
    stream.boundTo(result);
    const children: Element[] = [];
    for (const child of bind.elements()) {
      const feature = host.bind2Features.find((f) => f.var === child.xmlns);
      if (!feature) continue; // XEP-0386 §2.3: a feature the server does not offer is ignored
      const out = await feature.bound({ stream, session: result, element: child });
      if (out) children.push(out);
    }
    return { session: result, element: xml('bound', { xmlns: NS.bind2 }, children) };
  }

  private failure(f: SaslFailure, counted = true): void {
    this.stream.writeElement(
      xml(
        'failure',
        { xmlns: NS.sasl2 },
        xml(f.condition, { xmlns: NS.sasl }),
        xml('text', { 'xml:lang': 'en' }, f.message),
      ),
    );
    if (counted) this.sasl.failed(f);
  }
}

/** XEP-0388 §2.3 `<user-agent/>`, checked. */
function readUserAgent(el: Element): UserAgent | undefined {
  const all = el.getChildren('user-agent', NS.sasl2);
  if (all.length === 0) return undefined;
  if (all.length > 1) throw new SaslFailure('malformed-request', 'one <user-agent/> at most');
  const ua = all[0]!;
  const id = ua.attrs.id;
  if (id !== undefined && !USER_AGENT_ID.test(id))
    throw new SaslFailure('malformed-request', 'the user-agent id must be a UUID');
  const text = (name: string): string | undefined => {
    const t = ua.getChildText(name, NS.sasl2);
    if (t !== undefined && t.length > USER_AGENT_TEXT_MAX)
      throw new SaslFailure('malformed-request', `<${name}/> is too long`);
    return t;
  };
  return { id, software: text('software'), device: text('device') };
}

/** The shape of `<authenticate/>` the core reads: one of each, a tag a resource can start with. */
function checkRequest(el: Element): void {
  const mechanism = el.attrs.mechanism;
  if (mechanism === undefined || mechanism === '')
    throw new SaslFailure('invalid-mechanism', 'the mechanism attribute is required');
  if (el.getChildren('initial-response', NS.sasl2).length > 1)
    throw new SaslFailure('malformed-request', 'one <initial-response/> at most');
  const binds = el.getChildren('bind', NS.bind2);
  if (binds.length > 1) throw new SaslFailure('malformed-request', 'one <bind/> at most');
  const bind = binds[0];
  if (!bind) return;
  const tags = bind.getChildren('tag', NS.bind2);
  if (tags.length > 1) throw new SaslFailure('malformed-request', 'one <tag/> at most');
  const tag = tags[0]?.text().trim();
  if (tag !== undefined && tag !== '' && !BIND_TAG.test(tag))
    throw new SaslFailure(
      'malformed-request',
      'the bind tag must be at most 64 letters, digits, spaces or ._+- characters',
    );
}
