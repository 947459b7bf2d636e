import { xml, type Element } from '@natter/xml';
import { NS, toBase64, SaslFailure } from '@natter/protocol';
import { saslOffer, saslOfferFeatures } from '../../sasl-offer.js';
import type { SaslAttempt } from './sasl-attempt.js';
import { NOT_MINE, type ClientNegotiation, type NegotiationStep } from './step.js';

/** SASL (RFC 6120 §6): the mechanisms offered on this transport, failures counted and logged. */
export class SaslStep implements NegotiationStep {
  readonly name = 'sasl';

  constructor(
    private readonly stream: ClientNegotiation,
    private readonly sasl: SaslAttempt,
  ) {}

  features(): Element[] {
    if (!this.stream.credentialsAllowed()) return [];
    return saslOfferFeatures(
      saslOffer(this.stream.transport, this.stream.server.config.auth.offerScramSha256),
    );
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
      this.failure(new SaslFailure('aborted', 'authentication aborted by the client'));
      return;
    }
    return NOT_MINE;
  }

  private async auth(el: Element): Promise<void> {
    const refused = this.sasl.begin(el.attrs.mechanism ?? '');
    if (refused) {
      this.failure(refused);
      return;
    }
    const text = el.text();
    await this.step(text === '' ? null : text === '=' ? '' : text);
  }

  private async response(el: Element): Promise<void> {
    if (!this.sasl.inProgress) {
      this.failure(new SaslFailure('malformed-request', 'no authentication in progress'));
      return;
    }
    const text = el.text();
    await this.step(text === '=' ? '' : text);
  }

  private async step(b64: string | null): Promise<void> {
    const { stream } = this;
    const r = await this.sasl.step(b64);
    if (stream.state === 'closed') return;
    switch (r.kind) {
      case 'challenge':
        stream.writeElement(xml('challenge', { xmlns: NS.sasl }, toBase64(r.data)));
        return;
      case 'failure':
        this.failure(r.failure);
        return;
      case 'success':
        stream.writeElement(
          xml('success', { xmlns: NS.sasl }, r.additionalData ? toBase64(r.additionalData) : undefined),
        );
        stream.server.log.debug({ stream: stream.id, account: r.account.toString() }, 'authenticated');
        stream.authenticatedAs(r.account);
    }
  }

  private failure(f: SaslFailure): void {
    this.stream.writeElement(
      xml('failure', { xmlns: NS.sasl }, xml(f.condition), xml('text', { 'xml:lang': 'en' }, f.message)),
    );
    this.sasl.failed(f);
  }
}
