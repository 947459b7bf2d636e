import type { Element } from '@natter/xml';
import { NS } from '@natter/protocol';
import type { PluginContext } from '../core/plugin.js';
import type { CarbonsApi } from './xep-0280-carbons.js';

/** Where a message seen by a messaging plugin came from. */
export type MessageOrigin =
  /** Addressed to this client. */
  | 'direct'
  /** A carbon of a message another of our devices received (XEP-0280 §7). */
  | 'carbon-received'
  /** A carbon of a message another of our devices sent (XEP-0280 §8): from the user, not to them. */
  | 'carbon-sent';

/**
 * Calls `fn` with every non-error message addressed to this client and, when the `carbons`
 * plugin is active, with the unwrapped carbon copies it accepted (§11 checked there). Used by the
 * messaging plugins (chat states, markers, corrections, retractions, reactions) so that their
 * events cover the user's other devices too.
 */
export function onChatMessage(
  ctx: PluginContext,
  fn: (message: Element, origin: MessageOrigin) => void,
): void {
  const { client } = ctx;
  let carbonsHooked = false;
  // Plugins are set up one after the other: look for `carbons` once they all are.
  const hookCarbons = () => {
    if (carbonsHooked) return;
    carbonsHooked = true;
    const carbons = ctx.plugin<CarbonsApi>('carbons');
    carbons?.on('received', ({ message }) => {
      if (message.attr('type') !== 'error') fn(message, 'carbon-received');
    });
    carbons?.on('sent', ({ message }) => {
      if (message.attr('type') !== 'error') fn(message, 'carbon-sent');
    });
  };
  client.on('status', hookCarbons);
  client.on('message', (m) => {
    hookCarbons();
    if (m.attr('type') === 'error') return;
    if (m.getChild('received', NS.carbons) || m.getChild('sent', NS.carbons)) return;
    fn(m, 'direct');
  });
}
