/**
 * The running configuration as the web console shows it: every secret replaced by `(redacted)`.
 * By name, whatever the option's place (a module's options too): any key naming a token, a
 * password, a secret or a credential (`token`, `dialbackSecret`, `components.<domain>.secret` …);
 * by value: the password of any URL (`storage.url`, `cluster.redis`) and password-like query
 * parameters (`?password=`, `sslpassword=`).
 */

export const REDACTED = '(redacted)';

const SECRET_KEY = /token|secret|passw(or)?d|credential|api.?key|private.?key/i;
const SECRET_PARAM = /pass|secret|token|key/i;

/** `value` with its secrets replaced (a deep copy; the configuration itself is untouched). */
export function redactConfig(value: unknown, key = ''): unknown {
  // Strings only: `maxTokensPerAccount: 5` is a limit, not a secret.
  if (typeof value === 'string') return key && SECRET_KEY.test(key) ? REDACTED : redactUrl(value);
  if (Array.isArray(value)) return value.map((v) => redactConfig(v, key));
  if (value !== null && typeof value === 'object')
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, redactConfig(v, k)]));
  return value;
}

/** A URL with its password and password-like query parameters replaced; other strings as they are. */
function redactUrl(s: string): string {
  // A libpq key/value connection string: `host=db password=… dbname=natter`.
  if (!/^[a-z][a-z0-9+.-]*:\/\//i.test(s))
    return s.replace(/(\bpassword\s*=\s*)('[^']*'|\S+)/gi, `$1${REDACTED}`);
  let u: URL;
  try {
    u = new URL(s);
  } catch {
    // Not parsable, but URL-shaped: whatever sits between "//" and "@" may be credentials.
    return s.replace(/\/\/[^/@]*@/, `//${REDACTED}@`);
  }
  if (u.password) u.password = 'redacted';
  for (const name of [...u.searchParams.keys()])
    if (SECRET_PARAM.test(name)) u.searchParams.set(name, 'redacted');
  return u.toString();
}
