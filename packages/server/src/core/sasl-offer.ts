import { xml, type Element } from '@natter/xml';
import {
  CHANNEL_BINDING_TYPES,
  NS,
  NS_SASL_CB,
  type ServerMechanismName,
  type ServerMechanismOptions,
} from '@natter/protocol';
import type { Transport } from './transport.js';

/** What one stream offers for SASL: mechanisms, and the channel binding types behind -PLUS. */
export interface SaslOffer {
  mechanisms: ServerMechanismName[];
  /** Channel binding types available on this connection (XEP-0440); empty: no -PLUS. */
  channelBindingTypes: string[];
}

/**
 * SCRAM-*-PLUS is offered only where the transport can produce channel binding data (TLS
 * sockets; tls-exporter only on TLS 1.3), so a client never picks a -PLUS it cannot complete.
 * `sha256` false (`auth.offerScramSha256`) withholds SCRAM-SHA-256(-PLUS): accounts imported with
 * SCRAM-SHA-1 keys only then log in with clients that pick the strongest mechanism offered.
 */
export function saslOffer(transport: Transport, sha256 = true): SaslOffer {
  const channelBindingTypes = transport.secure
    ? CHANNEL_BINDING_TYPES.filter((t) => transport.channelBinding?.(t) !== undefined)
    : [];
  const all: ServerMechanismName[] = [
    ...(channelBindingTypes.length > 0 ? (['SCRAM-SHA-256-PLUS', 'SCRAM-SHA-1-PLUS'] as const) : []),
    'SCRAM-SHA-256',
    'SCRAM-SHA-1',
    'PLAIN',
  ];
  return {
    mechanisms: sha256 ? all : all.filter((m) => !m.startsWith('SCRAM-SHA-256')),
    channelBindingTypes,
  };
}

/** `<mechanisms/>` and, with channel binding, XEP-0440's `<sasl-channel-binding/>`. */
export function saslOfferFeatures(offer: SaslOffer): Element[] {
  const features = [
    xml(
      'mechanisms',
      { xmlns: NS.sasl },
      offer.mechanisms.map((m) => xml('mechanism', null, m)),
    ),
  ];
  if (offer.channelBindingTypes.length > 0) {
    features.push(
      xml(
        'sasl-channel-binding',
        { xmlns: NS_SASL_CB },
        offer.channelBindingTypes.map((type) => xml('channel-binding', { type })),
      ),
    );
  }
  return features;
}

/** Mechanism options tying an attempt to this connection's channel (RFC 5802 §6). */
export function channelBindingOptions(offer: SaslOffer, transport: Transport): ServerMechanismOptions {
  return {
    channelBindingOffered: offer.channelBindingTypes.length > 0,
    channelBinding: (type) =>
      offer.channelBindingTypes.includes(type) ? transport.channelBinding?.(type) : undefined,
  };
}
