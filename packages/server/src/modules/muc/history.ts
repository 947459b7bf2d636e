import type { Element } from '@natter/xml';
import { NS, parseDateTime } from '@natter/protocol';

/** One groupchat message kept for newcomers: the stanza as broadcast (no `to`), and when. */
export interface HistoryEntry {
  stanza: Element;
  at: number;
  /** Serialized length, computed on demand (only `maxchars` requests need it). */
  chars?: number;
}

/** XEP-0045 §7.2 (managing discussion history): limits from `<x xmlns='…muc'><history/></x>`. */
export interface HistoryRequest {
  maxchars?: number;
  maxstanzas?: number;
  seconds?: number;
  since?: number;
}

function nonNegative(v: string | undefined): number | undefined {
  if (v === undefined || !/^\s*\d{1,12}\s*$/.test(v)) return undefined;
  return Number(v);
}

export function parseHistoryRequest(mucX: Element | undefined): HistoryRequest {
  const h = mucX?.getChild('history', NS.muc);
  if (!h) return {};
  return {
    maxchars: nonNegative(h.attrs.maxchars),
    maxstanzas: nonNegative(h.attrs.maxstanzas),
    seconds: nonNegative(h.attrs.seconds),
    since: parseDateTime(h.attrs.since)?.getTime(),
  };
}

/** A bounded buffer of the last messages of a room (oldest first). */
export class History {
  private entries: HistoryEntry[] = [];

  constructor(public limit: number) {}

  get size(): number {
    return this.entries.length;
  }

  add(stanza: Element, at = Date.now()): void {
    if (this.limit <= 0) return;
    this.entries.push({ stanza, at });
    if (this.entries.length > this.limit) this.entries.splice(0, this.entries.length - this.limit);
  }

  /** Shrinks to a new limit. */
  setLimit(limit: number): void {
    this.limit = limit;
    if (this.entries.length > limit) this.entries.splice(0, this.entries.length - limit);
  }

  clear(): void {
    this.entries = [];
  }

  /** Every entry, oldest first (a room handed to another node of a cluster). */
  all(): readonly HistoryEntry[] {
    return this.entries;
  }

  find(pred: (e: HistoryEntry) => boolean): HistoryEntry | undefined {
    return this.entries.find(pred);
  }

  /** Takes an entry out (a retracted message is not sent to newcomers); false when it is not here. */
  remove(entry: HistoryEntry): boolean {
    const i = this.entries.indexOf(entry);
    if (i < 0) return false;
    this.entries.splice(i, 1);
    return true;
  }

  /**
   * The entries a newcomer gets: the most recent ones satisfying every limit of the request
   * (maxchars counts the XML characters of the messages as sent).
   */
  select(req: HistoryRequest, now = Date.now()): HistoryEntry[] {
    if (req.maxstanzas === 0 || req.maxchars === 0) return [];
    const oldest = Math.max(
      req.seconds !== undefined ? now - req.seconds * 1000 : -Infinity,
      req.since ?? -Infinity,
    );
    let chars = 0;
    let start = this.entries.length;
    for (let i = this.entries.length - 1; i >= 0; i--) {
      const e = this.entries[i]!;
      if (e.at < oldest) break;
      if (req.maxstanzas !== undefined && this.entries.length - i > req.maxstanzas) break;
      if (req.maxchars !== undefined) {
        e.chars ??= e.stanza.toString().length;
        chars += e.chars;
        if (chars > req.maxchars) break;
      }
      start = i;
    }
    return this.entries.slice(start);
  }
}
