import { createHmac } from 'node:crypto';
import { inspect } from 'node:util';

const HIDDEN = '[secret]';

/**
 * A configured secret (a TURN REST API shared secret, a static password). It never shows itself:
 * `String()`, JSON (pino's serialiser), `util.inspect` and template literals all give `[secret]`,
 * so logging the module's options or an object holding one cannot leak it. `reveal()` is the only
 * way to the value, for computing credentials.
 */
export class Secret {
  readonly #value: string;

  constructor(value: string) {
    this.#value = value;
  }

  reveal(): string {
    return this.#value;
  }

  toString(): string {
    return HIDDEN;
  }

  toJSON(): string {
    return HIDDEN;
  }

  [inspect.custom](): string {
    return HIDDEN;
  }
}

/** Temporary TURN credentials and the time they stop being accepted. */
export interface TurnCredentials {
  username: string;
  password: string;
  /** Unix time (seconds) after which the TURN server refuses them. */
  expiry: number;
}

/**
 * Time-limited TURN credentials of the "TURN REST API" (draft-uberti-behave-turn-rest) as coturn
 * checks them with `use-auth-secret` / `static-auth-secret`:
 *
 *   username = "<expiry>:<user>"   (expiry: Unix time in seconds; ':' is coturn's default
 *                                   `rest-api-separator`)
 *   password = base64(HMAC-SHA1(key = secret, message = username))
 *
 * coturn reads the number before the separator as the moment the credentials expire (not when
 * they were issued) and refuses them after it. `user` is the requester's bare JID, so the TURN
 * server's logs and per-user quotas can tell users apart; a bare JID has no ':' in its localpart
 * (RFC 7622 §3.3.1), and coturn takes the timestamp from the first field anyway.
 */
export function turnRestCredentials(
  secret: Secret,
  user: string,
  ttlSeconds: number,
  nowMs = Date.now(),
): TurnCredentials {
  const expiry = Math.floor(nowMs / 1000) + ttlSeconds;
  const username = `${expiry}:${user}`;
  const password = createHmac('sha1', secret.reveal()).update(username, 'utf8').digest('base64');
  return { username, password, expiry };
}
