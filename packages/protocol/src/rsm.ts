import { Element, xml } from '@natter/xml';
import { NS } from './namespaces.js';
import { StanzaError } from './errors.js';

/** XEP-0059 Result Set Management request. */
export interface RsmRequest {
  max?: number;
  /** Page after this id. */
  after?: string;
  /** Page before this id; '' means "the last page". */
  before?: string;
  index?: number;
}

export interface RsmResult {
  first?: string;
  firstIndex?: number;
  last?: string;
  count?: number;
}

function nonNegative(text: string | undefined, what: string): number | undefined {
  if (text === undefined) return undefined;
  if (!/^\d{1,9}$/.test(text.trim()))
    throw new StanzaError('bad-request', { text: `RSM <${what}/> must be a non-negative integer` });
  return Number(text.trim());
}

/** Reads the `<set/>` child of a payload, if present. */
export function parseRsm(parent: Element): RsmRequest | undefined {
  const set = parent.getChild('set', NS.rsm);
  if (!set) return undefined;
  return {
    max: nonNegative(set.getChildText('max', NS.rsm), 'max'),
    after: set.getChildText('after', NS.rsm),
    before: set.getChildText('before', NS.rsm),
    index: nonNegative(set.getChildText('index', NS.rsm), 'index'),
  };
}

export function buildRsm(result: RsmResult): Element {
  return xml(
    'set',
    { xmlns: NS.rsm },
    result.first !== undefined && xml('first', { index: result.firstIndex }, result.first),
    result.last !== undefined && xml('last', null, result.last),
    result.count !== undefined && xml('count', null, String(result.count)),
  );
}
