import { Emitter } from '../core/emitter.js';
import { AuthenticationError, StreamError } from '../core/errors.js';
import type { PluginDefinition } from '../core/plugin.js';

export interface ReconnectOptions {
  /** Delay before the first attempt, ms (default 1 s). */
  initialDelay?: number;
  /** Longest delay, ms (default 60 s). */
  maxDelay?: number;
  /** Growth per attempt (default 2). */
  factor?: number;
  /** Fraction of each delay that is random (default 0.5: a delay d becomes d·(0.5…1)). */
  jitter?: number;
  /** Give up after this many failed attempts (default: never). */
  maxAttempts?: number;
  /** After reconnecting into a new session (not a resumed one), send our last broadcast presence again (default true). */
  restorePresence?: boolean;
}

export interface ReconnectEvents {
  /** An attempt is planned after `delay` ms. */
  scheduled: { attempt: number; delay: number };
  /** An attempt failed; another follows unless it was an authentication failure. */
  failed: { attempt: number; error: Error };
  reconnected: { attempts: number; resumed: boolean };
  /** Reconnection stopped: manual disconnect, authentication failure, resource conflict, or too many attempts. */
  stopped: { reason: 'manual' | 'auth-failed' | 'max-attempts' | 'disabled' | 'conflict' };
}

export interface ReconnectApi extends Emitter<ReconnectEvents> {
  enabled: boolean;
  /** Failed attempts since the connection was lost. */
  readonly attempts: number;
  /** The delay before attempt `n` (1-based), without jitter. */
  delayFor(attempt: number): number;
  /** Cancels a planned attempt. */
  cancel(): void;
}

/** XMPPReconnect's equivalent: reconnects after a lost connection with exponential backoff and jitter. */
export function reconnect(options: ReconnectOptions = {}): PluginDefinition<ReconnectApi> {
  const initial = options.initialDelay ?? 1000;
  const max = options.maxDelay ?? 60_000;
  const factor = options.factor ?? 2;
  const jitter = Math.min(1, Math.max(0, options.jitter ?? 0.5));
  return {
    name: 'reconnect',
    setup(ctx) {
      const { client } = ctx;
      let timer: ReturnType<typeof setTimeout> | undefined;
      let attempts = 0;
      const api = new (class extends Emitter<ReconnectEvents> implements ReconnectApi {
        enabled = true;
        get attempts() {
          return attempts;
        }
        delayFor(attempt: number): number {
          return Math.min(max, initial * factor ** Math.max(0, attempt - 1));
        }
        cancel(): void {
          if (timer !== undefined) clearTimeout(timer);
          timer = undefined;
        }
      })(ctx.reportError);
      const schedule = () => {
        if (!api.enabled) {
          api.emit('stopped', { reason: 'disabled' });
          return;
        }
        if (options.maxAttempts !== undefined && attempts >= options.maxAttempts) {
          api.emit('stopped', { reason: 'max-attempts' });
          return;
        }
        const attempt = attempts + 1;
        const base = api.delayFor(attempt);
        const delay = Math.round(base * (1 - jitter * Math.random()));
        api.cancel();
        api.emit('scheduled', { attempt, delay });
        timer = setTimeout(() => {
          timer = undefined;
          client.connect().then(
            () => {
              /* 'online' resets the counter */
            },
            (error: Error) => {
              attempts = attempt;
              api.emit('failed', { attempt, error });
              if (error instanceof AuthenticationError) api.emit('stopped', { reason: 'auth-failed' });
              else if (client.status === 'offline' && timer === undefined && !manual) schedule();
            },
          );
        }, delay);
      };
      let manual = false;
      let reconnecting = false;
      ctx.hook('connectionLost', ({ manual: m }) => {
        if (m) {
          manual = true;
          if (timer !== undefined || reconnecting) api.emit('stopped', { reason: 'manual' });
          reconnecting = false;
          api.cancel();
        }
      });
      let lastPresence: import('@natter/xml').Element | undefined;
      client.on('sent', (el) => {
        if (el.name === 'presence' && el.attr('to') === undefined)
          lastPresence = el.attr('type') === 'unavailable' ? undefined : el;
      });
      client.on('online', ({ resumed }) => {
        if (reconnecting && !resumed && lastPresence && (options.restorePresence ?? true)) {
          const again = lastPresence.clone();
          again.setAttr('id', undefined);
          again.removeChildren('c', 'http://jabber.org/protocol/caps');
          client.send(again).catch(() => undefined);
        }
        if (reconnecting) api.emit('reconnected', { attempts: attempts + 1, resumed });
        reconnecting = false;
        manual = false;
        attempts = 0;
      });
      client.on('offline', ({ manual: m, error }) => {
        if (m || manual) return;
        // RFC 6120 §4.9.3.3: another client logged in with our resource; reconnecting would evict it in turn.
        if (error instanceof StreamError && error.condition === 'conflict') {
          api.emit('stopped', { reason: 'conflict' });
          return;
        }
        reconnecting = true;
        schedule();
      });
      return api;
    },
  };
}
