/**
 * SASL failure conditions of RFC 6120 §6.5. Every error this module raises on purpose is a
 * SaslFailure, so the stream layer can turn it into `<failure><condition/></failure>` directly.
 */
export type SaslFailureCondition =
  | 'aborted'
  | 'account-disabled'
  | 'credentials-expired'
  | 'encryption-required'
  | 'incorrect-encoding'
  | 'invalid-authzid'
  | 'invalid-mechanism'
  | 'malformed-request'
  | 'mechanism-too-weak'
  | 'not-authorized'
  | 'temporary-auth-failure';

export class SaslFailure extends Error {
  readonly condition: SaslFailureCondition;

  constructor(condition: SaslFailureCondition, message?: string) {
    super(message ? `${condition}: ${message}` : condition);
    this.name = 'SaslFailure';
    this.condition = condition;
  }
}
