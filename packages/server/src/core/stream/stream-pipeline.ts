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
export class StreamPipeline {
  private filters: Filter[] = [];
  private readonly writtenCounters = new Map<string, (stanza: Element) => void>();
  private readonly receivedCounters = new Map<string, (stanza: Element) => void>();
  private readonly holders = new Map<string, () => Element[]>();
  private readonly tracking = new Set<string>();
  private readonly busyChecks = new Map<string, () => boolean>();
  /** Snapshots of the counters, for the per-stanza path (no iterator per stanza). */
  private written_: ((stanza: Element) => void)[] = [];
  private received_: ((stanza: Element) => void)[] = [];

  /**
   * Adds an outbound filter named `name` (one per name); filters run from the lowest `order` up.
   * Returns a function removing it.
   */
  filter(name: string, fn: OutboundFilter, order = 0): () => void {
    if (this.filters.some((f) => f.name === name)) throw new Error(`outbound stage ${name} exists`);
    const entry = { name, order, fn };
    this.filters = [...this.filters, entry].sort((a, b) => a.order - b.order);
    return () => {
      this.filters = this.filters.filter((f) => f !== entry);
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
    if (counters.written) this.writtenCounters.set(name, counters.written);
    if (counters.received) this.receivedCounters.set(name, counters.received);
    if (opts.tracksDelivery) this.tracking.add(name);
    if (opts.busy) this.busyChecks.set(name, opts.busy);
    this.snapshot();
    return () => {
      this.writtenCounters.delete(name);
      this.receivedCounters.delete(name);
      this.tracking.delete(name);
      this.busyChecks.delete(name);
      this.snapshot();
    };
  }

  /** Some stage says the peer is behind: a long burst should wait before writing more. */
  get busy(): boolean {
    for (const check of this.busyChecks.values()) if (check()) return true;
    return false;
  }

  private snapshot(): void {
    this.written_ = [...this.writtenCounters.values()];
    this.received_ = [...this.receivedCounters.values()];
  }

  /** A filter that holds stanzas back registers here what it gives up when the stream dies. */
  holder(name: string, giveUp: () => Element[]): () => void {
    this.holders.set(name, giveUp);
    return () => this.holders.delete(name);
  }

  /** Some stage accounts for every stanza written (stream management). */
  get tracksDelivery(): boolean {
    return this.tracking.size > 0;
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
    for (const give of this.holders.values()) out.push(...give());
    return out;
  }
}
