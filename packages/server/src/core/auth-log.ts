import type { Logger } from './logger.js';
import { ipKey } from '../util/ip-key.js';

/** The message of the failed-authentication log line (matched by the fail2ban filter in docs/reliability.md). */
export const AUTH_FAILED_MSG = 'authentication failed';

/**
 * Logs a failed authentication at info, one JSON line with the address first:
 * `{"level":30,"time":…,"service":"natter","ip":"203.0.113.9","username":"bob","mechanism":"PLAIN","condition":"not-authorized","msg":"authentication failed"}`.
 * The address is written as the client's (an IPv4-mapped address as IPv4); the username, chosen
 * by the client, comes after it and is JSON-escaped, so it cannot forge an `"ip":` field.
 */
export function logAuthFailure(
  log: Logger,
  f: { address: string; username: string | undefined; mechanism: string; condition: string },
): void {
  log.info(
    {
      ip: ipKey(f.address, 128),
      username: f.username ?? '',
      mechanism: f.mechanism,
      condition: f.condition,
    },
    AUTH_FAILED_MSG,
  );
}
