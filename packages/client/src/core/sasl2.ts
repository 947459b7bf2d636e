// XEP-0388 (SASL2) with XEP-0484 (FAST): one authentication exchange, with the installation's
// user-agent, that may ask for a token, or log in with one in a single round trip (HT-* SASL
// mechanisms, draft-schmaus-kitten-sasl-ht).
import { xml, type Element } from '@natter/xml';
import { NS, constantTimeEqual, fromBase64, hmac, toBase64, utf8 } from '@natter/protocol';
import { AuthenticationError, ClientError } from './errors.js';
import { chooseMechanism, failureOf, saslExchange, type SaslOptions, type SaslOutcome } from './negotiate.js';
import type { FastToken } from './credentials.js';
import type { XmppStream } from './xmpp-stream.js';

/** HT-* mechanisms this client can compute, best first, with the channel binding each needs. */
const HT: readonly [string, string | undefined][] = [
  ['HT-SHA-256-EXPR', 'tls-exporter'],
  ['HT-SHA-256-ENDP', 'tls-server-end-point'],
  ['HT-SHA-256-NONE', undefined],
];

export interface Sasl2Options extends Omit<SaslOptions, 'password'> {
  password: string | undefined;
  userAgent: { id: string; software?: string; device?: string };
  /** Log in with this token instead of the password. */
  token?: FastToken;
  /** Ask for a token (when the server offers FAST). */
  requestToken: boolean;
  /** With `token`: ask the server to invalidate it once this login succeeds (XEP-0484 "Client requests token invalidation"). */
  invalidate?: boolean;
  /** More children of `<authenticate/>`: inline requests (XEP-0386 `<bind/>`, XEP-0198 `<resume/>`). */
  inline?: Element[];
}

export interface Sasl2Outcome extends SaslOutcome {
  /** The JID the server says we are (`<authorization-identifier/>`). */
  authorizationId?: string;
  /** A token issued with this login. */
  token?: FastToken;
  /** Whether the login used a FAST token. */
  fast: boolean;
  /** The `<success/>`, with the answers to the inline requests. */
  success: Element;
}

/** The failures that say a token is no good (anything else may pass: the token is kept). */
const TOKEN_REFUSALS = new Set<string>(['not-authorized', 'credentials-expired', 'account-disabled']);

/** A FAST token the server refused: the caller forgets it and may log in with the password. */
export class FastTokenRefused extends AuthenticationError {}

/** HT-SHA-256-*: HMAC-SHA-256 keyed by the token, over the label and the channel binding data. */
const htMac = (token: string, label: string, cb: Uint8Array) =>
  hmac('SHA-256', utf8(token), new Uint8Array([...utf8(label), ...cb]));

/** The HT-* mechanism to ask a token for: the strongest the server offers that this transport can bind. */
function tokenMechanism(stream: XmppStream, offered: string[]): string | undefined {
  for (const [name, cb] of HT)
    if (offered.includes(name) && (cb === undefined || stream.transport.channelBinding?.(cb))) return name;
  return undefined;
}

/**
 * XEP-0388 §2: authenticates with `<authenticate/>` (no stream restart follows success). With
 * `token`, its HT-* mechanism; otherwise the strongest password mechanism, as RFC 6120 SASL.
 */
