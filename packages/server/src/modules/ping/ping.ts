import { z } from 'zod';
import { xml } from '@natter/xml';
import { NS } from '@natter/protocol';
import { defineModule, type Session } from '../../core/module-api.js';

/**
 * XMPP Ping (XEP-0199) both ways: answers clients' pings, and pings clients that have been
 * silent for `idleMs`, closing the stream of those that do not answer within `timeoutMs`
 * (as Openfire does), so dead TCP connections do not keep users "online".
 */
export default defineModule({
  name: 'ping',
  description: 'Answers pings; pings idle clients and disconnects the ones that stop answering',
  specs: ['XEP-0199'],
  enabledByDefault: true,
  options: z
    .object({
      /** Silence after which the server pings a client; 0 disables server pings. */
      idleMs: z.number().int().min(0).default(120_000),
      /** Time a client has to answer a ping. */
      timeoutMs: z.number().int().min(100).default(30_000),
    })
    .strict()
    .prefault({}),
  setup(ctx) {
    const pong = () => undefined;
    ctx.iq('host', 'get', NS.ping, 'ping', pong);
    ctx.iq('account', 'get', NS.ping, 'ping', pong);
    const { idleMs, timeoutMs } = ctx.options;
    if (idleMs === 0) return;
    const inFlight = new WeakSet<Session>();
    const check = () => {
      const now = Date.now();
      for (const session of ctx.localSessions()) {
        if (session.jid.domain !== ctx.domain || inFlight.has(session) || session.closed) continue;
        const stream = session.stream;
        if (stream.state !== 'bound' || now - stream.lastReceived < idleMs) continue;
        inFlight.add(session);
        const sentAt = now;
        ctx
          .sendIq(
            xml(
              'iq',
              { type: 'get', from: ctx.domain, to: session.jid.toString() },
              xml('ping', { xmlns: NS.ping }),
            ),
            timeoutMs,
          )
          .catch((err: unknown) => {
            // An error reply still proves the client is alive; only silence is fatal.
            if ((err as { code?: string }).code !== 'IQ_TIMEOUT') return;
            if (session.stream === stream && stream.lastReceived <= sentAt) {
              ctx.log.info({ jid: session.jid.toString() }, 'client did not answer ping: disconnecting');
              stream.fail('connection-timeout', 'no answer to ping');
            }
          })
          .finally(() => inFlight.delete(session));
      }
    };
    ctx.every(Math.max(50, Math.min(idleMs / 4, 15_000)), check);
  },
});
