import { xml, type Element } from '@natter/xml';
import { NS } from '@natter/protocol';
import { Emitter } from '../core/emitter.js';
import type { PluginDefinition } from '../core/plugin.js';
import { onChatMessage, type MessageOrigin } from '../carbons/chat-messages.js';

export const NS_REACTIONS = 'urn:xmpp:reactions:0';

export interface ReactionsEvents {
  /**
   * `from` reacted to message `id`: `reactions` is their complete set for it, replacing any earlier
   * one (XEP-0444 §3); an empty list removes their reactions.
   */
  reactions: {
    id: string;
    from: string;
    to: string;
    reactions: string[];
    origin: MessageOrigin;
    element: Element;
  };
}

export interface ReactionsApi extends Emitter<ReactionsEvents> {
  /** Sends our full set of reactions to message `id` (an empty list removes them). Returns the message id. */
  react(
    to: string,
    id: string,
    reactions: readonly string[],
    opts?: { type?: 'chat' | 'groupchat' },
  ): Promise<string>;
}

/** The reactions a message carries, if it is a reaction update. */
export function reactionsOf(message: Element): { id: string; reactions: string[] } | undefined {
  const r = message.getChild('reactions', NS_REACTIONS);
  const id = r?.attr('id');
  if (!r || !id) return undefined;
  const list = r
    .getChildren('reaction', NS_REACTIONS)
    .map((e) => e.text())
    .filter((t) => t.length > 0);
  return { id, reactions: [...new Set(list)] };
}

/** XEP-0444 Message Reactions. */
export function reactions(): PluginDefinition<ReactionsApi> {
  return {
    name: 'reactions',
    setup(ctx) {
      const { client } = ctx;
      ctx.addFeature(NS_REACTIONS);
      const api = new (class extends Emitter<ReactionsEvents> implements ReactionsApi {
        react(to: string, id: string, list: readonly string[], opts: { type?: 'chat' | 'groupchat' } = {}) {
          return client.sendMessage({
            to,
            type: opts.type ?? 'chat',
            children: [
              xml(
                'reactions',
                { xmlns: NS_REACTIONS, id },
                [...new Set(list)].map((r) => xml('reaction', null, r)),
              ),
              // §3.1: reactions have no body, yet archives must keep them.
              xml('store', { xmlns: NS.hints }),
            ],
          });
        }
      })(ctx.reportError);
      onChatMessage(ctx, (m, origin) => {
        const r = reactionsOf(m);
        if (!r) return;
        api.emit('reactions', {
          ...r,
          from: m.attr('from') ?? '',
          to: m.attr('to') ?? '',
          origin,
          element: m,
        });
      });
      return api;
    },
  };
}
