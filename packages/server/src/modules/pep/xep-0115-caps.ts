import { createHash } from 'node:crypto';
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

const ALGORITHMS: Record<string, string> = {
  'sha-1': 'sha1',
  'sha-224': 'sha224',
  'sha-256': 'sha256',
  'sha-384': 'sha384',
  'sha-512': 'sha512',
  md5: 'md5',
};

/** Byte-wise ("i;octet") ordering, as XEP-0115 §5.1 requires. */
function octetSort(values: string[]): string[] {
  return [...values].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
}

/**
 * XEP-0115 §5.1 verification string of a disco#info result, hashed with `hash` (an IANA name
 * such as `sha-1`). Returns undefined for an algorithm Node does not offer.
 */
export function capsVer(query: Element, hash = 'sha-1'): string | undefined {
  const algo = ALGORITHMS[hash.toLowerCase()];
  if (!algo) return undefined;
  let s = '';
  const identities = query
    .getChildren('identity', NS.discoInfo)
    .map(
      (i) =>
        `${i.attrs.category ?? ''}/${i.attrs.type ?? ''}/${i.attrs['xml:lang'] ?? ''}/${i.attrs.name ?? ''}`,
    );
  for (const i of octetSort(identities)) s += `${i}<`;
  for (const f of octetSort(query.getChildren('feature', NS.discoInfo).map((f) => f.attrs.var ?? '')))
    s += `${f}<`;
  const forms = query
    .getChildren('x', NS.dataForms)
    .map((x) => {
      const fields = x.getChildren('field', NS.dataForms);
      const formType =
        fields.find((f) => f.attrs.var === 'FORM_TYPE')?.getChildText('value', NS.dataForms) ?? '';
      let part = `${formType}<`;
      const others = fields.filter((f) => f.attrs.var !== 'FORM_TYPE');
      others.sort((a, b) => Buffer.compare(Buffer.from(a.attrs.var ?? ''), Buffer.from(b.attrs.var ?? '')));
      for (const f of others) {
        part += `${f.attrs.var ?? ''}<`;
        for (const v of octetSort(f.getChildren('value', NS.dataForms).map((v) => v.text()))) part += `${v}<`;
      }
      return { formType, part };
    })
    .sort((a, b) => Buffer.compare(Buffer.from(a.formType), Buffer.from(b.formType)));
  for (const f of forms) s += f.part;
  return createHash(algo).update(s, 'utf8').digest('base64');
}

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
