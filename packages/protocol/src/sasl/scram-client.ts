import { fromBase64, toBase64 } from './base64.js';
import { isValidChannelBindingName } from './channel-binding.js';
import type { ClientCredentials, ClientMechanismOptions, SaslClientMechanism } from './mechanism.js';
import { SaslFailure } from './sasl-failure.js';
import { saslprep } from './saslprep.js';
import {
  constantTimeEqual,
  DEFAULT_ITERATIONS,
  hi,
  hmac,
  keysFromSaltedPassword,
  randomBytes,
  utf8,
  xor,
  type ScramHash,
} from './scram-crypto.js';
import { decodeMessage, escapeSaslname, isValidNonce, malformed, parseAttributes } from './scram-message.js';

const CLIENT_NONCE_BYTES = 24;
const DEFAULT_MAX_ITERATIONS = 1_000_000;

type State =
  | { kind: 'new' }
  | { kind: 'first-sent'; gs2Header: string; clientFirstBare: string; nonce: string }
  | { kind: 'final-sent'; serverSignature: Uint8Array }
  | { kind: 'verified' }
  | { kind: 'finished' };

/**
 * Client side of SCRAM-SHA-1 / SCRAM-SHA-256 (GS2 flag "n", or "y" with `channelBindingSupported`),
 * and of the -PLUS variants with `plus` and `opts.channelBinding` (GS2 flag "p=type").
 */
export class ScramClientMechanism implements SaslClientMechanism {
  readonly name: string;
  private state: State = { kind: 'new' };

  constructor(
    private readonly hash: ScramHash,
    private readonly creds: ClientCredentials,
    private readonly opts: ClientMechanismOptions = {},
    private readonly plus = false,
  ) {
    this.name = (hash === 'SHA-1' ? 'SCRAM-SHA-1' : 'SCRAM-SHA-256') + (plus ? '-PLUS' : '');
    if (plus && !opts.channelBinding) throw new RangeError(`${this.name} needs channel binding data`);
    if (plus && !isValidChannelBindingName(opts.channelBinding!.type))
      throw new RangeError('invalid channel binding name');
    if (opts.nonce !== undefined && !isValidNonce(opts.nonce)) throw new RangeError('invalid client nonce');
  }

  async initial(): Promise<Uint8Array> {
    if (this.state.kind !== 'new') throw new SaslFailure('aborted', 'initial() called twice');
    const username = saslprep(this.creds.username);
    const nonce = this.opts.nonce ?? toBase64(randomBytes(CLIENT_NONCE_BYTES));
    const flag = this.plus
      ? `p=${this.opts.channelBinding!.type}`
      : this.opts.channelBindingSupported
        ? 'y'
        : 'n';
    const gs2Header = `${flag},${this.creds.authzid ? `a=${escapeSaslname(this.creds.authzid)}` : ''},`;
    const clientFirstBare = `n=${escapeSaslname(username)},r=${nonce}`;
    this.state = { kind: 'first-sent', gs2Header, clientFirstBare, nonce };
    return utf8(gs2Header + clientFirstBare);
  }

  async challenge(data: Uint8Array): Promise<Uint8Array> {
    const state = this.state;
    this.state = { kind: 'finished' };
    if (state.kind === 'first-sent') return this.serverFirst(data, state);
    if (state.kind === 'final-sent') {
      // Some servers send server-final as a challenge; answer with an empty response.
      this.verifyServerFinal(data, state.serverSignature);
      this.state = { kind: 'verified' };
      return new Uint8Array(0);
    }
    throw new SaslFailure('malformed-request', 'unexpected challenge');
  }

  async success(additionalData: Uint8Array | null): Promise<void> {
    const state = this.state;
    this.state = { kind: 'finished' };
    const empty = additionalData === null || additionalData.length === 0;
    if (state.kind === 'verified' && empty) return;
    if (state.kind === 'final-sent' && !empty) {
      this.verifyServerFinal(additionalData, state.serverSignature);
      return;
    }
    // Success without a verified server signature: the server did not prove it knows our credentials.
    throw new SaslFailure('not-authorized', 'server did not prove knowledge of the credentials');
  }

  private async serverFirst(
    data: Uint8Array,
    st: Extract<State, { kind: 'first-sent' }>,
  ): Promise<Uint8Array> {
    const serverFirst = decodeMessage(data);
    const attrs = parseAttributes(serverFirst);
    if (attrs[0]?.key === 'm') malformed('server requires an unsupported extension');
    const [r, s, i] = attrs;
    if (r?.key !== 'r' || s?.key !== 's' || i?.key !== 'i') malformed('server-first must be r=,s=,i=');
    if (!isValidNonce(r.value) || !r.value.startsWith(st.nonce) || r.value.length === st.nonce.length) {
      throw new SaslFailure('not-authorized', 'server nonce does not extend the client nonce');
    }
    const salt = fromBase64(s.value);
    if (salt.length === 0) malformed('empty salt');
    if (!/^[1-9][0-9]{0,9}$/.test(i.value)) malformed('invalid iteration count');
    const iterations = Number(i.value);
    if (iterations < (this.opts.minIterations ?? DEFAULT_ITERATIONS)) {
      throw new SaslFailure('mechanism-too-weak', `server asks for only ${iterations} iterations`);
    }
    if (iterations > (this.opts.maxIterations ?? DEFAULT_MAX_ITERATIONS)) {
      throw new SaslFailure('malformed-request', `server asks for ${iterations} iterations, above the limit`);
    }

    const salted = await hi(this.hash, utf8(saslprep(this.creds.password)), salt, iterations);
    const { clientKey, storedKey, serverKey } = await keysFromSaltedPassword(this.hash, salted);
    const header = utf8(st.gs2Header);
    const cbData: Uint8Array = this.plus ? this.opts.channelBinding!.data : new Uint8Array(0);
    const cbind = new Uint8Array(header.length + cbData.length);
    cbind.set(header, 0);
    cbind.set(cbData, header.length);
    const withoutProof = `c=${toBase64(cbind)},r=${r.value}`;
    const authMessage = utf8(`${st.clientFirstBare},${serverFirst},${withoutProof}`);
    const [clientSignature, serverSignature] = await Promise.all([
      hmac(this.hash, storedKey, authMessage),
      hmac(this.hash, serverKey, authMessage),
    ]);
    const proof = xor(clientKey, clientSignature);
    this.state = { kind: 'final-sent', serverSignature };
    return utf8(`${withoutProof},p=${toBase64(proof)}`);
  }

  private verifyServerFinal(data: Uint8Array, expected: Uint8Array): void {
    const text = decodeMessage(data);
    const attrs = parseAttributes(text);
    const first = attrs[0]!;
    if (first.key === 'e') throw new SaslFailure('not-authorized', `server error: ${first.value}`);
    if (first.key !== 'v') malformed('server-final must start with v= or e=');
    const signature = fromBase64(first.value);
    if (!constantTimeEqual(signature, expected)) {
      throw new SaslFailure('not-authorized', 'server signature mismatch');
    }
  }
}
