import { randomBytes } from 'node:crypto';
import { xml, type Element } from '@natter/xml';
import type { Jid } from '@natter/jid';
import { NS, StanzaError, errorReply } from '@natter/protocol';
import { resultReply } from '../../iq-dispatcher.js';
import { NOT_MINE, type ClientNegotiation, type NegotiationStep } from './step.js';

/** Resource binding (RFC 6120 §7) and the legacy session IQ (RFC 6121 §1.4). */
export class BindStep implements NegotiationStep {
  readonly name = 'bind';

  constructor(private readonly stream: ClientNegotiation) {}

  features(): Element[] {
    return [xml('bind', { xmlns: NS.bind }), xml('session', { xmlns: NS.session }, xml('optional'))];
  }

  handle(el: Element): typeof NOT_MINE | void | Promise<void> {
    if (el.name !== 'iq') return NOT_MINE;
    if (el.getChild('bind', NS.bind)) {
      if (el.attrs.type === 'set' && el.attrs.id) return this.bind(el);
      // RFC 6120 §7.6.1 / §8.1.3: binding is an IQ set, and every IQ needs an id.
      this.stream.writeElement(
        errorReply(
          el,
          new StanzaError('bad-request', { text: 'resource binding is an <iq type="set"/> with an id' }),
        ),
      );
      return;
    }
    if (el.getChild('session', NS.session)) {
      this.stream.writeElement(resultReply(el, undefined));
      return;
    }
    return NOT_MINE;
  }

  private async bind(iq: Element): Promise<void> {
    const { stream } = this;
    const requested = iq.getChild('bind', NS.bind)!.getChildText('resource', NS.bind)?.trim();
    let full: Jid;
    try {
      full = stream.account!.withResource(requested ? requested : randomBytes(6).toString('hex'));
    } catch (err) {
      stream.writeElement(errorReply(iq, new StanzaError('bad-request', { text: (err as Error).message })));
      return;
    }
    const result = await stream.server.bind(stream, full);
    if (result instanceof StanzaError) {
      stream.writeElement(errorReply(iq, result));
      return;
    }
    stream.boundTo(result);
    stream.writeElement(
      xml(
        'iq',
        { type: 'result', id: iq.attrs.id },
        xml('bind', { xmlns: NS.bind }, xml('jid', null, full.toString())),
      ),
    );
    await stream.host!.hooks.notify('session/bound', { session: result });
  }
}
