import { xml, type Element } from '@natter/xml';
import { tryParseJid } from '@natter/jid';
import { NS } from '@natter/protocol';
import { Emitter } from '../core/emitter.js';
import type { PluginDefinition } from '../core/plugin.js';
import { onChatMessage, type MessageOrigin } from '../carbons/chat-messages.js';

export const NS_CHAT_MARKERS = 'urn:xmpp:chat-markers:0';

export type ChatMarker = 'received' | 'displayed' | 'acknowledged';
const MARKERS: readonly string[] = ['received', 'displayed', 'acknowledged'];

export interface MarkersOptions {
  /** Add `<markable/>` to outgoing chat and groupchat messages with a body (default true). */
  markable?: boolean;
}

export interface MarkerEvent {
  /** The id of the marked message. */
  id: string;
  marker: ChatMarker;
  from: string;
  to: string;
  /** `carbon-sent`: the user marked it on another device (e.g. read elsewhere). */
  origin: MessageOrigin;
  element: Element;
}

export interface MarkersEvents {
  /** A message arrived that may be marked (§3). */
  markable: { id: string; from: string; origin: MessageOrigin; element: Element };
  /** A chat marker arrived (§4). */
  marker: MarkerEvent;
  received: MarkerEvent;
  displayed: MarkerEvent;
  acknowledged: MarkerEvent;
}

export interface MarkersApi extends Emitter<MarkersEvents> {
  markable: boolean;
  /** Sends a marker for a message we received; does nothing (returns false) if it was not markable (§4.1). */
  mark(message: Element, marker: ChatMarker): Promise<boolean>;
  /** Sends a marker by hand: `id` of the marked message, to its sender. */
  send(
    to: string,
    id: string,
    marker: ChatMarker,
    opts?: { type?: 'chat' | 'groupchat'; thread?: string },
  ): Promise<void>;
}

/** Adds `<markable xmlns='urn:xmpp:chat-markers:0'/>` to a message. */
export function markable(message: Element): Element {
  if (!message.getChild('markable', NS_CHAT_MARKERS))
    message.append(xml('markable', { xmlns: NS_CHAT_MARKERS }));
  return message;
}

/**
 * The id a marker refers to: in a group chat the id the room gave the message (XEP-0359
 * `<stanza-id by=room/>`, XEP-0333 §5), otherwise the message's own id.
 */
export function markerIdOf(message: Element): string | undefined {
  if (message.attr('type') === 'groupchat') {
    const room = tryParseJid(message.attr('from') ?? '')?.bare.toString();
    const sid = message.getChildren('stanza-id', NS.sid).find((s) => s.attr('by') === room);
    if (sid?.attr('id')) return sid.attr('id');
  }
  return message.attr('id');
}

/** XEP-0333 Displayed Markers (read receipts). */
export function markers(options: MarkersOptions = {}): PluginDefinition<MarkersApi> {
  return {
    name: 'markers',
    setup(ctx) {
      const { client } = ctx;
      ctx.addFeature(NS_CHAT_MARKERS);
      const api = new (class extends Emitter<MarkersEvents> implements MarkersApi {
        markable = options.markable ?? true;
        async send(
          to: string,
          id: string,
          marker: ChatMarker,
          opts: { type?: 'chat' | 'groupchat'; thread?: string } = {},
        ) {
          await client.send(
            xml(
              'message',
              { to, type: opts.type ?? 'chat' },
              xml(marker, { xmlns: NS_CHAT_MARKERS, id }),
              opts.thread !== undefined && xml('thread', null, opts.thread),
              // §4.1: markers are stored in archives so every device learns of them.
              xml('store', { xmlns: NS.hints }),
            ),
          );
        }
        async mark(message: Element, marker: ChatMarker) {
          const id = markerIdOf(message);
          const from = message.attr('from');
          if (!message.getChild('markable', NS_CHAT_MARKERS) || !id || !from) return false;
          const groupchat = message.attr('type') === 'groupchat';
          const to = groupchat ? (tryParseJid(from)?.bare.toString() ?? from) : from;
          const thread = message.getChildText('thread');
          await this.send(to, id, marker, {
            type: groupchat ? 'groupchat' : 'chat',
            ...(thread !== undefined && { thread }),
          });
          return true;
        }
      })(ctx.reportError);
      ctx.outgoing((el) => {
        if (!api.markable || el.name !== 'message' || !el.getChild('body')) return;
        const type = el.attr('type') ?? 'normal';
        if (type === 'chat' || type === 'groupchat') markable(el);
      });
      onChatMessage(ctx, (m, origin) => {
        const from = m.attr('from') ?? '';
        for (const c of m.elements()) {
          if (c.xmlns !== NS_CHAT_MARKERS) continue;
          if (c.name === 'markable') {
            const id = markerIdOf(m);
            if (id) api.emit('markable', { id, from, origin, element: m });
          } else if (MARKERS.includes(c.name) && c.attr('id')) {
            const ev: MarkerEvent = {
              id: c.attr('id')!,
              marker: c.name as ChatMarker,
              from,
              to: m.attr('to') ?? '',
              origin,
              element: m,
            };
            api.emit('marker', ev);
            api.emit(ev.marker, ev);
          }
        }
      });
      return api;
    },
  };
}
