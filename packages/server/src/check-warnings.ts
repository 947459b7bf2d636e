import { existsSync } from 'node:fs';
import { isIP } from 'node:net';
import { join, resolve } from 'node:path';
import { acquirable } from './acme/acme-domains.js';
import { ConfigError, findConfigFile, loadConfigFile, parseConfig, type Config } from './config.js';
import { isLoopbackHost } from './listeners/loopback.js';

/**
 * `natter check`'s warnings: settings that validate but expose something on the network. Each is
 * one line naming the option and the fix; none for the defaults. What is outright wrong (an admin
 * listener off loopback without a token, a cluster without a shared dialback secret, …) is a
 * validation error in config.ts instead.
 */
export function configWarnings(config: Config): string[] {
  const warnings: string[] = [];
  // Serving only localhost (the defaults) is a developer's machine: the http listener is for them.
  const external = config.hosts.filter((h) => !isLocalName(h));
  config.listeners.forEach((l, i) => {
    const name = `listeners[${i}] (${l.type} on ${l.host}:${l.port})`;
    if (isLoopbackHost(l.host)) return;
    if (l.type === 'admin')
      warnings.push(
        `${name}: the admin API is plain HTTP off loopback, so its bearer token crosses the network in clear${
          l.console === false || l.console === undefined
            ? ''
            : ', and so do the admin passwords and session cookies of its web console (/console/; remove the console block to turn it off)'
        }; bind it to 127.0.0.1 or put a TLS proxy in front`,
      );
    else if (l.type === 'http' && config.trustedProxies.length === 0 && external.length > 0)
      warnings.push(
        `${name}: plain HTTP off loopback with no trustedProxies: ${
          config.auth.allowPlaintext === 'always'
            ? 'WebSocket and BOSH passwords cross the network in clear'
            : 'WebSocket and BOSH clients from other addresses cannot log in (credentials without TLS are refused except from loopback)'
        }; add an https listener, or a TLS proxy listed in trustedProxies`,
      );
    else if (l.type === 'component')
      warnings.push(
        `${name}: XEP-0114 component streams are not encrypted, so the traffic crosses the network in clear; bind it to 127.0.0.1 or tunnel it`,
      );
  });
  if (config.auth.allowPlaintext === 'always')
    warnings.push(
      'auth.allowPlaintext: "always" accepts passwords over unencrypted connections from any address; use "loopback" (the default) or "never"',
    );
  if (!config.auth.offerScramSha256)
    warnings.push(
      'auth.offerScramSha256: false withholds SCRAM-SHA-256 from every account; it is meant for the weeks after importing accounts with SCRAM-SHA-1 keys only (docs/migration.md): turn it back on once their users have logged in with PLAIN or changed their passwords',
    );
  // Domains with a certificate imported into dataDir/certs (`natter cert import`), or obtained by
  // ACME (tls.acme), are covered.
  const acme = config.tls.acme;
  const byAcme = (h: string) =>
    acme !== undefined && (acme.domains ? acme.domains.includes(h) : acquirable(h));
  const uncovered = external.filter(
    (h) => !byAcme(h) && !existsSync(join(resolve(config.dataDir), 'certs', `${h.toLowerCase()}.crt`)),
  );
  if (acme && !config.listeners.some((l) => l.type === 'http' && l.port === 80))
    warnings.push(
      'tls.acme: the CA validates HTTP-01 challenges on port 80 (RFC 8555 §8.3), and no http listener is on port 80: add one ({ type: http, port: 80 }), or forward port 80 to an http listener',
    );
  if (config.tls.cert === undefined && config.tls.certificates.length === 0 && uncovered.length > 0)
    warnings.push(
      `tls.cert: not set, so ${uncovered.join(', ')} get${uncovered.length === 1 ? 's' : ''} a generated self-signed certificate that clients and servers will not trust; set tls.cert and tls.key (or tls.certificates) to a CA-issued certificate, or import certbot's with natter cert import`,
    );
  if (config.registration.enabled && config.registration.perIpPerHour > OPEN_REGISTRATION)
    warnings.push(
      `registration.perIpPerHour: ${config.registration.perIpPerHour} accounts per address per hour with registration.enabled invites spam accounts; keep it at ${OPEN_REGISTRATION} or fewer, or turn registration off`,
    );
  if (config.s2s.enabled && !config.s2s.requireEncryption)
    warnings.push(
      's2s.requireEncryption: false lets server-to-server streams run unencrypted; set it to true (the default)',
    );
  return warnings;
}

/** Above this many new accounts per address per hour, open registration counts as unlimited. */
const OPEN_REGISTRATION = 10;

/** localhost, *.localhost and IP literals: names no public CA certifies, so self-signed is expected. */
function isLocalName(host: string): boolean {
  const h = host.toLowerCase();
  return h === 'localhost' || h.endsWith('.localhost') || isIP(h.replace(/^\[|\]$/g, '')) !== 0;
}

/**
 * `natter check [--config FILE]`: validates the configuration (FILE, else natter.json,
 * natter.yaml or natter.yml in the working directory, else the defaults), then prints the
 * warnings. Exit 0 when valid (warnings or not), 1 when not.
 */
export function checkCommand(path: string | undefined): number {
  let config: Config;
  let file: string | undefined;
  try {
    file = path ?? findConfigFile();
    config = file ? loadConfigFile(file) : parseConfig({});
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    console.error(err.message);
    return 1;
  }
  const warnings = configWarnings(config);
  console.log(
    `configuration OK${file ? ` (${file})` : ' (defaults: no configuration file)'}: hosts ${config.hosts.join(', ')}; listeners ${config.listeners.map((l) => `${l.type}:${l.port}`).join(', ')}`,
  );
  for (const w of warnings) console.error(`warning: ${w}`);
  if (warnings.length > 0) console.error(`${warnings.length} warning${warnings.length === 1 ? '' : 's'}`);
  return 0;
}
