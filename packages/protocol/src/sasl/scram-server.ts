import { fromBase64, toBase64 } from './base64.js';
import { isValidChannelBindingName } from './channel-binding.js';
import type {
  CredentialLookup,
  SaslServerMechanism,
  SaslServerStep,
  ServerMechanismOptions,
} from './mechanism.js';
import { SaslFailure } from './sasl-failure.js';
import { saslprep } from './saslprep.js';
import {
  constantTimeEqual,
  DEFAULT_ITERATIONS,
  digest,
  hashLength,
  hmac,
  randomBytes,
  utf8,
  xor,
  type ScramCredentials,
  type ScramHash,
} from './scram-crypto.js';
import {
  decodeMessage,
  isValidNonce,
  malformed,
  parseAttributes,
  unescapeSaslname,
} from './scram-message.js';
import { effectiveAuthzid, fakeCredentials, safeLookup } from './unknown-user.js';

/** Options of the server SCRAM mechanism, including ones meant for tests only. */
export interface ScramServerOptions extends ServerMechanismOptions {
  /** @internal Fixed server part of the nonce, for reproducing RFC test vectors. */
  serverNonce?: string;
}

/** Bytes of randomness in the server nonce part (RFC 5802 asks for a fresh, unpredictable value). */
const SERVER_NONCE_BYTES = 24;

interface AfterFirst {
  gs2Header: string;
  /** Channel binding data appended to the GS2 header in c= (empty without channel binding). */
  cbData: Uint8Array;
  clientFirstBare: string;
  serverFirst: string;
  nonce: string;
  username: string;
  authzid: string | undefined;
  creds: ScramCredentials;
  known: boolean;
}

type State =
  | { kind: 'start'; askedForInitial: boolean }
  | { kind: 'first-sent'; data: AfterFirst }
  | { kind: 'finished' };

/**
 * Server side of SCRAM-SHA-1 / SCRAM-SHA-256 (RFC 5802, RFC 7677), and of their -PLUS variants
 * with channel binding when `plus` is set (the binding data comes from `opts.channelBinding`).
 */
export class ScramServerMechanism implements SaslServerMechanism {
  readonly name: string;
  private state: State = { kind: 'start', askedForInitial: false };

  constructor(
    private readonly hash: ScramHash,
    private readonly lookup: CredentialLookup,
    private readonly opts: ScramServerOptions = {},
    private readonly plus = false,
  ) {
    this.name = (hash === 'SHA-1' ? 'SCRAM-SHA-1' : 'SCRAM-SHA-256') + (plus ? '-PLUS' : '');
    if (opts.serverNonce !== undefined && !isValidNonce(opts.serverNonce))
      throw new RangeError('invalid server nonce');
  }

  async step(input: Uint8Array | null): Promise<SaslServerStep> {
    const state = this.state;
    if (input === null) {
      if (state.kind !== 'start' || state.askedForInitial) {
        this.state = { kind: 'finished' };
        throw new SaslFailure('malformed-request', 'a response is required');
      }
      input = new Uint8Array(0);
    }
    this.state = { kind: 'finished' }; // any throw below ends the attempt
    switch (state.kind) {
      case 'start':
        if (input.length === 0 && !state.askedForInitial) {
          // No initial response: RFC 6120 §6.4.2 — send an empty challenge, the client-first comes next.
          this.state = { kind: 'start', askedForInitial: true };
          return { done: false, challenge: new Uint8Array(0) };
        }
        {
          const data = await this.clientFirst(input);
          this.state = { kind: 'first-sent', data };
          return { done: false, challenge: utf8(data.serverFirst) };
        }
      case 'first-sent':
        return { done: true, result: await this.clientFinal(input, state.data) };
      case 'finished':
        throw new SaslFailure('malformed-request', 'the exchange is already over');
    }
  }

