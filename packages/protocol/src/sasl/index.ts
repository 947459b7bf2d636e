export { toBase64, fromBase64 } from './base64.js';
export { SaslFailure, type SaslFailureCondition } from './sasl-failure.js';
export { saslprep, type SaslprepOptions } from './saslprep.js';
export {
  deriveScramCredentials,
  constantTimeEqual,
  digest,
  hmac,
  utf8,
  type ScramCredentials,
  type ScramHash,
} from './scram-crypto.js';
export type {
  ClientCredentials,
  ClientMechanismOptions,
  CredentialLookup,
  SaslClientMechanism,
  SaslServerMechanism,
  SaslServerResult,
  SaslServerStep,
  ServerMechanismOptions,
} from './mechanism.js';
export {
  chooseClientMechanism,
  createClientMechanism,
  createServerMechanism,
  type ServerMechanismName,
} from './factory.js';
export {
  CHANNEL_BINDING_TYPES,
  NS_SASL_CB,
  TLS_EXPORTER_LABEL,
  TLS_EXPORTER_LENGTH,
  endPointHash,
  type ChannelBinding,
  type ChannelBindingType,
} from './channel-binding.js';
