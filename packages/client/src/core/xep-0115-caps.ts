/**
 * XEP-0115 entity capabilities: the verification string, our `<c/>` element and our disco#info
 * answer. In the core because the client stamps caps on its own presence; the disco plugin uses
 * it too (rule 2: the client core never imports a plugin folder).
 */
import { xml, type Element } from '@natter/xml';
import { NS, digest, toBase64, utf8 } from '@natter/protocol';

export interface DiscoIdentity {
  category: string;
  type: string;
  name?: string;
  lang?: string;
}

/** Our node in `<c node=…/>` (XEP-0115 §4): identifies the software. */
export const CAPS_NODE = 'https://natter.dev/client';

function byteCompare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * XEP-0115 §5.1 verification string: identities `category/type/lang/name<` and features `var<`,
 * each sorted, hashed with SHA-1 and base64-encoded.
 */
export async function capsVerification(
  identities: readonly DiscoIdentity[],
  features: readonly string[],
): Promise<string> {
  let s = '';
  const ids = identities
    .map((i) => `${i.category}/${i.type}/${i.lang ?? ''}/${i.name ?? ''}`)
    .sort(byteCompare);
  for (const i of ids) s += `${i}<`;
  for (const f of [...new Set(features)].sort(byteCompare)) s += `${f}<`;
  return toBase64(await digest('SHA-1', utf8(s)));
}

/** The `<c/>` element put in outgoing presence. */
export function capsElement(ver: string): Element {
  return xml('c', { xmlns: NS.caps, hash: 'sha-1', node: CAPS_NODE, ver });
}

/** The disco#info `<query/>` describing ourselves. */
export function discoInfoQuery(
  identities: readonly DiscoIdentity[],
  features: readonly string[],
  node?: string,
): Element {
  return xml(
    'query',
    { xmlns: NS.discoInfo, node },
    identities.map((i) =>
      xml('identity', { category: i.category, type: i.type, name: i.name, 'xml:lang': i.lang }),
    ),
    [...new Set(features)].sort(byteCompare).map((f) => xml('feature', { var: f })),
  );
}
