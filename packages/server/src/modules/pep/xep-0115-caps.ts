import type { Element } from '@natter/xml';
import { NS } from '@natter/protocol';

/** `<c xmlns='http://jabber.org/protocol/caps' hash node ver/>` from a presence. */
export interface CapsInfo {
  node: string;
  ver: string;
  /** Absent for legacy (pre-1.4) caps, which cannot be verified. */
  hash: string | undefined;
}

export function readCaps(presence: Element): CapsInfo | undefined {
  const c = presence.getChild('c', NS.caps);
  const node = c?.attrs.node;
  const ver = c?.attrs.ver;
  if (!c || !node || !ver) return undefined;
  return { node, ver, hash: c.attrs.hash };
}

export { capsVer } from '../../util/caps.js';

/** Verified feature sets by `hash ver`, least recently used evicted past `max` entries. */
export class CapsCache {
  private readonly map = new Map<string, ReadonlySet<string>>();

  constructor(private readonly max: number) {}

  get(caps: CapsInfo): ReadonlySet<string> | undefined {
    if (caps.hash === undefined) return undefined;
    const key = `${caps.hash} ${caps.ver}`;
    const v = this.map.get(key);
    if (v) {
      this.map.delete(key);
      this.map.set(key, v);
    }
    return v;
  }

  set(caps: CapsInfo, features: ReadonlySet<string>): void {
    if (caps.hash === undefined) return;
    const key = `${caps.hash} ${caps.ver}`;
    this.map.delete(key);
    this.map.set(key, features);
    while (this.map.size > this.max) this.map.delete(this.map.keys().next().value!);
  }

  get size(): number {
    return this.map.size;
  }
}
