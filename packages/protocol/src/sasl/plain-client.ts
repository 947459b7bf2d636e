import type { ClientCredentials, SaslClientMechanism } from './mechanism.js';
import { SaslFailure } from './sasl-failure.js';
import { saslprep } from './saslprep.js';
import { utf8 } from './scram-crypto.js';

/** Client side of PLAIN (RFC 4616); authcid and password are prepared with SASLprep (§2). */
export class PlainClientMechanism implements SaslClientMechanism {
  readonly name = 'PLAIN';

  constructor(private readonly creds: ClientCredentials) {}

  async initial(): Promise<Uint8Array> {
    const parts = [
      utf8(this.creds.authzid ?? ''),
      utf8(saslprep(this.creds.username)),
      utf8(saslprep(this.creds.password)),
    ];
    const out = new Uint8Array(parts[0]!.length + parts[1]!.length + parts[2]!.length + 2);
    let o = 0;
    for (const [i, part] of parts.entries()) {
      if (i > 0) out[o++] = 0;
      out.set(part, o);
      o += part.length;
    }
    return out;
  }

  async challenge(data: Uint8Array): Promise<Uint8Array> {
    // An empty challenge means the server did not receive an initial response.
    if (data.length === 0) return this.initial();
    throw new SaslFailure('malformed-request', 'PLAIN has no server challenges');
  }

  async success(): Promise<void> {}
}
