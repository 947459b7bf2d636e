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

export type ServerMechanismName =
  'PLAIN' | 'SCRAM-SHA-1' | 'SCRAM-SHA-256' | 'SCRAM-SHA-1-PLUS' | 'SCRAM-SHA-256-PLUS';

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
    case 'SCRAM-SHA-1-PLUS':
      return new ScramServerMechanism('SHA-1', lookup, opts, true);
    case 'SCRAM-SHA-256-PLUS':
      return new ScramServerMechanism('SHA-256', lookup, opts, true);
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
    case 'SCRAM-SHA-1-PLUS':
    case 'SCRAM-SHA-256-PLUS':
      if (!opts.channelBinding)
        throw new SaslFailure('invalid-mechanism', `${name} needs channel binding, which is unavailable`);
      return new ScramClientMechanism(name === 'SCRAM-SHA-1-PLUS' ? 'SHA-1' : 'SHA-256', creds, opts, true);
    default:
      throw new SaslFailure('invalid-mechanism', `unsupported mechanism ${name}`);
  }
}

/**
 * Picks the strongest offered mechanism: SCRAM-SHA-256-PLUS and SCRAM-SHA-1-PLUS when
 * `channelBinding` is given, then SCRAM-SHA-256, SCRAM-SHA-1, then PLAIN (only with allowPlain,
 * i.e. over TLS). Returns null when none is acceptable.
 *
 * With `channelBindingSupported` (the client could bind to this channel) and no -PLUS offered at
 * all, plain SCRAM sends the GS2 flag "y" so that a server whose -PLUS offer was stripped notices.
 */
export function chooseClientMechanism(
  offered: string[],
  creds: ClientCredentials,
  opts: { allowPlain: boolean } & ClientMechanismOptions = { allowPlain: false },
): SaslClientMechanism | null {
  const set = new Set(offered.map((m) => m.trim().toUpperCase()));
  const preference = [
    ...(opts.channelBinding ? ['SCRAM-SHA-256-PLUS', 'SCRAM-SHA-1-PLUS'] : []),
    'SCRAM-SHA-256',
    'SCRAM-SHA-1',
    ...(opts.allowPlain ? ['PLAIN'] : []),
  ];
  const plusOffered = set.has('SCRAM-SHA-256-PLUS') || set.has('SCRAM-SHA-1-PLUS');
  const { channelBinding, channelBindingSupported, ...rest } = opts;
  for (const name of preference) {
    if (!set.has(name)) continue;
    if (name.endsWith('-PLUS')) return createClientMechanism(name, creds, { ...rest, channelBinding });
    const y = channelBindingSupported === true && !plusOffered;
    return createClientMechanism(name, creds, { ...rest, ...(y ? { channelBindingSupported: true } : {}) });
  }
  return null;
}
