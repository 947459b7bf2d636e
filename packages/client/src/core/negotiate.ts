import { xml, type Element } from '@natter/xml';
import {
  CHANNEL_BINDING_TYPES,
  NS,
  NS_SASL_CB,
  SaslFailure,
  type ChannelBinding,
  chooseClientMechanism,
  fromBase64,
  toBase64,
  StanzaError,
  type SaslFailureCondition,
  type SaslClientMechanism,
} from '@natter/protocol';
import { AuthenticationError, ClientError } from './errors.js';
import { randomId } from './ids.js';
import type { XmppStream } from './xmpp-stream.js';

/** RFC 6120 §5: STARTTLS. Resolves when the transport is encrypted (the caller restarts the stream). */
export async function negotiateStartTls(stream: XmppStream): Promise<void> {
  const { transport } = stream;
  if (!transport.startTls) throw new ClientError('tls-unavailable', 'this transport cannot start TLS');
  stream.send(xml('starttls', { xmlns: NS.tls }));
  const reply = await stream.next();
  if (!reply.is('proceed', NS.tls)) throw new ClientError('connection-failed', 'the server refused STARTTLS');
  try {
    await transport.startTls();
  } catch (err) {
    throw new ClientError('tls-failed', `TLS negotiation failed: ${(err as Error).message}`, { cause: err });
  }
}

export interface SaslOptions {
  username: string;
  password: string;
  allowPlain: boolean;
  only?: string[] | undefined;
}

/**
 * Channel binding for SCRAM-*-PLUS: the first type (tls-exporter, then tls-server-end-point) that
 * the server lists in XEP-0440's `<sasl-channel-binding/>` and the transport can produce. Without
 * that feature the server's types are unknown (e.g. Prosody offering -PLUS for tls-unique only),
 * so no binding is used.
 */
function pickChannelBinding(stream: XmppStream, features: Element): ChannelBinding | undefined {
  const { transport } = stream;
  if (!transport.channelBinding) return undefined;
  const serverTypes = (
    features.getChild('sasl-channel-binding', NS_SASL_CB)?.getChildren('channel-binding') ?? []
  ).map((b) => b.attrs.type);
  for (const type of CHANNEL_BINDING_TYPES) {
    if (!serverTypes.includes(type)) continue;
    const data = transport.channelBinding(type);
    if (data) return { type, data };
  }
  return undefined;
}

/** What a login used: the SASL mechanism and, for -PLUS, the channel binding type. */
export interface SaslOutcome {
  mechanism: string;
  channelBinding?: string;
}

/**
 * The strongest mechanism of `all` (the server's list) that the options allow, with the channel
 * binding it uses; throws `no-mechanism` when there is none.
 */
export function chooseMechanism(
  stream: XmppStream,
  features: Element,
  all: string[],
  opts: SaslOptions,
): { mech: SaslClientMechanism; channelBinding: ChannelBinding | undefined } {
  const offered = opts.only ? all.filter((m) => opts.only!.includes(m)) : all;
  const channelBinding = pickChannelBinding(stream, features);
  // RFC 5802 §6: a client able to bind that sees no -PLUS at all says so with "y" (downgrade detection).
  const canBind = CHANNEL_BINDING_TYPES.some((t) => stream.transport.channelBinding?.(t) !== undefined);
  const plusOffered = all.some((m) => m.toUpperCase().endsWith('-PLUS'));
  const mech = chooseClientMechanism(
    offered,
    { username: opts.username, password: opts.password },
    {
      allowPlain: opts.allowPlain,
      ...(channelBinding ? { channelBinding } : {}),
      channelBindingSupported: canBind && !plusOffered,
    },
  );
  if (!mech) {
    const why =
      offered.includes('PLAIN') && !opts.allowPlain
        ? ' (PLAIN is only used over TLS unless allowPlaintextAuth is set)'
        : '';
    throw new AuthenticationError(
      'no-mechanism',
      `no acceptable SASL mechanism among [${offered.join(', ')}]${why}`,
    );
  }
  return { mech, channelBinding };
}

