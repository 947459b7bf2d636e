import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** Which stream a stanza came in on or went out on. */
export type StreamKind = 'c2s' | 'component' | 's2s-in' | 's2s-out';

const STANZAS = new Set(['message', 'presence', 'iq']);

/** SASL mechanisms counted by name; anything else a client names is counted as 'other' (bounded labels). */
const MECHANISMS = new Set([
  'SCRAM-SHA-256-PLUS',
  'SCRAM-SHA-1-PLUS',
  'SCRAM-SHA-256',
  'SCRAM-SHA-1',
  'PLAIN',
  'EXTERNAL',
  'HT-SHA-256-NONE',
  'HT-SHA-256-UNIQ',
  'HT-SHA-256-ENDP',
  'HT-SHA-256-EXPR',
]);

/** RFC 6120 §6.5 SASL failure conditions. */
const CONDITIONS = new Set([
  'aborted',
  'account-disabled',
  'credentials-expired',
  'encryption-required',
  'incorrect-encoding',
  'invalid-authzid',
  'invalid-mechanism',
  'malformed-request',
  'mechanism-too-weak',
  'not-authorized',
  'temporary-auth-failure',
]);

/** What the gauges read at each scrape (the core's live state). */
export interface MetricsSource {
  sessions(): { live: number; hibernated: number };
  streams(): Record<'c2s-negotiating' | 'component' | 's2s-in' | 's2s-out', number>;
}

/**
 * The server's Prometheus metrics (OpenMetrics text on the admin listener's `/metrics`), one registry
 * per server process, every name prefixed `natter_`. The per-stanza paths only add to counters and
 * histograms bound once (no label lookup per stanza); gauges are read from the core at scrape time.
 */
export class ServerMetrics {
  readonly registry = new Registry();
  private readonly stanzas: Counter<'direction' | 'stream' | 'kind'>;
  private readonly routing: Histogram;
  private readonly storage: Histogram<'result'>;
  private readonly auth: Counter<'result' | 'mechanism' | 'condition'>;
  private readonly throttles: Counter<'limit'>;

  constructor(source: MetricsSource, labels: Record<string, string> = {}) {
    const registers = [this.registry];
    this.registry.setDefaultLabels(labels);
    collectDefaultMetrics({ register: this.registry, prefix: 'natter_' });
    this.stanzas = new Counter({
      name: 'natter_stanzas_total',
      help: 'Stanzas received from (in) and written to (out) streams, by stream and stanza kind',
      labelNames: ['direction', 'stream', 'kind'],
      registers,
    });
    this.routing = new Histogram({
      name: 'natter_routing_seconds',
      help: 'Time to route a stanza received from a stream, hooks and storage included, until handed to its recipients',
      buckets: [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
      registers,
    });
    this.storage = new Histogram({
      name: 'natter_storage_query_seconds',
      help: 'Duration of database queries made by the routing thread (the archive writer thread is not included)',
      labelNames: ['result'],
      buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5],
      registers,
    });
    this.auth = new Counter({
      name: 'natter_auth_total',
      help: 'Client authentications by result, SASL mechanism and failure condition',
      labelNames: ['result', 'mechanism', 'condition'],
      registers,
    });
    this.throttles = new Counter({
      name: 'natter_throttled_total',
      help: 'Times a limit held back or refused a peer (rate limits, caps, floods)',
      labelNames: ['limit'],
      registers,
    });
    new Gauge({
      name: 'natter_sessions',
      help: 'Client sessions held by this process, live or hibernated (XEP-0198)',
      labelNames: ['state'],
      registers,
      collect() {
        const s = source.sessions();
        this.set({ state: 'live' }, s.live);
        this.set({ state: 'hibernated' }, s.hibernated);
      },
    });
    new Gauge({
      name: 'natter_streams',
      help: 'Open streams that are not client sessions: client streams still negotiating, components, server-to-server',
      labelNames: ['kind'],
      registers,
      collect() {
        for (const [kind, n] of Object.entries(source.streams())) this.set({ kind }, n);
      },
    });
  }

  /** Bound counters by direction, stream and stanza name: plain property reads on the per-stanza path. */
  private readonly table = {
    in: {} as Record<string, Record<string, Counter.Internal>>,
    out: {} as Record<string, Record<string, Counter.Internal>>,
  };

  private counter(direction: 'in' | 'out', stream: StreamKind, kind: string): Counter.Internal {
    const byStream = (this.table[direction][stream] ??= {});
    return (byStream[kind] ??= this.stanzas.labels(direction, stream, kind));
  }

  /** A stanza (message, presence or iq) received from a stream. */
  stanzaIn(stream: StreamKind, name: string): void {
    const c = this.table.in[stream]?.[name];
    if (c) c.inc();
    else if (STANZAS.has(name)) this.counter('in', stream, name).inc();
  }

  /** A stanza written to a stream. */
  stanzaOut(stream: StreamKind, name: string): void {
    const c = this.table.out[stream]?.[name];
    if (c) c.inc();
    else if (STANZAS.has(name)) this.counter('out', stream, name).inc();
  }

  /** Routing of one stanza from a stream took `ms` milliseconds. */
  routed(ms: number): void {
    this.routing.observe(ms / 1000);
  }

  query(ms: number, failed: boolean): void {
    this.storage.observe({ result: failed ? 'error' : 'ok' }, ms / 1000);
  }

  authSucceeded(mechanism: string): void {
    this.auth.inc({
      result: 'success',
      mechanism: MECHANISMS.has(mechanism) ? mechanism : 'other',
      condition: '',
    });
  }

  authFailed(mechanism: string, condition: string): void {
    this.auth.inc({
      result: 'failure',
      mechanism: MECHANISMS.has(mechanism) ? mechanism : 'other',
      condition: CONDITIONS.has(condition) ? condition : 'other',
    });
  }

  /** A limit acted (`limit` is one of a fixed set named by the limits module). */
  throttled(limit: string): void {
    this.throttles.inc({ limit });
  }

  /** Set in a worker of `natter serve --workers`: gathers the whole machine's metrics. */
  private machine: (() => Promise<string>) | undefined;

  /**
   * `natter serve --workers N`: `/metrics` answers with what `gather` returns (every worker's
   * metrics and the primary's, cluster/machine-metrics.ts) instead of this process's alone.
   */
  gatherWith(gather: () => Promise<string>): void {
    this.machine = gather;
  }

  /** The text Prometheus scrapes, and its content type: the machine's with `--workers`. */
  async render(): Promise<{ contentType: string; body: string }> {
    const body = this.machine ? await this.machine() : await this.registry.metrics();
    return { contentType: this.registry.contentType, body };
  }
}
