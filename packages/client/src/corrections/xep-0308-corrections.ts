import { xml, type Element } from '@natter/xml';
import { Emitter } from '../core/emitter.js';
import type { PluginDefinition } from '../core/plugin.js';
import { randomId } from '../core/ids.js';
import { onChatMessage, type MessageOrigin } from '../carbons/chat-messages.js';

export const NS_CORRECTION = 'urn:xmpp:message-correct:0';

export interface CorrectionsEvents {
  /** A message replaces an earlier one (XEP-0308 §4): show `body` in place of message `replaces`. */
  corrected: {
    /** Id of the message being corrected (the first one of the chain, §5). */
    replaces: string;
    /** Id of the correcting message. */
    id: string | undefined;
    from: string;
    to: string;
    body: string;
    origin: MessageOrigin;
    element: Element;
  };
}

export interface CorrectionsApi extends Emitter<CorrectionsEvents> {
  /**
   * Sends a correction of our message `replaces` (always the id of the original message, even
   * when correcting a correction, §5). Returns the new message's id.
   */
  correct(
    to: string,
    replaces: string,
    body: string,
    opts?: { type?: 'chat' | 'groupchat'; id?: string; children?: Element[] },
  ): Promise<string>;
}

/** The id a message corrects, if it is a correction. */
export function replacedIdOf(message: Element): string | undefined {
  return message.getChild('replace', NS_CORRECTION)?.attr('id');
}

/** XEP-0308 Last Message Correction. */
export function corrections(): PluginDefinition<CorrectionsApi> {
  return {
    name: 'corrections',
    setup(ctx) {
      const { client } = ctx;
      ctx.addFeature(NS_CORRECTION);
      const api = new (class extends Emitter<CorrectionsEvents> implements CorrectionsApi {
        async correct(
          to: string,
          replaces: string,
          body: string,
          opts: { type?: 'chat' | 'groupchat'; id?: string; children?: Element[] } = {},
        ) {
          const id = opts.id ?? randomId();
          await client.sendMessage({
            to,
            body,
            id,
            type: opts.type ?? 'chat',
            children: [xml('replace', { xmlns: NS_CORRECTION, id: replaces }), ...(opts.children ?? [])],
          });
          return id;
        }
      })(ctx.reportError);
      onChatMessage(ctx, (m, origin) => {
        const replaces = replacedIdOf(m);
        const body = m.getChildText('body');
        if (!replaces || body === undefined) return;
        api.emit('corrected', {
          replaces,
          id: m.attr('id'),
          from: m.attr('from') ?? '',
          to: m.attr('to') ?? '',
          body,
          origin,
          element: m,
        });
      });
      return api;
    },
  };
}
