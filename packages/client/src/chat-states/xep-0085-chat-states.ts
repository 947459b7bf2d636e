import { xml, type Element } from '@natter/xml';
import { NS } from '@natter/protocol';
import { Emitter } from '../core/emitter.js';
import type { PluginDefinition } from '../core/plugin.js';
import { onChatMessage, type MessageOrigin } from '../carbons/chat-messages.js';

export type ChatState = 'active' | 'composing' | 'paused' | 'inactive' | 'gone';
const STATES: readonly string[] = ['active', 'composing', 'paused', 'inactive', 'gone'];

export interface ChatStatesOptions {
  /** Add `<active/>` to outgoing chat messages with a body that carry no state (XEP-0085 §5.1; default false). */
  activeWithMessages?: boolean;
}

export interface ChatStatesEvents {
  /** A peer's (or, for `carbon-sent`, our other device's) chat state. */
  state: { from: string; to: string; state: ChatState; origin: MessageOrigin; element: Element };
}

export interface ChatStatesApi extends Emitter<ChatStatesEvents> {
  /** Sends a standalone chat state notification (§5.2): a message without body, not stored. */
  send(to: string, state: ChatState, opts?: { type?: 'chat' | 'groupchat'; thread?: string }): Promise<void>;
}

/** The chat state carried by a message, if any. */
export function chatStateOf(message: Element): ChatState | undefined {
  for (const c of message.elements())
    if (c.xmlns === NS.chatStates && STATES.includes(c.name)) return c.name as ChatState;
  return undefined;
}

/** XEP-0085 Chat State Notifications (typing indicators). */
export function chatStates(options: ChatStatesOptions = {}): PluginDefinition<ChatStatesApi> {
  return {
    name: 'chatStates',
    setup(ctx) {
      const { client } = ctx;
      ctx.addFeature(NS.chatStates);
      const api = new (class extends Emitter<ChatStatesEvents> implements ChatStatesApi {
        async send(
          to: string,
          state: ChatState,
          opts: { type?: 'chat' | 'groupchat'; thread?: string } = {},
        ) {
          await client.send(
            xml(
              'message',
              { to, type: opts.type ?? 'chat' },
              xml(state, { xmlns: NS.chatStates }),
              opts.thread !== undefined && xml('thread', null, opts.thread),
              // XEP-0334: a notification is not worth archiving.
              xml('no-store', { xmlns: NS.hints }),
            ),
          );
        }
      })(ctx.reportError);
      if (options.activeWithMessages) {
        ctx.outgoing((el) => {
          if (el.name !== 'message' || el.attr('type') !== 'chat' || !el.getChild('body')) return;
          if (!chatStateOf(el)) el.append(xml('active', { xmlns: NS.chatStates }));
        });
      }
      onChatMessage(ctx, (m, origin) => {
        const state = chatStateOf(m);
        if (!state) return;
        api.emit('state', { from: m.attr('from') ?? '', to: m.attr('to') ?? '', state, origin, element: m });
      });
      return api;
    },
  };
}
