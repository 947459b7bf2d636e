import type {
  ClientCredentials,
  ClientMechanismOptions,
  CredentialLookup,
  SaslClientMechanism,
  SaslServerMechanism,
  ServerMechanismOptions,
} from './mechanism.js';
import { PlainClientMechanism } from './plain-client.js';
import { PlainServerMechanism } from './plain-server.js';
import { SaslFailure } from './sasl-failure.js';
import { ScramClientMechanism } from './scram-client.js';
import { ScramServerMechanism } from './scram-server.js';

export type ServerMechanismName = 'PLAIN' | 'SCRAM-SHA-1' | 'SCRAM-SHA-256';

/** A fresh server mechanism for one authentication attempt. */
export function createServerMechanism(
  name: ServerMechanismName,
  lookup: CredentialLookup,
  opts: ServerMechanismOptions = {},
): SaslServerMechanism {
  switch (name) {
    case 'PLAIN':
      return new PlainServerMechanism(lookup, opts);
    case 'SCRAM-SHA-1':
      return new ScramServerMechanism('SHA-1', lookup, opts);
    case 'SCRAM-SHA-256':
      return new ScramServerMechanism('SHA-256', lookup, opts);
    default:
      throw new SaslFailure('invalid-mechanism', `unsupported mechanism ${String(name)}`);
  }
}

/** A fresh client mechanism; throws SaslFailure('invalid-mechanism') for names it does not implement. */
export function createClientMechanism(
  name: string,
  creds: ClientCredentials,
  opts: ClientMechanismOptions = {},
): SaslClientMechanism {
  switch (name) {
    case 'PLAIN':
      return new PlainClientMechanism(creds);
    case 'SCRAM-SHA-1':
      return new ScramClientMechanism('SHA-1', creds, opts);
    case 'SCRAM-SHA-256':
      return new ScramClientMechanism('SHA-256', creds, opts);
    default:
      throw new SaslFailure('invalid-mechanism', `unsupported mechanism ${name}`);
  }
}

/**
 * Picks the strongest offered mechanism: SCRAM-SHA-256, then SCRAM-SHA-1, then PLAIN (only with
 * allowPlain, i.e. over TLS). Returns null when none is acceptable.
 */
export function chooseClientMechanism(
  offered: string[],
  creds: ClientCredentials,
  opts: { allowPlain: boolean } & ClientMechanismOptions = { allowPlain: false },
): SaslClientMechanism | null {
  const preference = opts.allowPlain
    ? ['SCRAM-SHA-256', 'SCRAM-SHA-1', 'PLAIN']
    : ['SCRAM-SHA-256', 'SCRAM-SHA-1'];
  const set = new Set(offered.map((m) => m.trim().toUpperCase()));
  for (const name of preference) {
    if (set.has(name)) return createClientMechanism(name, creds, opts);
  }
  return null;
}
