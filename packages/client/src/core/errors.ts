import type { SaslFailureCondition } from '@natter/protocol';
export { TimeoutError } from './emitter.js';
export { StanzaError, StreamError } from '@natter/protocol';

/** Stable codes of the errors the client raises itself (stanza and stream errors have their own conditions). */
export type ClientErrorCode =
  | 'not-connected'
  | 'connection-failed'
  | 'connection-lost'
  | 'tls-required'
  | 'tls-unavailable'
  | 'tls-failed'
  | 'auth-failed'
  | 'no-mechanism'
  | 'bind-failed'
  | 'unsupported-service'
  | 'unsupported-runtime'
  | 'invalid-options';

export class ClientError extends Error {
  override readonly name: string = 'ClientError';
  constructor(
    readonly code: ClientErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** SASL authentication failed: the credentials or the account are at fault; reconnecting will not help. */
export class AuthenticationError extends ClientError {
  override readonly name = 'AuthenticationError';
  constructor(
    readonly condition: SaslFailureCondition | 'no-mechanism',
    message: string,
    options?: { cause?: unknown },
  ) {
    super(condition === 'no-mechanism' ? 'no-mechanism' : 'auth-failed', message, options);
  }
}

export class NotConnectedError extends ClientError {
  override readonly name = 'NotConnectedError';
  constructor(message = 'the client is not online') {
    super('not-connected', message);
  }
}
