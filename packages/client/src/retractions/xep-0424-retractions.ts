import { xml, type Element } from '@natter/xml';
import { NS } from '@natter/protocol';
import { Emitter } from '../core/emitter.js';
import type { PluginDefinition } from '../core/plugin.js';
import { onChatMessage, type MessageOrigin } from '../carbons/chat-messages.js';

export const NS_RETRACT = 'urn:xmpp:message-retract:1';
/** XEP-0424 before 0.4 wrapped the retraction in XEP-0422 `<apply-to/>` (read, never sent). */
const NS_RETRACT_LEGACY = 'urn:xmpp:message-retract:0';
const NS_FASTEN = 'urn:xmpp:fasten:0';
const NS_FALLBACK = 'urn:xmpp:fallback:0';

export interface RetractionsOptions {
  /** Body for clients without retraction support (XEP-0428 fallback). */
  fallbackBody?: string;
}

export interface RetractionsEvents {
  /**
   * The sender asks for one of their messages to be removed (XEP-0424 §4). Check that `from`
   * sent message `id` before hiding it (§7: only the original sender may retract).
   */
  retracted: { id: string; from: string; to: string; origin: MessageOrigin; element: Element };
}

export interface RetractionsApi extends Emitter<RetractionsEvents> {
  /** Retracts our message `id` (its origin-id or id in 1:1 chats, the room's stanza-id in a group chat). */
  retract(to: string, id: string, opts?: { type?: 'chat' | 'groupchat' }): Promise<string>;
}

/** The id a message retracts, if it is a retraction (current and pre-0.4 forms). */
export function retractedIdOf(message: Element): string | undefined {
  const r = message.getChild('retract', NS_RETRACT)?.attr('id');
  if (r) return r;
  const fasten = message.getChild('apply-to', NS_FASTEN);
  if (fasten?.getChild('retract', NS_RETRACT_LEGACY)) return fasten.attr('id');
  return undefined;
}

/** XEP-0424 Message Retraction. */
export function retractions(options: RetractionsOptions = {}): PluginDefinition<RetractionsApi> {
  const fallback =
    options.fallbackBody ??
    'This person attempted to retract a previous message, but it is unsupported by your client.';
  return {
    name: 'retractions',
    setup(ctx) {
      const { client } = ctx;
      ctx.addFeature(NS_RETRACT);
      const api = new (class extends Emitter<RetractionsEvents> implements RetractionsApi {
        retract(to: string, id: string, opts: { type?: 'chat' | 'groupchat' } = {}) {
          return client.sendMessage({
            to,
            type: opts.type ?? 'chat',
            body: fallback,
            children: [
              xml('retract', { xmlns: NS_RETRACT, id }),
              xml('fallback', { xmlns: NS_FALLBACK, for: NS_RETRACT }),
              xml('store', { xmlns: NS.hints }),
            ],
          });
        }
      })(ctx.reportError);
      onChatMessage(ctx, (m, origin) => {
        const id = retractedIdOf(m);
        if (!id) return;
        api.emit('retracted', { id, from: m.attr('from') ?? '', to: m.attr('to') ?? '', origin, element: m });
      });
      return api;
    },
  };
}
