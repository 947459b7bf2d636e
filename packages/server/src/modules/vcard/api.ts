import type { Element } from '@natter/xml';
import type { Jid } from '@natter/jid';

/** XEP-0153 §3.1: the hash of a vCard's photo (for peers that keep vCards of their own: MUC rooms). */
export { photoHash, UNKNOWN_HASH } from './xep-0153-avatar.js';

/**
 * What the vcard module offers its peers (`ctx.use<VcardApi>('vcard')`, with
 * `dependencies: ['vcard']`): an account's stored vCard, its XEP-0153 photo hash, a way to store
 * one, and the owner's own vCard sets to watch (the avatar-conversion module, XEP-0398).
 */
export interface VcardApi {
  /** The stored vCard, or undefined. */
  get(owner: Jid): Promise<Element | undefined>;
  /** XEP-0153 photo hash: '' without a photo, undefined without a vCard. */
  photoHash(owner: Jid): Promise<string | undefined>;
  /**
   * Stores `vcard` as `owner`'s vCard, with the checks of a client's set (size, PHOTO base64),
   * and keeps the hash the server puts in the owner's presence. Throws StanzaError. Watchers are
   * not told: a module that converts from another store does not hear its own writes.
   */
  set(owner: Jid, vcard: Element): Promise<void>;
  /** Largest serialised vCard accepted, in bytes (the `maxBytes` option). */
  readonly maxBytes: number;
  /**
   * Watches the vCards owners set themselves (IQ set): `validate` runs before it is stored and may
   * refuse it (throw a StanzaError: the client gets it, nothing is stored); `changed` runs after it
   * is stored and before the client's result (its failures are logged, never reported). Returns
   * the function that stops watching.
   */
  watch(watcher: VcardWatcher): () => void;
}

export interface VcardWatcher {
  validate?(owner: Jid, vcard: Element): void | Promise<void>;
  /** `hash`: the XEP-0153 photo hash of the stored vCard ('' without a photo). */
  changed?(owner: Jid, vcard: Element, hash: string): void | Promise<void>;
}
