import type { Jid } from '@natter/jid';
import { NS } from '@natter/protocol';
import { Emitter, TimeoutError } from '../core/emitter.js';
import { ClientError } from '../core/errors.js';
import type { PluginDefinition } from '../core/plugin.js';
import { sendPing } from './xep-0199-ping.js';

export interface AutoPingOptions {
  /** Time between pings, ms (default 60 s). */
  interval?: number;
  /** How long to wait for a pong, ms (default 10 s). */
  timeout?: number;
  /** Whom to ping (default: our server). */
  target?: string | Jid;
  /** Skip a ping when a stanza arrived within the interval (default true): traffic already proves the link. */
  onlyWhenIdle?: boolean;
  /** Treat a timeout as a dead connection and drop it, so `reconnect`/stream management take over (default true). */
  dropOnTimeout?: boolean;
  /** Also answer pings, like the `ping` module (default true). */
  respondToPings?: boolean;
}

export interface AutoPingEvents {
  pong: { target: string; rtt: number };
  timeout: { target: string };
}

export interface AutoPingApi extends Emitter<AutoPingEvents> {
  interval: number;
  timeout: number;
  target: string | undefined;
  /** Pings now (outside the schedule). */
  pingNow(): Promise<number | undefined>;
  /** Starts or stops the schedule (it starts by itself when the client goes online). */
  start(): void;
  stop(): void;
  readonly running: boolean;
}

/** XMPPAutoPing's equivalent: pings every `interval`, reports pong/timeout, and a timeout drops the connection. */
export function autoPing(options: AutoPingOptions = {}): PluginDefinition<AutoPingApi> {
  return {
    name: 'autoPing',
    setup(ctx) {
      const { client } = ctx;
      if (options.respondToPings ?? true) {
        ctx.addFeature(NS.ping);
        client.handleIq('get', 'ping', NS.ping, () => undefined);
      }
      let timer: ReturnType<typeof setInterval> | undefined;
      let inFlight = false;
      let lastReceived = 0;
      let enabled = true;
      client.on('stanza', () => (lastReceived = Date.now()));
      const api = new (class extends Emitter<AutoPingEvents> implements AutoPingApi {
        interval = options.interval ?? 60_000;
        timeout = options.timeout ?? 10_000;
        target = options.target === undefined ? undefined : String(options.target);
        get running() {
          return timer !== undefined;
        }
        async pingNow(): Promise<number | undefined> {
          if (inFlight || client.status !== 'online') return undefined;
          inFlight = true;
          const target = this.target ?? client.domain;
          try {
            const rtt = await sendPing(client, this.target, this.timeout);
            this.emit('pong', { target, rtt });
            return rtt;
          } catch (err) {
            if (err instanceof TimeoutError) {
              this.emit('timeout', { target });
              if (options.dropOnTimeout ?? true)
                client.dropConnection(
                  new ClientError('connection-lost', `no pong from ${target} within ${this.timeout} ms`),
                );
            }
            return undefined;
          } finally {
            inFlight = false;
          }
        }
        start(): void {
          enabled = true;
          if (timer !== undefined || client.status !== 'online') return;
          timer = setInterval(() => {
            if ((options.onlyWhenIdle ?? true) && Date.now() - lastReceived < this.interval) return;
            void this.pingNow();
          }, this.interval);
        }
        stop(): void {
          enabled = false;
          halt();
        }
      })(ctx.reportError);
      const halt = () => {
        if (timer !== undefined) clearInterval(timer);
        timer = undefined;
      };
      client.on('online', () => {
        if (enabled) api.start();
      });
      client.on('offline', halt);
      return api;
    },
  };
}
