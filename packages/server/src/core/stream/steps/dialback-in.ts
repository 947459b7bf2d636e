import { xml, type Element } from '@natter/xml';
import { NS, type StanzaErrorCondition } from '@natter/protocol';

/**
 * What the receiving side of XEP-0220 answers: `<db:result type=…/>` to an originating server that
 * asked us to accept one of its domains (§2.1.2, §2.4), and `<db:verify type=…/>` to a receiving
 * server asking us, the authoritative server, whether a key is ours (§2.3.2).
 */
export const dialbackIn = {
  /** The verdict on a `<db:result/>`: `from` is our domain, `to` the peer's. */
  result(from: string, to: string, type: 'valid' | 'invalid'): Element {
    return xml('result', { xmlns: NS.dialback, from, to, type });
  },

  /** XEP-0220 §2.4 / §4: the request could not be judged (unknown domain, unreachable authority). */
  resultError(
    from: string,
    to: string,
    condition: StanzaErrorCondition,
    errorType: 'cancel' | 'wait' | 'auth',
    text?: string,
  ): Element {
    return xml(
      'result',
      { xmlns: NS.dialback, from, to, type: 'error' },
      xml(
        'error',
        { xmlns: NS.server, type: errorType },
        xml(condition, { xmlns: NS.stanzas }),
        text !== undefined && xml('text', { xmlns: NS.stanzas }, text),
      ),
    );
  },

  /** The answer to `<db:verify/>`: `from` is our (authoritative) domain, `to` the asking server's. */
  verify(from: string, to: string, id: string, type: 'valid' | 'invalid'): Element {
    return xml('verify', { xmlns: NS.dialback, from, to, id, type });
  },

  /** XEP-0220 §2.4: a `<db:verify/>` for a domain we do not serve. */
  verifyError(from: string, to: string, id: string, condition: StanzaErrorCondition): Element {
    return xml(
      'verify',
      { xmlns: NS.dialback, from, to, id, type: 'error' },
      xml('error', { xmlns: NS.server, type: 'cancel' }, xml(condition, { xmlns: NS.stanzas })),
    );
  },
};
