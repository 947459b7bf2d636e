import { StanzaError, StreamError, type StreamErrorCondition } from '@natter/protocol';

export { StanzaError, StreamError };

/**
 * Why a component connection failed or ended: a stream error condition the server sent (RFC 6120
 * §4.9.3, e.g. `not-authorized` for a wrong secret, `host-unknown` for a domain the server does not
 * know, `conflict` when the domain is already connected), or a local condition.
 */
export type ComponentErrorCondition =
  | StreamErrorCondition
  /** The TCP connection could not be opened (refused, unreachable, DNS). */
  | 'connection-failed'
  /** The server closed the connection without a stream error. */
  | 'connection-closed'
  /** No handshake answer within the IQ timeout. */
  | 'timeout'
  /** `send()` after `disconnect()` or a fatal error, or an IQ pending when the stream ended. */
  | 'not-connected'
  /** The outgoing queue (kept while offline) is full. */
  | 'queue-full';

/** Stream conditions after which reconnecting cannot help: a wrong secret or an unknown domain. */
export const FATAL_CONDITIONS: ReadonlySet<ComponentErrorCondition> = new Set([
  'not-authorized',
  'host-unknown',
]);

/** A typed error of the component connection; `condition` says what happened, `cause` the underlying error. */
export class ComponentError extends Error {
  override readonly name = 'ComponentError';
  constructor(
    readonly condition: ComponentErrorCondition,
    message?: string,
    options?: { cause?: unknown },
  ) {
    super(message ? `${condition}: ${message}` : condition, options);
  }

  /** True when reconnecting cannot help (wrong secret, unknown domain). */
  get fatal(): boolean {
    return FATAL_CONDITIONS.has(this.condition);
  }
}

/** An IQ got no answer in time. */
export class TimeoutError extends Error {
  override readonly name = 'TimeoutError';
  readonly condition = 'timeout';
}
