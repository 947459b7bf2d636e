import type { ChannelBinding } from './channel-binding.js';
import type { ScramCredentials, ScramHash } from './scram-crypto.js';

/** Outcome of a successful server-side exchange. */
export interface SaslServerResult {
  /** Authentication identity after SASLprep (for XMPP: the localpart). */
  username: string;
  /** Requested authorization identity, only when present and different from the authentication identity. */
  authzid?: string;
  /** Additional data with success (RFC 6120 §6.3.10), e.g. SCRAM's `v=` server signature. */
  additionalData?: Uint8Array;
}

export type SaslServerStep =
  { done: false; challenge: Uint8Array } | { done: true; result: SaslServerResult };

/** Server side of one authentication attempt. `step` throws SaslFailure when the attempt fails. */
export interface SaslServerMechanism {
  readonly name: string;
  /**
   * `null` on the first step means the client sent no initial response (`<auth/>` without text);
   * an empty array is an initial response that is present and empty (`<auth>=</auth>`, RFC 6120 §6.4.2).
   */
  step(input: Uint8Array | null): Promise<SaslServerStep>;
}

/**
 * Where the server finds stored credentials. Return null for an unknown user (never throw for that:
 * the mechanisms hide whether a user exists). A SaslFailure thrown here (e.g. account-disabled)
 * is passed through; any other error becomes temporary-auth-failure.
 */
export interface CredentialLookup {
  scram(username: string, hash: ScramHash): Promise<ScramCredentials | null>;
}

export interface ServerMechanismOptions {
  /** The server's domain: an authzid equal to `username@domain` is then not reported as an authzid. */
  domain?: string;
  /**
   * Set when the server also offers SCRAM-*-PLUS: a client sending the "y" flag then believed the
   * server does not support channel binding, i.e. the offer was stripped (RFC 5802 §6), and is refused.
   */
  channelBindingOffered?: boolean;
  /**
   * SCRAM-*-PLUS: this connection's channel binding data for a type, or undefined when the type is
   * not supported here (the attempt then fails).
   */
  channelBinding?: (type: string) => Uint8Array | undefined;
  /** Iteration count announced for unknown users; set it to what real accounts use. Default 4096. */
  unknownUserIterations?: number;
  /**
   * PLAIN: told the password once it is proven right (before success is answered), so that the
   * server can derive keys the account lacks (imported accounts with one hash's keys). A failure
   * here does not fail the login.
   */
  passwordVerified?: (username: string, password: string) => Promise<void>;
}

/** Client side of one authentication attempt. Methods throw SaslFailure when the exchange must stop. */
export interface SaslClientMechanism {
  readonly name: string;
  /** Initial response (sent with `<auth/>`). */
  initial(): Promise<Uint8Array>;
  /** Answers a server challenge. */
  challenge(data: Uint8Array): Promise<Uint8Array>;
  /** Called with `<success/>`'s additional data; for SCRAM verifies the server signature. */
  success(additionalData: Uint8Array | null): Promise<void>;
}

export interface ClientCredentials {
  username: string;
  password: string;
  authzid?: string;
}

export interface ClientMechanismOptions {
  /** Fixed client nonce (tests only; must be printable ASCII without ','). */
  nonce?: string;
  /** SCRAM: refuse servers announcing fewer iterations (mechanism-too-weak). Default 4096. */
  minIterations?: number;
  /** SCRAM: refuse servers announcing more iterations, to bound client work. Default 1,000,000. */
  maxIterations?: number;
  /** SCRAM-*-PLUS: the channel binding to use (GS2 flag `p=`). Required for -PLUS mechanisms. */
  channelBinding?: ChannelBinding;
  /**
   * Plain SCRAM: the client could bind to the channel but the server offered no -PLUS mechanism,
   * so it sends the GS2 flag `y` (RFC 5802 §6) and a server that did offer -PLUS detects the downgrade.
   */
  channelBindingSupported?: boolean;
}
