import { xml } from '@natter/xml';
import { NS, StanzaError, type StanzaErrorCondition, type StanzaErrorType } from '@natter/protocol';

/**
 * A XEP-0060 error: a stanza condition plus, usually, an application condition in
 * `http://jabber.org/protocol/pubsub#errors` (§7-§8 error cases).
 */
export function pubsubError(
  condition: StanzaErrorCondition,
  app?: string,
  opts: { text?: string; feature?: string; type?: StanzaErrorType } = {},
): StanzaError {
  return new StanzaError(condition, {
    text: opts.text,
    type: opts.type,
    appCondition: app === undefined ? undefined : xml(app, { xmlns: NS.pubsubErrors, feature: opts.feature }),
  });
}

/** feature-not-implemented + <unsupported feature='…'/> (XEP-0060 §7-§8, "unsupported" cases). */
export function unsupported(feature: string, text?: string): StanzaError {
  return pubsubError('feature-not-implemented', 'unsupported', { feature, text });
}
