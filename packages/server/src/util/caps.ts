import { createHash } from 'node:crypto';
import type { Element } from '@natter/xml';
import { NS } from '@natter/protocol';

/*
 * XEP-0115 entity capabilities: the verification string of a disco#info result. Shared by PEP
 * (checking what clients advertise) and disco (what the server advertises in stream features).
 */

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
