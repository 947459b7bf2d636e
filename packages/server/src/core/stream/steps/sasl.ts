import { xml, type Element } from '@natter/xml';
import { jid, parseJid, JidError, type Jid } from '@natter/jid';
import {
  NS,
  createServerMechanism,
  fromBase64,
  toBase64,
  SaslFailure,
  type SaslServerMechanism,
  type ServerMechanismName,
} from '@natter/protocol';
import { channelBindingOptions, saslOffer, saslOfferFeatures } from '../../sasl-offer.js';
import { logAuthFailure } from '../../auth-log.js';
import { NOT_MINE, type ClientNegotiation, type NegotiationStep } from './step.js';

/** SASL (RFC 6120 §6): the mechanisms offered on this transport, failures counted and logged. */
export class SaslStep implements NegotiationStep {
  readonly name = 'sasl';
  private sasl: SaslServerMechanism | undefined;
  private authFailures = 0;
  /** Mechanism and username of the current attempt (for the failure log line). */
  private attempt: { mechanism: string; username?: string } = { mechanism: '' };

  constructor(private readonly stream: ClientNegotiation) {}

  features(): Element[] {
    if (!this.stream.credentialsAllowed()) return [];
    return saslOfferFeatures(saslOffer(this.stream.transport));
  }

  handle(el: Element): typeof NOT_MINE | void | Promise<void> {
    if (el.xmlns !== NS.sasl) return NOT_MINE;
    if (!this.stream.credentialsAllowed()) {
      this.stream.writeElement(xml('failure', { xmlns: NS.sasl }, xml('encryption-required')));
      return;
    }
    if (el.name === 'auth') return this.auth(el);
    if (el.name === 'response') return this.response(el);
    if (el.name === 'abort') {
      this.sasl = undefined;
      this.failure(new SaslFailure('aborted', 'authentication aborted by the client'));
      return;
    }
    return NOT_MINE;
  }

  private async auth(el: Element): Promise<void> {
    const { stream } = this;
    const name = el.attrs.mechanism ?? '';
    this.attempt = { mechanism: name };
    const offer = saslOffer(stream.transport);
    if (!(offer.mechanisms as string[]).includes(name)) {
      this.failure(new SaslFailure('invalid-mechanism', `mechanism ${name} is not offered`));
      return;
    }
    // Password guessing spread over connections: the address waits before anything is checked.
    const wait = stream.server.limiter?.authWait?.(stream.transport.remoteAddress) ?? 0;
    if (wait > 0) {
      this.failure(
        new SaslFailure(
          'temporary-auth-failure',
          `too many failed authentication attempts from your address; try again in ${Math.ceil(wait / 1000)} s`,
        ),
      );
      return;
    }
    const host = stream.host!;
    this.sasl = createServerMechanism(
      name as ServerMechanismName,
      {
        scram: async (username, hash) => {
          this.attempt.username = username;
          let account: Jid;
          try {
            account = jid(username, host.domain);
          } catch {
            return null;
          }
          return stream.server.accounts.scram(account.local, account.domain, hash);
        },
      },
      channelBindingOptions(offer, stream.transport),
    );
    const text = el.text();
    await this.step(text === '' ? null : text === '=' ? '' : text);
  }

  private async response(el: Element): Promise<void> {
    if (!this.sasl) {
      this.failure(new SaslFailure('malformed-request', 'no authentication in progress'));
      return;
    }
    const text = el.text();
    await this.step(text === '=' ? '' : text);
  }

  private async step(b64: string | null): Promise<void> {
    const { stream } = this;
    const mech = this.sasl!;
    let input: Uint8Array | null;
    try {
      input = b64 === null ? null : fromBase64(b64.trim());
    } catch {
      this.sasl = undefined;
      this.failure(new SaslFailure('incorrect-encoding', 'the data is not valid base64'));
      return;
    }
    try {
      const r = await mech.step(input);
      if (stream.state === 'closed') return;
      if (!r.done) {
        stream.writeElement(xml('challenge', { xmlns: NS.sasl }, toBase64(r.challenge)));
        return;
      }
      this.sasl = undefined;
      const account = jid(r.result.username, stream.host!.domain);
      if (r.result.authzid !== undefined && r.result.authzid !== '') {
        let authz: Jid | undefined;
        try {
          authz = parseJid(r.result.authzid);
        } catch {
          authz = undefined;
        }
        if (!authz || !authz.equals(account)) {
          this.failure(new SaslFailure('invalid-authzid', 'you may only authorise as yourself'));
          return;
        }
      }
      const extra = r.result.additionalData;
      stream.writeElement(
        xml('success', { xmlns: NS.sasl }, extra && extra.length > 0 ? toBase64(extra) : undefined),
      );
      stream.server.log.debug({ stream: stream.id, account: account.toString() }, 'authenticated');
      stream.server.metrics.authSucceeded(this.attempt.mechanism);
      stream.authenticatedAs(account);
    } catch (err) {
      this.sasl = undefined;
      if (err instanceof SaslFailure) this.failure(err);
      else if (err instanceof JidError)
        this.failure(new SaslFailure('not-authorized', 'authentication failed'));
      else throw err;
    }
  }

  private failure(f: SaslFailure): void {
    const { stream } = this;
    stream.writeElement(
      xml('failure', { xmlns: NS.sasl }, xml(f.condition), xml('text', { 'xml:lang': 'en' }, f.message)),
    );
    logAuthFailure(stream.server.log, {
      address: stream.transport.remoteAddress,
      username: this.attempt.username,
      mechanism: this.attempt.mechanism,
      condition: f.condition,
    });
    stream.server.metrics.authFailed(this.attempt.mechanism, f.condition);
    if (f.condition === 'not-authorized') stream.server.limiter?.authFailed(stream.transport.remoteAddress);
    const counts = f.condition === 'not-authorized' || f.condition === 'temporary-auth-failure';
    if (counts && ++this.authFailures >= stream.server.config.limits.maxAuthFailures)
      stream.fail('policy-violation', 'too many failed authentication attempts');
  }
}
