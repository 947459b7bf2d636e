/**
 * Shared measurement for `chat` and `muc`: a closed-loop phase finds saturation (every worker keeps
 * a fixed number of messages in flight and sends a new one as soon as one is fully delivered), then
 * an open-loop phase sends at 50 % of that rate to measure latency without queueing. Each phase ends
 * with a drain period; what has not arrived by then is lost.
 */
import { Histogram } from '../engine/histogram.js';
import type { WorkerPool } from '../engine/pool.js';
import type { ProcWatch } from '../engine/proc.js';
import type { Reply, TrafficSpec } from '../engine/protocol.js';
import type { ScenarioContext } from './context.js';

export interface PhaseResult {
  sent: number;
  expected: number;
  received: number;
  receivedInPhase: number;
  lost: number;
  unexpected: number;
  wallS: number;
  serverCpuS: number;
  /** The part of `serverCpuS` used outside the server's process tree (PostgreSQL backends). */
  extraCpuS: number;
  genCpuS: number;
  hist: Histogram;
  /** Messages sent after `steadyAfterMs`, when the spec asked for it. */
  histSteady: Histogram;
  errors: string[];
}

export async function phase(
  ctx: ScenarioContext,
  pool: WorkerPool,
  watch: ProcWatch,
  spec: Omit<TrafficSpec, 'phaseTag'>,
  perWorker: (w: number) => Partial<TrafficSpec> = () => ({}),
): Promise<PhaseResult> {
  const phaseTag = ++ctx.phaseSeq.n;
  const cpu0 = await watch.cpuParts();
  const t0 = performance.now();
  const replies: Reply[] = await pool.all(
    (w) => ({ cmd: 'traffic', spec: { ...spec, ...perWorker(w), phaseTag } }),
    spec.durationMs + spec.drainMs + 60_000,
  );
  const cpu1 = await watch.cpuParts();
  const serverCpuS = cpu1.total - cpu0.total;
  // The phase proper ends when the sending stops; the drain is not part of the rate.
  const hist = new Histogram();
  const r: PhaseResult = {
    sent: 0,
    expected: 0,
    received: 0,
    receivedInPhase: 0,
    lost: 0,
    unexpected: 0,
    wallS: 0,
    serverCpuS,
    extraCpuS: cpu1.extra - cpu0.extra,
    genCpuS: 0,
    hist,
    histSteady: new Histogram(),
    errors: [],
  };
  for (const x of replies) {
    if (typeof x['error'] === 'string') r.errors.push(x['error'] as string);
    r.errors.push(...((x['errors'] as string[]) ?? []));
    r.sent += (x['sent'] as number) ?? 0;
    r.expected += (x['expected'] as number) ?? 0;
    r.received += (x['received'] as number) ?? 0;
    r.receivedInPhase += (x['receivedInPhase'] as number) ?? 0;
    r.lost += (x['lost'] as number) ?? 0;
    r.unexpected += (x['unexpected'] as number) ?? 0;
    r.wallS = Math.max(r.wallS, ((x['elapsedMs'] as number) ?? 0) / 1000);
    r.genCpuS += ((x['phaseCpuUs'] as number) ?? 0) / 1e6;
    if (x['hist']) hist.merge(x['hist'] as { counts: number[]; max: number });
    if (x['histSteady']) r.histSteady.merge(x['histSteady'] as { counts: number[]; max: number });
  }
  void t0;
  if (r.errors.length > 0) throw new Error(`traffic phase failed: ${r.errors.slice(0, 3).join(' | ')}`);
  return r;
}
