import { xml, type Element } from '@natter/xml';
import { NS, createClientMechanism, fromBase64, toBase64 } from '@natter/protocol';
import type { SaslPeer } from './sasl-exchange.js';

/** The outcome of an XEP-0388 exchange: `<success/>` or `<failure/>` (with its condition). */
export interface Sasl2Outcome {
  element: Element;
  success: boolean;
  condition: string | undefined;
}

/**
 * XEP-0388 from the client's side with a password mechanism: `<authenticate/>` carrying the initial
 * response and `extra` children (user agent, Bind2, resumption, FAST), challenges answered, and the
 * server's final message (`<success/>` verified for SCRAM, or `<failure/>`) returned.
 */
export async function sasl2Exchange(
  peer: SaslPeer,
  user: string,
  password: string,
  mechanism = 'SCRAM-SHA-256',
  extra: (Element | undefined)[] = [],
): Promise<Sasl2Outcome> {
  const mech = createClientMechanism(mechanism, { username: user, password });
  const initial = await mech.initial();
  peer.send(
    xml(
      'authenticate',
      { xmlns: NS.sasl2, mechanism },
      xml('initial-response', null, initial.length ? toBase64(initial) : '='),
      ...extra,
    ),
  );
  for (;;) {
    const el = await peer.receive((e) => e.xmlns === NS.sasl2);
    if (el.name === 'challenge') {
      const r = await mech.challenge(fromBase64(el.text()));
      peer.send(xml('response', { xmlns: NS.sasl2 }, r.length ? toBase64(r) : ''));
      continue;
    }
    if (el.name === 'success') {
      const data = el.getChildText('additional-data', NS.sasl2);
      await mech.success(data ? fromBase64(data) : null);
      return { element: el, success: true, condition: undefined };
    }
    return {
      element: el,
      success: false,
      condition: el.elements().find((c) => c.xmlns === NS.sasl)?.name,
    };
  }
}

/** `<user-agent id/>` as a client sends it. */
export function userAgent(id: string, software = 'natter-tests'): Element {
  return xml('user-agent', { xmlns: NS.sasl2, id }, xml('software', null, software));
}
