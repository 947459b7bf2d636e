import { xml, type Element } from '@natter/xml';
import { NS } from '@natter/protocol';
import { emitterWith, type Emitter } from '../core/emitter.js';
import type { PluginDefinition } from '../core/plugin.js';

export interface StreamManagementOptions {
  /** Ask for resumption (default true). */
  resume?: boolean;
  /** Request an ack after this many unacknowledged stanzas (default 5)... */
  requestEvery?: number;
  /** ...or this many ms after the last stanza sent (default 250). */
  requestDelay?: number;
  /** Preferred resumption window, seconds (the server may choose less). */
  maxResumeSeconds?: number;
}

export interface StreamManagementEvents {
  /** XEP-0198 §3: stream management is on for this session. */
  enabled: { id?: string; resume: boolean; max?: number };
  /** §5: the session was resumed; `resent` stanzas the server had not acknowledged were sent again. */
  resumed: { resent: number };
  /** Resumption was refused; `resent` unacknowledged stanzas were sent again in the new session. */
  'resume-failed': { resent: number; condition?: string };
  /** The server acknowledged a stanza we sent (§4). */
  acked: { stanza: Element };
}

export interface StreamManagementApi extends Emitter<StreamManagementEvents> {
  readonly enabled: boolean;
  /** Stanzas sent but not yet acknowledged by the server. */
  readonly unacked: number;
  /** Stanzas we handled in this session (our `h`). */
  readonly handled: number;
  /** Sends `<r/>` now. */
  requestAck(): void;
}

interface Pending {
  seq: number;
  el: Element;
}

/**
 * XEP-0198 stream management: acknowledgements and session resumption. After a dropped
 * connection, `connect()` (or the reconnect module) resumes the session: stanzas the server had
 * not acknowledged are resent, stanzas we had handled are not delivered again.
 */
