import { xml, type Element } from '@natter/xml';
import { NS } from '@natter/protocol';
import { Emitter } from '../core/emitter.js';
import type { PluginDefinition } from '../core/plugin.js';

export interface ReceiptsOptions {
  /** Add `<request/>` to outgoing chat/normal messages with a body (default true). */
  request?: boolean;
  /** Answer receipt requests automatically (default true); otherwise call `markReceived`. */
  autoAnswer?: boolean;
}

export interface ReceiptsEvents {
  /** A message we sent with a request was delivered (XEP-0184 §5.3). */
  delivered: { id: string; from: string; element: Element };
  /** An incoming message asks for a receipt (emitted whether or not it is answered automatically). */
  requested: { id: string; from: string; element: Element };
}

export interface ReceiptsApi extends Emitter<ReceiptsEvents> {
  request: boolean;
  autoAnswer: boolean;
  /** Ids of sent messages still waiting for a receipt. */
  pending(): string[];
  /** Resolves when the message with this id is acknowledged (or rejects with TimeoutError). */
  waitForDelivery(id: string, timeout?: number): Promise<ReceiptsEvents['delivered']>;
  /** Sends the receipt for a message by hand. */
  markReceived(message: Element): Promise<void>;
}

/** XEP-0184 message delivery receipts (XMPPMessageDeliveryReceipts' equivalent). */
export function receipts(options: ReceiptsOptions = {}): PluginDefinition<ReceiptsApi> {
  return {
    name: 'receipts',
    setup(ctx) {
      const { client } = ctx;
      ctx.addFeature(NS.receipts);
      const pending = new Set<string>();
      const api = new (class extends Emitter<ReceiptsEvents> implements ReceiptsApi {
        request = options.request ?? true;
        autoAnswer = options.autoAnswer ?? true;
        pending() {
          return [...pending];
        }
        waitForDelivery(id: string, timeout?: number) {
          return this.waitFor(
            'delivered',
            timeout === undefined ? { filter: (d) => d.id === id } : { filter: (d) => d.id === id, timeout },
          );
        }
        async markReceived(message: Element) {
          const id = message.attr('id');
          const from = message.attr('from');
          if (!id || !from) return;
          // XEP-0184 §5.1: the receipt echoes the id; it carries no request itself.
          await client.send(
            xml('message', { to: from, id: `r-${id}` }, xml('received', { xmlns: NS.receipts, id })),
          );
        }
      })(ctx.reportError);
      ctx.outgoing((el) => {
        if (!api.request || el.name !== 'message') return;
        const type = el.attr('type') ?? 'normal';
        if (
          type === 'groupchat' ||
          type === 'error' ||
          !el.getChild('body') ||
          el.getChild('received', NS.receipts)
        )
          return;
        if (!el.getChild('request', NS.receipts)) el.append(xml('request', { xmlns: NS.receipts }));
        const id = el.attr('id');
        if (id) pending.add(id);
      });
      client.on('message', (m) => {
        if (m.attr('type') === 'error') return;
        const from = m.attr('from') ?? '';
        const received = m.getChild('received', NS.receipts);
        if (received) {
          const id = received.attr('id') ?? m.attr('id');
          if (id) {
            pending.delete(id);
            api.emit('delivered', { id, from, element: m });
          }
        }
        if (m.getChild('request', NS.receipts) && m.attr('type') !== 'groupchat') {
          const id = m.attr('id');
          if (!id) return;
          api.emit('requested', { id, from, element: m });
          if (api.autoAnswer) api.markReceived(m).catch(() => undefined);
        }
      });
      return api;
    },
  };
}
