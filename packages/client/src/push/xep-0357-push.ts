import { xml } from '@natter/xml';
import type { Jid } from '@natter/jid';
import { NS, buildForm } from '@natter/protocol';
import type { PluginDefinition } from '../core/plugin.js';

export const NS_PUSH = 'urn:xmpp:push:0';
const PUBLISH_OPTIONS = 'http://jabber.org/protocol/pubsub#publish-options';

export interface PushEnableOptions {
  /** The app server's JID (XEP-0357 §4: the XMPP push service that talks to APNs/FCM). */
  jid: string | Jid;
  /** The node the app server gave this device. */
  node: string;
  /** Shorthand for the publish-options field `secret` (XEP-0357 §5). */
  secret?: string;
  /** Other publish-options fields the app server wants in each notification. */
  form?: Record<string, string | string[]>;
}

export type PushErrorCode = 'unsupported';

export class PushError extends Error {
  override readonly name = 'PushError';
  constructor(
    readonly code: PushErrorCode,
    message: string,
  ) {
    super(message);
  }
}

export interface PushOptions {
  /**
   * Check that the account announces `urn:xmpp:push:0` (disco#info on its bare JID) before
   * enabling, and fail with PushError `unsupported` otherwise (default true).
   */
  checkSupport?: boolean;
}

export interface PushApi {
  /** Whether the account's server supports XEP-0357 (disco#info on our bare JID; cached per session). */
  supported(): Promise<boolean>;
  /** Registers an app server for this account (XEP-0357 §5); StanzaError if the server refuses. */
  enable(opts: PushEnableOptions): Promise<void>;
  /** Removes one registration (`node`), or every registration of that app server (no `node`) (§6). */
  disable(opts: { jid: string | Jid; node?: string }): Promise<void>;
}

/** XEP-0357 push notifications, the client's side: register an app server with our server. */
export function push(options: PushOptions = {}): PluginDefinition<PushApi> {
  return {
    name: 'push',
    setup(ctx) {
      const { client } = ctx;
      let support: Promise<boolean> | undefined;
      client.on('online', ({ resumed }) => {
        if (!resumed) support = undefined;
      });
      const api: PushApi = {
        supported() {
          if (!support) {
            const p = client
              .request('get', client.account, xml('query', { xmlns: NS.discoInfo }))
              .then((q) =>
                (q?.getChildren('feature', NS.discoInfo) ?? []).some((f) => f.attr('var') === NS_PUSH),
              );
            support = p;
            p.catch(() => {
              if (support === p) support = undefined;
            });
          }
          return support;
        },
        async enable(opts: PushEnableOptions) {
          if (!opts.node) throw new TypeError('push.enable(): a node is needed');
          if ((options.checkSupport ?? true) && !(await api.supported()))
            throw new PushError(
              'unsupported',
              `${client.account.toString()} does not announce ${NS_PUSH}: the server has no push notifications`,
            );
          const fields = Object.entries(opts.form ?? {}).map(([k, v]) => ({
            var: k,
            values: Array.isArray(v) ? v : [v],
          }));
          if (opts.secret !== undefined) fields.push({ var: 'secret', values: [opts.secret] });
          await client.request(
            'set',
            undefined,
            xml(
              'enable',
              { xmlns: NS_PUSH, jid: String(opts.jid), node: opts.node },
              fields.length > 0 && buildForm({ type: 'submit', formType: PUBLISH_OPTIONS, fields }),
            ),
          );
        },
        async disable(opts: { jid: string | Jid; node?: string }) {
          await client.request(
            'set',
            undefined,
            xml('disable', { xmlns: NS_PUSH, jid: String(opts.jid), node: opts.node || undefined }),
          );
        },
      };
      return api;
    },
  };
}