export function streamManagement(
  options: StreamManagementOptions = {},
): PluginDefinition<StreamManagementApi> {
  const requestEvery = options.requestEvery ?? 5;
  const requestDelay = options.requestDelay ?? 250;
  return {
    name: 'streamManagement',
    setup(ctx) {
      const { client } = ctx;
      let enabled = false;
      let resumeId: string | undefined;
      let inbound = 0;
      let outbound = 0;
      let queue: Pending[] = [];
      /** Stanzas sent while disconnected with a resumable session, written after resumption. */
      let held: Element[] = [];
      let timer: ReturnType<typeof setTimeout> | undefined;
      let online = false;

      const api = emitterWith<StreamManagementApi>(
        {
          get enabled() {
            return enabled;
          },
          get unacked() {
            return queue.length + held.length;
          },
          get handled() {
            return inbound;
          },
          requestAck() {
            if (enabled && online) ctx.writeRaw(xml('r', { xmlns: NS.sm }));
          },
        },
        ctx.reportError,
      );

      const ack = (h: number) => {
        // h counts modulo 2^32 (§4); our sequence numbers do too.
        while (queue.length > 0 && (h - queue[0]!.seq) >>> 0 < 0x80000000) {
          const p = queue.shift()!;
          api.emit('acked', { stanza: p.el });
        }
      };
      const resend = (stanzas: Element[]) => {
        for (const el of stanzas) ctx.writeRaw(el);
      };
      const scheduleRequest = () => {
        if (queue.length >= requestEvery) {
          if (timer !== undefined) clearTimeout(timer);
          timer = undefined;
          api.requestAck();
          return;
        }
        if (timer === undefined) {
          timer = setTimeout(() => {
            timer = undefined;
            if (queue.length > 0) api.requestAck();
          }, requestDelay);
        }
      };

      // One state machine, two ways to reach the server: nonzas after the stream features
      // (XEP-0198 §3, §5), or inline in a SASL2 login (XEP-0198 §6: `<resume/>` in
      // `<authenticate/>`, `<enable/>` in Bind2's `<bind/>`, their answers in `<success/>`).
      const resumeRequest = () => xml('resume', { xmlns: NS.sm, previd: resumeId, h: inbound >>> 0 });
      const enableRequest = () =>
        xml('enable', {
          xmlns: NS.sm,
          resume: (options.resume ?? true) ? 'true' : undefined,
          max: options.maxResumeSeconds,
        });
      /** §5: `<resumed/>` (true) or `<failed/>`; no answer at all is a failure too. */
      const resumeAnswer = (reply: Element | undefined): boolean => {
        if (reply?.is('resumed', NS.sm)) {
          ack(Number(reply.attr('h') ?? 0));
          const again = [...queue.map((p) => p.el), ...held];
          queue = [];
          held = [];
          outbound = Number(reply.attr('h') ?? 0) >>> 0;
          online = true;
          resend(again);
          api.emit('resumed', { resent: again.length });
          return true;
        }
        const h = reply?.is('failed', NS.sm) ? reply.attr('h') : undefined;
        failResume(
          h === undefined ? undefined : Number(h),
          reply ? reply.elements()[0]?.name : 'unsupported',
        );
        return false;
      };
      /** §3: a new session counts from zero; `<enabled/>` turns acknowledgements on. */
      const enableAnswer = (reply: Element | undefined) => {
        enabled = false;
        inbound = 0;
        outbound = 0;
        queue = [];
        if (!reply?.is('enabled', NS.sm)) return;
        enabled = true;
        const resume = reply.attr('resume') === 'true' || reply.attr('resume') === '1';
        resumeId = resume ? reply.attr('id') : undefined;
        const max = reply.attr('max') === undefined ? undefined : Number(reply.attr('max'));
        api.emit('enabled', max === undefined ? { id: resumeId, resume } : { id: resumeId, resume, max });
      };
      const answerIn = (parent: Element | undefined, ...names: string[]) =>
        parent?.elements().find((el) => el.xmlns === NS.sm && names.includes(el.name));

      /** What this SASL2 login asked inline. */
      let inlineResume = false;
      let inlineEnable = false;
      ctx.hook('sasl2', (req) => {
        inlineResume = resumeId !== undefined && !!req.offer.getChild('sm', NS.sm);
        if (inlineResume) req.authenticate(resumeRequest());
        inlineEnable = !!req.bind2?.includes(NS.sm);
        if (inlineEnable) req.bind(enableRequest());
      });
      ctx.hook('authenticated', (success) => {
        if (inlineResume) return resumeAnswer(answerIn(success, 'resumed', 'failed'));
        // Bound anew without a chance to resume: the old session is gone for us.
        if (resumeId !== undefined && success.getChild('bound', NS.bind2))
          failResume(undefined, 'unsupported');
        return false;
      });

      ctx.hook('beforeBind', async ({ stream, features }) => {
        if (!resumeId) return false;
        if (!features.getChild('sm', NS.sm)) return resumeAnswer(undefined);
        stream.send(resumeRequest());
        return resumeAnswer(await stream.next());
      });

      let toResend: Element[] = [];
      let failCondition: string | undefined;
      function failResume(h: number | undefined, condition?: string) {
        // §5: with h we know what arrived; without it, resend everything (may duplicate).
        if (h !== undefined) ack(h);
        toResend = [...queue.map((p) => p.el), ...held].filter((el) => el.name === 'message');
        failCondition = condition;
        queue = [];
        held = [];
        resumeId = undefined;
        enabled = false;
        inbound = 0;
        outbound = 0;
      }

      ctx.hook('afterBind', async ({ stream, features, bound }) => {
        if (bound) return enableAnswer(inlineEnable ? answerIn(bound, 'enabled', 'failed') : undefined);
        if (!features.getChild('sm', NS.sm)) return enableAnswer(undefined);
        stream.send(enableRequest());
        enableAnswer(await stream.next());
      });

      client.on('online', ({ resumed }) => {
        online = true;
        // Stanzas sent after the resumption failed, while the new session was being bound, were
        // held as for a resumption: they go out now, after those of the lost session.
        // (IQs among them were already failed by the new session: not sent.)
        const late = resumed ? [] : held.filter((el) => el.name !== 'iq');
        if (!resumed) held = [];
        if (!resumed && toResend.length > 0) {
          const again = toResend;
          toResend = [];
          for (const el of again) void client.send(el).catch(() => undefined);
          api.emit(
            'resume-failed',
            failCondition === undefined
              ? { resent: again.length }
              : { resent: again.length, condition: failCondition },
          );
        }
        for (const el of late) void client.send(el).catch(() => undefined);
      });

      ctx.incoming(() => {
        if (enabled) inbound = (inbound + 1) >>> 0;
      }, -1000);

      ctx.hook('nonza', (el) => {
        if (el.xmlns !== NS.sm) return;
        if (el.name === 'r') ctx.writeRaw(xml('a', { xmlns: NS.sm, h: inbound >>> 0 }));
        else if (el.name === 'a') ack(Number(el.attr('h') ?? 0));
      });

      ctx.hook('sent', (el) => {
        if (!enabled) return;
        outbound = (outbound + 1) >>> 0;
        queue.push({ seq: outbound, el });
        scheduleRequest();
      });

      // While disconnected with a resumable session, keep outgoing stanzas for after resumption.
      ctx.outgoing((el) => {
        if (client.status !== 'online' && client.resumable) {
          held.push(el);
          return false;
        }
        return undefined;
      }, 1000);

      ctx.hook('connectionLost', ({ manual }) => {
        online = false;
        if (timer !== undefined) clearTimeout(timer);
        timer = undefined;
        if (manual) {
          enabled = false;
          resumeId = undefined;
          queue = [];
          held = [];
          return false;
        }
        return enabled && resumeId !== undefined;
      });
      return api;
    },
  };
}