/** RFC 6120 §6: SASL negotiation with the strongest mechanism both sides support. */
export async function authenticate(
  stream: XmppStream,
  features: Element,
  opts: SaslOptions,
): Promise<SaslOutcome> {
  const all = (features.getChild('mechanisms', NS.sasl)?.getChildren('mechanism', NS.sasl) ?? []).map((m) =>
    m.text().trim(),
  );
  const { mech, channelBinding } = chooseMechanism(stream, features, all, opts);
  await saslExchange(stream, mech, NS.sasl, (initial) =>
    xml('auth', { xmlns: NS.sasl, mechanism: mech.name }, initial),
  );
  return mech.name.endsWith('-PLUS') && channelBinding
    ? { mechanism: mech.name, channelBinding: channelBinding.type }
    : { mechanism: mech.name };
}

/**
 * One SASL exchange in the syntax of RFC 6120 §6.4 or of XEP-0388 §2.6 (`ns`): sends `first` with
 * the mechanism's initial response (base64, `=` when empty), answers the challenges, checks the
 * server's final data (SCRAM's server signature) and resolves with `<success/>`.
 */
export async function saslExchange(
  stream: XmppStream,
  mech: SaslClientMechanism,
  ns: string,
  first: (initial: string) => Element,
): Promise<Element> {
  const decode = (text: string | undefined): Uint8Array | null => {
    const t = text?.trim();
    return t && t !== '=' ? fromBase64(t) : null;
  };
  try {
    const initial = await mech.initial();
    stream.send(first(initial.length === 0 ? '=' : toBase64(initial)));
    for (;;) {
      const el = await stream.next();
      if (el.xmlns === ns) {
        if (el.name === 'challenge') {
          const resp = await mech.challenge(decode(el.text()) ?? new Uint8Array(0));
          stream.send(xml('response', { xmlns: ns }, resp.length === 0 ? undefined : toBase64(resp)));
          continue;
        }
        if (el.name === 'success') {
          await mech.success(decode(ns === NS.sasl ? el.text() : el.getChildText('additional-data', ns)));
          return el;
        }
        if (el.name === 'failure') {
          const { condition, text } = failureOf(el);
          throw new AuthenticationError(
            condition,
            `authentication failed: ${condition}${text ? ` (${text})` : ''}`,
          );
        }
        if (el.name === 'continue') {
          // Tasks (XEP-0388 §2.6: a second factor, a password change) are not supported.
          stream.send(xml('abort', { xmlns: ns }));
          throw new AuthenticationError(
            'aborted',
            'the server asks for a further task this client does not support',
          );
        }
      }
      throw new ClientError('connection-failed', `unexpected <${el.name}/> during SASL`);
    }
  } catch (err) {
    if (err instanceof SaslFailure)
      throw new AuthenticationError(err.condition, `authentication failed: ${err.message}`, { cause: err });
    throw err;
  }
}

/** The condition and text of a SASL `<failure/>` (RFC 6120 §6.5, XEP-0388 §2.6.3). */
export function failureOf(el: Element): { condition: SaslFailureCondition; text: string | undefined } {
  const c = el.elements().find((x) => x.xmlns === NS.sasl && x.name !== 'text');
  return {
    condition: (c?.name ?? 'not-authorized') as SaslFailureCondition,
    text: el.getChildText('text'),
  };
}

/** RFC 6120 §7: resource binding; returns the full JID the server assigned. */
export async function bindResource(stream: XmppStream, resource: string | undefined): Promise<string> {
  const id = randomId();
  stream.send(
    xml(
      'iq',
      { type: 'set', id },
      xml('bind', { xmlns: NS.bind }, resource ? xml('resource', null, resource) : undefined),
    ),
  );
  const reply = await stream.next();
  if (!reply.is('iq') || reply.attr('id') !== id)
    throw new ClientError('bind-failed', `unexpected <${reply.name}/> while binding`);
  if (reply.attr('type') === 'error')
    throw new ClientError('bind-failed', 'resource binding failed', { cause: StanzaError.fromStanza(reply) });
  const jid = reply.getChild('bind', NS.bind)?.getChildText('jid', NS.bind);
  if (!jid) throw new ClientError('bind-failed', 'bind result without a JID');
  return jid.trim();
}

/** RFC 3921 session establishment, only when the server says it is not optional. */
export async function establishSession(stream: XmppStream, features: Element): Promise<void> {
  const session = features.getChild('session', NS.session);
  if (!session || session.getChild('optional')) return;
  const id = randomId();
  stream.send(xml('iq', { type: 'set', id }, xml('session', { xmlns: NS.session })));
  const reply = await stream.next();
  if (reply.attr('type') === 'error')
    throw new ClientError('bind-failed', 'session establishment failed', {
      cause: StanzaError.fromStanza(reply),
    });
}
