import { jid, parseJid, JidError, type Jid } from '@natter/jid';
import {
  createServerMechanism,
  fromBase64,
  SaslFailure,
  type SaslServerMechanism,
  type ServerMechanismName,
} from '@natter/protocol';
import { channelBindingOptions, saslOffer } from '../../sasl-offer.js';
import { logAuthFailure } from '../../auth-log.js';
import type { ClientNegotiation } from './step.js';

/** What one step of an exchange gave: a challenge to send, the account, or a failure. */
export type SaslOutcome =
  | { kind: 'challenge'; data: Uint8Array }
  | { kind: 'success'; account: Jid; additionalData: Uint8Array | undefined }
  | { kind: 'failure'; failure: SaslFailure };

/**
 * The SASL exchange of one client stream, whatever profile carries it (RFC 6120 §6 or XEP-0388):
 * the mechanisms offered on this transport with their channel binding, the address's wait after
 * failures, authorisation only as oneself, and failures logged, counted and limited. One per stream,
 * shared by both profiles, so that switching profile does not reset the count of failures.
 */
export class SaslAttempt {
  private mech: SaslServerMechanism | undefined;
  private failures = 0;
  /** Mechanism and username of the current attempt (for the failure log line). */
  private attempt: { mechanism: string; username?: string } = { mechanism: '' };
  /** Whether the account the keys were read for is disabled (undefined: not read by this attempt). */
  private disabled: boolean | undefined;

  constructor(private readonly stream: ClientNegotiation) {}

  get inProgress(): boolean {
    return this.mech !== undefined;
  }

  /** Notes the username the client gave (for the log line). */
  noteUsername(username: string): void {
    this.attempt.username = username;
  }

  /**
   * Starts an attempt with `name`: one of the mechanisms offered here, or one `extra` supplies
   * (XEP-0484 tokens). A failure is returned, not yet reported (the caller calls `failed`).
   */
  begin(name: string, extra?: () => SaslServerMechanism | undefined): SaslFailure | undefined {
    const { stream } = this;
    this.mech = undefined;
    this.disabled = undefined;
    this.attempt = { mechanism: name };
    const offer = saslOffer(stream.transport, stream.server.config.auth.offerScramSha256);
    const offered = (offer.mechanisms as string[]).includes(name);
    const own = offered ? undefined : extra?.();
    if (!offered && !own) return new SaslFailure('invalid-mechanism', `mechanism ${name} is not offered`);
    // Password guessing spread over connections: the address waits before anything is checked.
    const wait = stream.server.limiter?.authWait?.(stream.transport.remoteAddress) ?? 0;
    if (wait > 0)
      return new SaslFailure(
        'temporary-auth-failure',
        `too many failed authentication attempts from your address; try again in ${Math.ceil(wait / 1000)} s`,
      );
    if (own) {
      this.mech = own;
      return undefined;
    }
    const host = stream.host!;
    this.mech = createServerMechanism(
      name as ServerMechanismName,
      {
        scram: async (username, hash) => {
          this.attempt.username = username;
          let account: Jid;
          try {
            account = jid(username, host.domain);
          } catch {
            return null;
          }
          const keys = await stream.server.accounts.scram(account.local, account.domain, hash);
          this.disabled = keys?.disabled;
          return keys;
        },
      },
      {
        ...channelBindingOptions(offer, stream.transport),
        // An imported account with one hash's keys gets the other's from a proven password
        // (docs/decisions/0015-imported-scram-keys.md).
        passwordVerified: async (username, password) => {
          const account = jid(username, host.domain);
          if (await stream.server.accounts.completeKeys(account.local, account.domain, password))
            stream.server.log.info(
              { account: account.toString() },
              'imported account: SCRAM keys completed at a PLAIN login',
            );
        },
      },
    );
    return undefined;
  }

  abort(): void {
    this.mech = undefined;
  }

  /** One step with the client's base64 data (null: no initial response). */
  async step(b64: string | null): Promise<SaslOutcome> {
    const { stream } = this;
    const mech = this.mech;
    if (!mech) return { kind: 'failure', failure: new SaslFailure('malformed-request', 'no exchange') };
    let input: Uint8Array | null;
    try {
      input = b64 === null ? null : fromBase64(b64.trim());
    } catch {
      this.mech = undefined;
      return {
        kind: 'failure',
        failure: new SaslFailure('incorrect-encoding', 'the data is not valid base64'),
      };
    }
    try {
      const r = await mech.step(input);
      if (!r.done) return { kind: 'challenge', data: r.challenge };
      this.mech = undefined;
      const account = jid(r.result.username, stream.host!.domain);
      if (r.result.authzid !== undefined && r.result.authzid !== '') {
        let authz: Jid | undefined;
        try {
          authz = parseJid(r.result.authzid);
        } catch {
          authz = undefined;
        }
        if (!authz || !authz.equals(account))
          return {
            kind: 'failure',
            failure: new SaslFailure('invalid-authzid', 'you may only authorise as yourself'),
          };
      }
      // A disabled account (XEP-0133 disable-user): said only to whoever proved the password. A
      // mechanism that read no keys (XEP-0484 tokens) asks the store.
      const disabled =
        this.disabled ?? (await stream.server.accounts.isDisabled(account.local, account.domain));
      if (disabled)
        return {
          kind: 'failure',
          failure: new SaslFailure('account-disabled', 'this account is disabled by the administrator'),
        };
      const extra = r.result.additionalData;
      stream.server.metrics.authSucceeded(this.attempt.mechanism);
      return { kind: 'success', account, additionalData: extra && extra.length > 0 ? extra : undefined };
    } catch (err) {
      this.mech = undefined;
      if (err instanceof SaslFailure) return { kind: 'failure', failure: err };
      if (err instanceof JidError)
        return { kind: 'failure', failure: new SaslFailure('not-authorized', 'authentication failed') };
      throw err;
    }
  }

  /**
   * Reports a failure the caller has just sent: logged, counted against the address (a wrong
   * password) and against the stream, which ends after `limits.maxAuthFailures`.
   */
  failed(f: SaslFailure): void {
    const { stream } = this;
    this.mech = undefined;
    logAuthFailure(stream.server.log, {
      address: stream.transport.remoteAddress,
      username: this.attempt.username,
      mechanism: this.attempt.mechanism,
      condition: f.condition,
    });
    stream.server.metrics.authFailed(this.attempt.mechanism, f.condition);
    if (f.condition === 'not-authorized') stream.server.limiter?.authFailed(stream.transport.remoteAddress);
    const counts = f.condition === 'not-authorized' || f.condition === 'temporary-auth-failure';
    if (counts && ++this.failures >= stream.server.config.limits.maxAuthFailures)
      stream.fail('policy-violation', 'too many failed authentication attempts');
  }
}