  private async clientFirst(input: Uint8Array): Promise<AfterFirst> {
    const text = decodeMessage(input);
    // gs2-header = gs2-cbind-flag "," [ authzid ] ","
    const c1 = text.indexOf(',');
    const c2 = c1 < 0 ? -1 : text.indexOf(',', c1 + 1);
    if (c2 < 0) malformed('missing GS2 header');
    const flag = text.slice(0, c1);
    let cbData: Uint8Array = new Uint8Array(0);
    if (flag.startsWith('p=')) {
      if (!this.plus) {
        throw new SaslFailure(
          'malformed-request',
          'channel binding requested but this is not a -PLUS mechanism',
        );
      }
      const type = flag.slice(2);
      if (!isValidChannelBindingName(type)) malformed('invalid channel binding name');
      const data = this.opts.channelBinding?.(type);
      if (data === undefined) {
        throw new SaslFailure('not-authorized', `unsupported channel binding type ${type}`);
      }
      cbData = data;
    } else if (this.plus) {
      // RFC 5802 §6: a -PLUS mechanism with the "n" or "y" flag fails.
      if (flag !== 'n' && flag !== 'y') malformed('invalid channel binding flag');
      throw new SaslFailure('not-authorized', `${this.name} requires channel binding`);
    } else if (flag === 'y') {
      if (this.opts.channelBindingOffered) {
        throw new SaslFailure(
          'not-authorized',
          'client believes the server lacks channel binding (downgrade)',
        );
      }
    } else if (flag !== 'n') {
      malformed('invalid channel binding flag');
    }
    const authzPart = text.slice(c1 + 1, c2);
    let authzid: string | undefined;
    if (authzPart !== '') {
      if (!authzPart.startsWith('a=')) malformed('invalid authzid in GS2 header');
      authzid = unescapeSaslname(authzPart.slice(2));
    }
    const gs2Header = text.slice(0, c2 + 1);
    const clientFirstBare = text.slice(c2 + 1);

    const attrs = parseAttributes(clientFirstBare);
    if (attrs[0]?.key === 'm') malformed('unsupported mandatory extension');
    const [n, r] = attrs;
    if (n?.key !== 'n') malformed('expected username attribute');
    if (r?.key !== 'r') malformed('expected nonce attribute');
    for (const ext of attrs.slice(2)) if (ext.value === '') malformed('empty extension');
    const username = saslprep(unescapeSaslname(n.value));
    if (username === '') malformed('empty username');
    if (!isValidNonce(r.value)) malformed('invalid client nonce');

    const found = await safeLookup(this.lookup, username, this.hash);
    const creds =
      found ??
      (await fakeCredentials(this.hash, username, this.opts.unknownUserIterations ?? DEFAULT_ITERATIONS));
    const nonce = r.value + (this.opts.serverNonce ?? toBase64(randomBytes(SERVER_NONCE_BYTES)));
    const serverFirst = `r=${nonce},s=${toBase64(creds.salt)},i=${creds.iterations}`;
    return {
      gs2Header,
      cbData,
      clientFirstBare,
      serverFirst,
      nonce,
      username,
      authzid,
      creds,
      known: found !== null,
    };
  }

  private async clientFinal(input: Uint8Array, st: AfterFirst) {
    const text = decodeMessage(input);
    // client-final-message = client-final-message-without-proof "," proof, proof last
    const p = text.lastIndexOf(',p=');
    if (p < 0) malformed('missing proof');
    const withoutProof = text.slice(0, p);
    const proofText = text.slice(p + 3);
    if (proofText.includes(',')) malformed('proof must be the last attribute');
    const attrs = parseAttributes(withoutProof);
    const [c, r] = attrs;
    if (c?.key !== 'c') malformed('expected channel binding attribute');
    if (r?.key !== 'r') malformed('expected nonce attribute');
    for (const ext of attrs.slice(2)) if (ext.value === '') malformed('empty extension');
    const cbind = fromBase64(c.value);
    const proof = fromBase64(proofText);

    // c= carries the GS2 header of the client-first message, then the channel binding data (if any).
    const header = utf8(st.gs2Header);
    const expected = new Uint8Array(header.length + st.cbData.length);
    expected.set(header, 0);
    expected.set(st.cbData, header.length);
    if (!constantTimeEqual(cbind, expected)) {
      throw new SaslFailure('not-authorized', 'channel binding data does not match');
    }
    if (r.value !== st.nonce) throw new SaslFailure('not-authorized', 'nonce mismatch');
    if (proof.length !== hashLength(this.hash)) malformed('proof has the wrong length');

    const authMessage = utf8(`${st.clientFirstBare},${st.serverFirst},${withoutProof}`);
    const clientSignature = await hmac(this.hash, st.creds.storedKey, authMessage);
    const clientKey = xor(proof, clientSignature);
    const storedKey = await digest(this.hash, clientKey);
    const ok = constantTimeEqual(storedKey, st.creds.storedKey);
    const serverSignature = await hmac(this.hash, st.creds.serverKey, authMessage);
    if (!ok || !st.known) throw new SaslFailure('not-authorized');
    const authzid = effectiveAuthzid(st.authzid, st.username, this.opts.domain);
    return {
      username: st.username,
      ...(authzid !== undefined ? { authzid } : {}),
      additionalData: utf8(`v=${toBase64(serverSignature)}`),
    };
  }
}
