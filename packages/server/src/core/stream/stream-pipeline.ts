import type { Element } from '@natter/xml';

/** An outbound stage: returns the stanza to write (possibly another one), or null to hold it back. */
export type OutboundFilter = (stanza: Element) => Element | null;

interface Filter {
  name: string;
  order: number;
  fn: OutboundFilter;
}

/**
 * What happens to stanzas on their way through a stream, as named, ordered stages, so that modules
 * do not reach into the stream: outbound filters (CSI holds presence back), counters of what is
 * written and received (stream management), and holders that give back what a filter kept when
 * the stream dies (stream management queues it). The stream runs it; modules add stages.
 */
/** The stages modules registered on one stream: made by the first one (most streams get none). */
interface Stages {
  readonly writtenCounters: Map<string, (stanza: Element) => void>;
  readonly receivedCounters: Map<string, (stanza: Element) => void>;
  readonly holders: Map<string, () => Element[]>;
  readonly tracking: Set<string>;
  readonly busyChecks: Map<string, () => boolean>;
}

/** Shared by every stream without filters or counters (never written to: replaced on change). */
const NONE: readonly never[] = Object.freeze([]);

export class StreamPipeline {
  private filters: readonly Filter[] = NONE;
  /**
   * Counters, holders and checks by stage name. Created on first use: an idle session's stream
   * has none, and idle sessions are counted in KiB (docs/performance.md).
   */
  private stages: Stages | undefined;
  /** Snapshots of the counters, for the per-stanza path (no iterator per stanza). */
  private written_: readonly ((stanza: Element) => void)[] = NONE;
  private received_: readonly ((stanza: Element) => void)[] = NONE;

  private get stages_(): Stages {
    return (this.stages ??= {
      writtenCounters: new Map(),
      receivedCounters: new Map(),
      holders: new Map(),
      tracking: new Set(),
      busyChecks: new Map(),
    });
  }

  /**
   * Adds an outbound filter named `name` (one per name); filters run from the lowest `order` up.
   * Returns a function removing it.
   */
  filter(name: string, fn: OutboundFilter, order = 0): () => void {
    if (this.filters.some((f) => f.name === name)) throw new Error(`outbound stage ${name} exists`);
    const entry = { name, order, fn };
    this.filters = [...this.filters, entry].sort((a, b) => a.order - b.order);
    return () => {
      const rest = this.filters.filter((f) => f !== entry);
      this.filters = rest.length > 0 ? rest : NONE;
    };
  }

  /**
   * Counts stanzas: `written` sees every stanza written to the peer (after the filters, before
   * the bytes go out), `received` every stanza accepted from it. With `tracksDelivery`, the counter
   * accounts for every stanza written (stream management): the stream then no longer keeps its
   * own copy of unsent messages for re-routing. `busy` says the peer is behind (stream management:
   * many stanzas not yet acknowledged): producers of long bursts wait (`sendRoom`).
   */
  count(
    name: string,
    counters: { written?: (stanza: Element) => void; received?: (stanza: Element) => void },
    opts: { tracksDelivery?: boolean; busy?: () => boolean } = {},
  ): () => void {
    const st = this.stages_;
    if (counters.written) st.writtenCounters.set(name, counters.written);
    if (counters.received) st.receivedCounters.set(name, counters.received);
    if (opts.tracksDelivery) st.tracking.add(name);
    if (opts.busy) st.busyChecks.set(name, opts.busy);
    this.snapshot(st);
    return () => {
      st.writtenCounters.delete(name);
      st.receivedCounters.delete(name);
      st.tracking.delete(name);
      st.busyChecks.delete(name);
      this.snapshot(st);
    };
  }

  /** Some stage says the peer is behind: a long burst should wait before writing more. */
  get busy(): boolean {
    const checks = this.stages?.busyChecks;
    if (checks) for (const check of checks.values()) if (check()) return true;
    return false;
  }

  private snapshot(st: Stages): void {
    this.written_ = st.writtenCounters.size > 0 ? [...st.writtenCounters.values()] : NONE;
    this.received_ = st.receivedCounters.size > 0 ? [...st.receivedCounters.values()] : NONE;
  }

  /** A filter that holds stanzas back registers here what it gives up when the stream dies. */
  holder(name: string, giveUp: () => Element[]): () => void {
    const holders = this.stages_.holders;
    holders.set(name, giveUp);
    return () => holders.delete(name);
  }

  /** Some stage accounts for every stanza written (stream management). */
  get tracksDelivery(): boolean {
    return this.stages !== undefined && this.stages.tracking.size > 0;
  }

  // --- run by the stream --------------------------------------------------------------------------

  /** Runs the outbound filters; null when one held the stanza back. */
  outbound(stanza: Element): Element | null {
    const filters = this.filters;
    let el: Element | null = stanza;
    for (let i = 0; i < filters.length && el !== null; i++) el = filters[i]!.fn(el);
    return el;
  }

  written(stanza: Element): void {
    const counters = this.written_;
    for (let i = 0; i < counters.length; i++) counters[i]!(stanza);
  }

  received(stanza: Element): void {
    const counters = this.received_;
    for (let i = 0; i < counters.length; i++) counters[i]!(stanza);
  }

  /** Everything the filters held back, in the holders' order (the stream is dying). */
  takeHeld(): Element[] {
    const out: Element[] = [];
    const holders = this.stages?.holders;
    if (holders) for (const give of holders.values()) out.push(...give());
    return out;
  }
}
