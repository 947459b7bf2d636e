import { xml } from '@natter/xml';
import { NS } from '@natter/protocol';
import { Emitter } from '../core/emitter.js';
import type { PluginDefinition } from '../core/plugin.js';

export type ClientState = 'active' | 'inactive';

/**
 * Where the app's foreground state comes from. The plugin reads `current()` at each new session
 * and follows `subscribe`. Browsers: `documentVisibility()`. React Native (no import of
 * react-native here), for example:
 *
 * ```ts
 * import { AppState } from 'react-native';
 * const appState: VisibilitySource = {
 *   current: () => (AppState.currentState === 'active' ? 'active' : 'inactive'),
 *   subscribe: (cb) => {
 *     const sub = AppState.addEventListener('change', (s) => cb(s === 'active' ? 'active' : 'inactive'));
 *     return () => sub.remove();
 *   },
 * };
 * ```
 */
export interface VisibilitySource {
  current(): ClientState;
  /** Calls `listener` on every change; returns a function that stops it. */
  subscribe(listener: (state: ClientState) => void): () => void;
}

/** Page visibility (`document.visibilityState` and `visibilitychange`) as a CSI source; always active without a `document`. */
export function documentVisibility(doc?: {
  visibilityState: string;
  addEventListener(type: 'visibilitychange', fn: () => void): void;
  removeEventListener(type: 'visibilitychange', fn: () => void): void;
}): VisibilitySource {
  const d =
    doc ?? (globalThis as { document?: Parameters<typeof documentVisibility>[0] }).document ?? undefined;
  const read = (): ClientState => (d && d.visibilityState === 'hidden' ? 'inactive' : 'active');
  return {
    current: read,
    subscribe(listener) {
      if (!d) return () => undefined;
      const fn = () => listener(read());
      d.addEventListener('visibilitychange', fn);
      return () => d.removeEventListener('visibilitychange', fn);
    },
  };
}

export interface CsiOptions {
  /**
   * Follow the app's foreground state: `'document'` for page visibility in browsers, or any
   * `VisibilitySource` (React Native's `AppState`, a desktop shell's window focus, …).
   */
  visibility?: 'document' | VisibilitySource;
}

export interface CsiEvents {
  /** A state was sent to the server. */
  state: ClientState;
}

export interface CsiApi extends Emitter<CsiEvents> {
  /** The server advertised `urn:xmpp:csi:0` on the current (or last) stream. */
  readonly supported: boolean;
  /** The state the user last asked for (sent now, or at the next session when offline). */
  readonly state: ClientState;
  /** Tells the server the user is looking at the app (XEP-0352 §3); false when the server does not support CSI. */
  active(): boolean;
  /** Tells the server the app is in the background: it may hold back unimportant traffic (§3). */
  inactive(): boolean;
  /** Stops following the visibility source. */
  stopFollowing(): void;
}

/**
 * XEP-0352 Client State Indication. States are only sent when the server announced the stream
 * feature; a new session (not a resumed one, which keeps its state) starts active on the server,
 * so the plugin sends `<inactive/>` again when that is the current state.
 */
export function csi(options: CsiOptions = {}): PluginDefinition<CsiApi> {
  return {
    name: 'csi',
    setup(ctx) {
      const { client } = ctx;
      const source = options.visibility === 'document' ? documentVisibility() : options.visibility;
      let supported = false;
      let state: ClientState = source?.current() ?? 'active';
      /** What the server believes for this stream. */
      let serverState: ClientState = 'active';
      const flush = (): boolean => {
        if (!supported || client.status !== 'online') return false;
        if (serverState === state) return true;
        ctx.writeRaw(xml(state, { xmlns: NS.csi }));
        serverState = state;
        api.emit('state', state);
        return true;
      };
      const set = (s: ClientState): boolean => {
        state = s;
        return flush();
      };
      let following = !!source;
      let unsubscribe = source?.subscribe((s) => set(s)) ?? (() => undefined);
      const api = new (class extends Emitter<CsiEvents> implements CsiApi {
        get supported() {
          return supported;
        }
        get state() {
          return state;
        }
        active() {
          return set('active');
        }
        inactive() {
          return set('inactive');
        }
        stopFollowing() {
          following = false;
          unsubscribe();
          unsubscribe = () => undefined;
        }
      })(ctx.reportError);

      // The post-authentication features tell whether the server supports CSI (§2), on a new
      // session and on a resumption alike; with Bind2 (XEP-0386 §2.3) its inline features do, and
      // a new session starts inactive right away when the app is in the background.
      let inactiveInline = false;
      ctx.hook('sasl2', (req) => {
        if (!req.bind2) return;
        supported = req.bind2.includes(NS.csi);
        if (source && following) state = source.current();
        inactiveInline = supported && state === 'inactive';
        if (inactiveInline) req.bind(xml('inactive', { xmlns: NS.csi }));
      });
      ctx.hook('beforeBind', ({ features }) => {
        supported = !!features.getChild('csi', NS.csi);
        return false;
      });
      ctx.hook('afterBind', ({ bound }) => {
        serverState = bound && inactiveInline ? 'inactive' : 'active';
        if (serverState === 'inactive') api.emit('state', serverState);
      });
      client.on('online', () => {
        if (source && following) state = source.current();
        flush();
      });
      return api;
    },
  };
}
