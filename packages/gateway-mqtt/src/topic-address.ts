// MQTT topics as XMPP addresses: a topic (or a subscription filter with `+`/`#`) is the localpart
// of a JID on the gateway's domain, escaped per XEP-0106 (`sensors/kitchen/temp` →
// `sensors\2fkitchen\2ftemp@mqtt.example`). Topic syntax follows MQTT 3.1.1 §4.7 / MQTT 5 §4.7.
import { escapeLocal, unescapeLocal } from '@natter/component';

/** MQTT's limit on a topic's UTF-8 length (§1.5.3); JID localparts stop at 1023 bytes (RFC 7622 §3.3.1). */
const MAX_LOCALPART_BYTES = 1023;

/** The JID localpart that stands for a topic or a topic filter. Throws when it cannot be one. */
export function topicToLocal(topic: string): string {
  return escapeLocal(topic);
}

/** The topic or filter that a localpart on the gateway's domain stands for. */
export function localToTopic(local: string): string {
  return unescapeLocal(local);
}

/** Why a topic filter (what a user subscribes to) is invalid, or undefined when it is valid. */
export function filterProblem(filter: string): string | undefined {
  if (filter === '') return 'a topic cannot be empty';
  if (Buffer.byteLength(filter, 'utf8') > MAX_LOCALPART_BYTES) return 'the topic is too long';
  if (filter.includes('\u0000')) return 'a topic cannot contain NUL';
  if (filter.startsWith(' ') || filter.endsWith(' '))
    return 'a topic cannot begin or end with a space here (XEP-0106)';
  const levels = filter.split('/');
  for (let i = 0; i < levels.length; i++) {
    const level = levels[i]!;
    if (level.includes('#') && (level !== '#' || i !== levels.length - 1))
      return "'#' must be a whole level and the last one";
    if (level.includes('+') && level !== '+') return "'+' must be a whole level";
  }
  return undefined;
}

/** Why a topic name (what a message is published on) is invalid, or undefined when it is valid. */
export function topicProblem(topic: string): string | undefined {
  const problem = filterProblem(topic);
  if (problem) return problem;
  if (isWildcard(topic)) return 'cannot publish on a topic filter with wildcards';
  return undefined;
}

export function isWildcard(filter: string): boolean {
  return filter.includes('+') || filter.includes('#');
}

/**
 * Whether a topic name matches a filter (MQTT §4.7.1): `+` matches one level, `#` any number of
 * trailing levels including none; a filter starting with a wildcard does not match `$` topics (§4.7.2).
 */
export function topicMatches(filter: string, topic: string): boolean {
  if (topic.startsWith('$') && (filter.startsWith('+') || filter.startsWith('#'))) return false;
  const f = filter.split('/');
  const t = topic.split('/');
  for (let i = 0; i < f.length; i++) {
    const level = f[i]!;
    if (level === '#') return true;
    if (i >= t.length) return false;
    if (level !== '+' && level !== t[i]) return false;
  }
  return f.length === t.length;
}
