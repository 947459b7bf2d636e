import { xml, type Element } from '@natter/xml';
import { tryParseJid } from '@natter/jid';
import { NS } from '@natter/protocol';
import { Emitter } from '../core/emitter.js';
import type { PluginDefinition } from '../core/plugin.js';

export interface CarbonsOptions {
  /**
   * Enable carbons on every new session (default true, like XMPPFramework's
   * `autoEnableMessageCarbons`): at login and after a reconnect that was not a stream management
   * resumption (a resumed session keeps its carbons on the server).
   */
  autoEnable?: boolean;
}

/** One message copied to this client (XEP-0280 §7, §8), unwrapped. */
export interface Carbon {
  /** The original message (the `<message/>` inside `<forwarded/>`). */
  message: Element;
  /**
   * The other device of the account: for a `received` copy the resource the original went to
   * (its `to`, a bare JID when it was sent to the account), for a `sent` copy the resource that
   * sent it (its `from`).
   */
  device: string;
  /** The peer of the conversation: the sender of a received message, the recipient of a sent one. */
  peer: string;
  /** The wrapper stanza as it arrived. */
  element: Element;
}

export interface CarbonsEvents {
  /** A message one of our other devices received (XEP-0280 §7). */
  received: Carbon;
  /** A message one of our other devices sent (XEP-0280 §8): show it as the user's own. */
  sent: Carbon;
  /** Carbons were enabled on the server for this session. */
  enabled: void;
  /** Carbons were disabled on the server for this session. */
  disabled: void;
}

export interface CarbonsApi extends Emitter<CarbonsEvents> {
  /** True while the server has carbons enabled for this session (as far as we know). */
  readonly enabled: boolean;
  /** Asks the server to enable carbons (XEP-0280 §4); new sessions enable them again. */
  enable(): Promise<void>;
  /** Asks the server to disable carbons (XEP-0280 §5); new sessions keep them off. */
  disable(): Promise<void>;
  /** Adds `<private xmlns='urn:xmpp:carbons:2'/>` and `<no-copy xmlns='urn:xmpp:hints'/>` (§6): no carbon copies of this message. */
  markPrivate(message: Element): Element;
  /** True when the message asks not to be copied (`<private/>` or `<no-copy/>`). */
  isPrivate(message: Element): boolean;
}

/** `<private xmlns='urn:xmpp:carbons:2'/>` (XEP-0280 §6). */
export function carbonsPrivate(): Element {
  return xml('private', { xmlns: NS.carbons });
}

/** `<no-copy xmlns='urn:xmpp:hints'/>` (XEP-0334 §4.2). */
export function noCopy(): Element {
  return xml('no-copy', { xmlns: NS.hints });
}

/**
 * XEP-0280 Message Carbons (XMPPMessageCarbons' equivalent): keeps every client of an account
 * in both sides of its conversations. Copies are accepted only from the account's own bare JID
 * (§11); a forged copy from anyone else is ignored.
 */
export function carbons(options: CarbonsOptions = {}): PluginDefinition<CarbonsApi> {
  return {
    name: 'carbons',
    setup(ctx) {
      const { client } = ctx;
      /** What the user wants for new sessions. */
      let wanted = options.autoEnable ?? true;
      let enabled = false;
      const toggle = async (on: boolean) => {
        await client.iq(xml('iq', { type: 'set' }, xml(on ? 'enable' : 'disable', { xmlns: NS.carbons })));
        enabled = on;
        if (on) api.emit('enabled', undefined);
        else api.emit('disabled', undefined);
      };
      const api = new (class extends Emitter<CarbonsEvents> implements CarbonsApi {
        get enabled() {
          return enabled;
        }
        async enable() {
          wanted = true;
          await toggle(true);
        }
        async disable() {
          wanted = false;
          await toggle(false);
        }
        markPrivate(message: Element) {
          if (!message.getChild('private', NS.carbons)) message.append(carbonsPrivate());
          if (!message.getChild('no-copy', NS.hints)) message.append(noCopy());
          return message;
        }
        isPrivate(message: Element) {
          return !!(message.getChild('private', NS.carbons) || message.getChild('no-copy', NS.hints));
        }
      })(ctx.reportError);

      // XEP-0386 §2.3: enabled inside Bind2's `<bind/>` when the server offers it, without an IQ.
      let askedInline = false;
      let enabledInline = false;
      ctx.hook('sasl2', (req) => {
        askedInline = wanted && !!req.bind2?.includes(NS.carbons);
        if (askedInline) req.bind(xml('enable', { xmlns: NS.carbons }));
      });
      ctx.hook('afterBind', ({ bound }) => {
        enabledInline = askedInline && bound !== undefined;
      });
      client.on('online', ({ resumed }) => {
        if (resumed) return; // the server kept the session, carbons included
        enabled = enabledInline;
        if (enabled) api.emit('enabled', undefined);
        else if (wanted) toggle(true).catch((err: unknown) => ctx.reportError(err as Error));
      });
      client.on('offline', ({ resumable }) => {
        if (!resumable) enabled = false;
      });

      client.on('message', (m) => {
        const wrapper = m.getChild('received', NS.carbons) ?? m.getChild('sent', NS.carbons);
        if (!wrapper) return;
        // §11: only our own server, in the name of our bare JID, may send us copies; anything else
        // is someone trying to put words in our mouth (or a contact's).
        const from = tryParseJid(m.attr('from') ?? client.account.toString());
        if (!from || from.resource !== '' || !from.bare.equals(client.account)) return;
        const inner = wrapper.getChild('forwarded', NS.forward)?.getChild('message');
        if (!inner) return;
        if (wrapper.name === 'received') {
          api.emit('received', {
            message: inner,
            device: inner.attr('to') ?? client.account.toString(),
            peer: inner.attr('from') ?? '',
            element: m,
          });
        } else {
          api.emit('sent', {
            message: inner,
            device: inner.attr('from') ?? client.account.toString(),
            peer: inner.attr('to') ?? '',
            element: m,
          });
        }
      });
      return api;
    },
  };
}