export async function authenticate2(
  stream: XmppStream,
  features: Element,
  opts: Sasl2Options,
): Promise<Sasl2Outcome> {
  const auth = features.getChild('authentication', NS.sasl2)!;
  const offered = auth.getChildren('mechanism', NS.sasl2).map((m) => m.text().trim());
  const fastOffered =
    auth
      .getChild('inline', NS.sasl2)
      ?.getChild('fast', NS.fast)
      ?.getChildren('mechanism', NS.fast)
      .map((m) => m.text().trim()) ?? [];
  const ua = xml(
    'user-agent',
    { id: opts.userAgent.id },
    opts.userAgent.software !== undefined && xml('software', null, opts.userAgent.software),
    opts.userAgent.device !== undefined && xml('device', null, opts.userAgent.device),
  );

  // A token: one message each way. Never over an unencrypted connection: HT-SHA-256-NONE sends the
  // same MAC at every login, so anyone who saw it could log in with it until it expires.
  const secure = stream.transport.secure;
  const token = secure ? opts.token : undefined;
  const ht = token && HT.find(([name]) => name === token.mechanism && fastOffered.includes(name));
  if (token && ht) {
    const cb = ht[1] === undefined ? new Uint8Array(0) : stream.transport.channelBinding?.(ht[1]);
    if (cb) {
      const initial = new Uint8Array([
        ...utf8(opts.username),
        0,
        ...(await htMac(token.token, 'Initiator', cb)),
      ]);
      stream.send(
        xml(
          'authenticate',
          { xmlns: NS.sasl2, mechanism: token.mechanism },
          xml('initial-response', null, toBase64(initial)),
          ua,
          xml('fast', {
            xmlns: NS.fast,
            count: String(token.count),
            invalidate: opts.invalidate ? 'true' : undefined,
          }),
          opts.inline,
        ),
      );
      const el = await stream.next();
      if (el.is('success', NS.sasl2)) {
        const data = el.getChildText('additional-data', NS.sasl2);
        // The server proves it knows the token too (mutual authentication): required, as SCRAM's
        // server signature is.
        if (
          data === undefined ||
          !constantTimeEqual(fromBase64(data.trim()), await htMac(token.token, 'Responder', cb))
        )
          throw new AuthenticationError('not-authorized', 'the server did not prove it knows the FAST token');
        // A token past half its life comes back replaced (XEP-0484 §6), for the same mechanism.
        return { mechanism: token.mechanism, fast: true, ...successData(el, token.mechanism) };
      }
      if (el.is('failure', NS.sasl2)) {
        const { condition, text } = failureOf(el);
        const message = `the FAST token was refused: ${condition}${text ? ` (${text})` : ''}`;
        // Only a verdict on the token makes it worthless; a temporary failure keeps it.
        if (TOKEN_REFUSALS.has(condition)) throw new FastTokenRefused(condition, message);
        throw new AuthenticationError(condition, message);
      }
      throw new ClientError('connection-failed', `unexpected <${el.name}/> during SASL2`);
    }
  }
  if (opts.password === undefined)
    throw new AuthenticationError('not-authorized', 'no password, and no FAST token this server accepts');

  const { mech, channelBinding } = chooseMechanism(stream, features, offered, {
    ...opts,
    password: opts.password,
  });
  const wanted = opts.requestToken && secure ? tokenMechanism(stream, fastOffered) : undefined;
  const el = await saslExchange(stream, mech, NS.sasl2, (initial) =>
    xml(
      'authenticate',
      { xmlns: NS.sasl2, mechanism: mech.name },
      xml('initial-response', null, initial),
      ua,
      wanted !== undefined && xml('request-token', { xmlns: NS.fast, mechanism: wanted }),
      opts.inline,
    ),
  );
  return {
    mechanism: mech.name,
    ...(mech.name.endsWith('-PLUS') && channelBinding ? { channelBinding: channelBinding.type } : {}),
    fast: false,
    ...successData(el, wanted ?? ''),
  };
}

function successData(
  el: Element,
  mechanism: string,
): { authorizationId?: string; token?: FastToken; success: Element } {
  const id = el.getChildText('authorization-identifier', NS.sasl2)?.trim();
  const t = el.getChild('token', NS.fast);
  const expiry = Date.parse(t?.attrs.expiry ?? '');
  return {
    success: el,
    ...(id ? { authorizationId: id } : {}),
    ...(t?.attrs.token && Number.isFinite(expiry)
      ? { token: { mechanism, token: t.attrs.token, expiry, count: 0 } }
      : {}),
  };
}
