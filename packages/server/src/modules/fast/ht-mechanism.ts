import { createHmac } from 'node:crypto';
import { SaslFailure, type SaslServerMechanism, type SaslServerStep } from '@natter/protocol';

/**
 * The HT-* mechanisms (draft-schmaus-kitten-sasl-ht) this server offers for FAST tokens, with the
 * channel binding type each one binds to (none: HT-SHA-256-NONE). HT-SHA-256-UNIQ (tls-unique)
 * is absent: TLS 1.3 has no tls-unique, and the transports do not produce it.
 */
export const HT_MECHANISMS = {
  'HT-SHA-256-EXPR': 'tls-exporter',
  'HT-SHA-256-ENDP': 'tls-server-end-point',
  'HT-SHA-256-NONE': undefined,
} as const satisfies Record<string, string | undefined>;

export type HtMechanismName = keyof typeof HT_MECHANISMS;

export function isHtMechanism(name: string): name is HtMechanismName {
  return Object.hasOwn(HT_MECHANISMS, name);
}

/**
 * HMAC-SHA-256 of the label ('Initiator' from the client, 'Responder' from the server) followed by
 * the channel binding data, keyed by the token (or by its SHA-256 hash: the tokens issued here are
 * longer than the hash's 64-byte block, so RFC 2104 hashes them first and both keys give the same MAC).
 */
export function htMac(key: Uint8Array, label: 'Initiator' | 'Responder', cb: Uint8Array): Buffer {
  return createHmac('sha256', key).update(label).update(cb).digest();
}

/**
 * The server side of one HT-* exchange: the client's only message is `authcid NUL MAC`; `verify`
 * finds the token that MAC was made with (or null), and the server's MAC of 'Responder' goes back
 * as the additional data of success.
 */
export class HtServerMechanism implements SaslServerMechanism {
  private done = false;

  constructor(
    readonly name: HtMechanismName,
    private readonly cb: Uint8Array,
    private readonly verify: (username: string, mac: Uint8Array) => Promise<Uint8Array | null>,
  ) {}

  async step(input: Uint8Array | null): Promise<SaslServerStep> {
    if (this.done) throw new SaslFailure('malformed-request', 'the exchange is over');
    this.done = true;
    if (input === null) throw new SaslFailure('malformed-request', `${this.name} needs an initial response`);
    const nul = input.indexOf(0);
    if (nul <= 0 || input.length - nul - 1 !== 32)
      throw new SaslFailure('malformed-request', 'expected the username, a NUL and a 32-byte MAC');
    let username: string;
    try {
      username = new TextDecoder('utf-8', { fatal: true }).decode(input.subarray(0, nul));
    } catch {
      throw new SaslFailure('malformed-request', 'the username is not UTF-8');
    }
    const key = await this.verify(username, input.subarray(nul + 1));
    if (!key) throw new SaslFailure('not-authorized', 'the token is unknown, expired or was used already');
    return { done: true, result: { username, additionalData: htMac(key, 'Responder', this.cb) } };
  }
}
