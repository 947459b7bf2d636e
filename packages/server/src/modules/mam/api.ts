import type { Element } from '@natter/xml';
import { NS } from '@natter/protocol';

/**
 * XEP-0313 §6.1.1 / XEP-0334: whether a message's content is worth keeping: a body or a `<store/>`
 * hint, unless the sender asked for no (permanent) storage. Archives of every kind decide with it.
 */
export function worthKeeping(stanza: Element): boolean {
  let keep = false;
  for (const c of stanza.children) {
    if (typeof c === 'string') continue;
    if (c.xmlns === NS.hints) {
      if (c.name === 'no-store' || c.name === 'no-permanent-store') return false;
      if (c.name === 'store') keep = true;
    } else if (c.name === 'body' && (c.xmlns === NS.client || c.xmlns === '')) keep = true;
  }
  return keep;
}

/** An archived message as read back: its UID, when it was archived, and the stanza. */
export interface ArchivedMessage {
  id: string;
  timestamp: number;
  stanza: Element;
}

/**
 * What the `mam` module offers other modules of its host (`ctx.use<MamApi>('mam')`): the
 * one-to-one archives' hooks for carbons, and archives of other entities (a MUC room's, XEP-0313
 * §5 "MUC archives") kept in the same tables, with the same quotas, retention and writer thread.
 */
export interface MamApi {
  /** The id under which the sender's archive stored an outgoing message (for carbons). */
  outgoingStanzaId(stanza: Element): { by: string; id: string } | undefined;
  /** Writes queued messages now. */
  flush(): Promise<void>;
  /** Applies the retention limit as of `now`; returns the number of messages removed. */
  purgeExpired(now?: number): Promise<number>;

  /**
   * Archives `stanza` in `owner`'s archive (a room's bare JID), as sent by `from` (an occupant JID,
   * matched by the `with` filter): returns its UID at once, the write follows in the next batch.
   * Undefined when the stanza is larger than an archive may hold.
   */
  archive(owner: string, from: string, stanza: Element): string | undefined;
  /**
   * Runs a XEP-0313 `<query/>` on `owner`'s archive: each `<result/>` element (to be wrapped in a
   * message from the archive's JID) goes to `emit` in order, then the `<fin/>` is returned.
   * Throws the StanzaError to answer with.
   */
  query(owner: string, query: Element, emit: (result: Element) => void): Promise<Element>;
  /** The query form (§4.1.5), for `<query/>` of type get. */
  queryForm(): Element;
  /** The first and last message of `owner`'s archive (XEP-0313 metadata). */
  metadata(owner: string): Promise<Element>;
  /** One message of `owner`'s archive by UID. */
  get(owner: string, id: string): Promise<ArchivedMessage | undefined>;
  /**
   * Replaces a message of `owner`'s archive (a XEP-0424/0425 tombstone keeps the place, the UID
   * and the time). False when there is no such message.
   */
  replace(owner: string, id: string, stanza: Element): Promise<boolean>;
  /** Deletes `owner`'s whole archive (a room destroyed). */
  deleteArchive(owner: string): Promise<void>;
}
