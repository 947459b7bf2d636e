import { xml, type Element } from '@natter/xml';
import { parseJid } from '@natter/jid';
import {
  NS,
  StanzaError,
  buildForm,
  parseForm,
  parseDateTime,
  parseRsm,
  buildRsm,
  formType,
  type RsmResult,
} from '@natter/protocol';
import type { ArchiveFilter, ArchiveStore, Position, StoredMessage } from './archive-store.js';

const FIELDS = new Set(['FORM_TYPE', 'with', 'start', 'end', 'before-id', 'after-id', 'ids']);

/** XEP-0313 §4.1.5: the query form, every field optional (never marked required). */
export function queryForm(): Element {
  const form = buildForm({
    type: 'form',
    formType: NS.mam,
    fields: [
      { var: 'with', type: 'jid-single', values: [] },
      { var: 'start', type: 'text-single', values: [] },
      { var: 'end', type: 'text-single', values: [] },
      { var: 'before-id', type: 'text-single', values: [] },
      { var: 'after-id', type: 'text-single', values: [] },
      { var: 'ids', type: 'list-multi', values: [] },
    ],
  });
  // XEP-0122: the list of ids is open to any value.
  const ids = form.getChildren('field').find((f) => f.attrs.var === 'ids');
  ids?.append(
    xml(
      'validate',
      { xmlns: 'http://jabber.org/protocol/xdata-validate', datatype: 'xs:string' },
      xml('open'),
    ),
  );
  return xml('query', { xmlns: NS.mam }, form);
}

export interface QueryResult {
  messages: StoredMessage[];
  /** The RSM set and the `complete` flag for `<fin/>`. */
  rsm: RsmResult;
  complete: boolean;
  flip: boolean;
}

function timestamp(value: string | undefined, field: string): number | undefined {
  if (value === undefined || value === '') return undefined;
  const d = parseDateTime(value);
  if (!d) throw new StanzaError('bad-request', { text: `'${field}' must be a XEP-0082 date-time` });
  return d.getTime();
}

async function positionOrFail(store: ArchiveStore, owner: string, id: string): Promise<Position> {
  const at = await store.positionOf(owner, id);
  if (at === undefined) throw new StanzaError('item-not-found', { text: `no message ${id} in the archive` });
  return at;
}

const later = (a: Position, b: Position) => (a.seq > b.seq || (a.seq === b.seq && a.id > b.id) ? a : b);
const earlier = (a: Position, b: Position) => (later(a, b) === a ? b : a);

/**
 * Runs a `<query xmlns='urn:xmpp:mam:2'/>` on `owner`'s archive: the form filters (§4.1), RSM
 * paging (§4.3, XEP-0059) clamped to `maxPage`, and the `complete` flag.
 */
export async function runQuery(
  store: ArchiveStore,
  owner: string,
  query: Element,
  maxPage: number,
): Promise<QueryResult> {
  const filter: ArchiveFilter = { owner };
  const x = query.getChild('x', NS.dataForms);
  if (x) {
    const form = parseForm(x);
    const type = formType(form);
    if (type !== undefined && type !== NS.mam)
      throw new StanzaError('bad-request', { text: `FORM_TYPE must be ${NS.mam}` });
    for (const f of form.fields) {
      if (f.var === undefined || !FIELDS.has(f.var))
        throw new StanzaError('feature-not-implemented', { text: `unknown field ${f.var ?? ''}` });
    }
    const value = (name: string) => form.fields.find((f) => f.var === name)?.values[0]?.trim();
    const withValue = value('with');
    if (withValue) {
      let jid;
      try {
        jid = parseJid(withValue);
      } catch {
        throw new StanzaError('jid-malformed', { text: `'with' is not a valid JID: ${withValue}` });
      }
      // §4.1.1: a bare JID matches any resource of that JID, a full JID only itself.
      if (jid.isBare) filter.withBare = jid.toString();
      else filter.withFull = jid.toString();
    }
    filter.start = timestamp(value('start'), 'start');
    filter.end = timestamp(value('end'), 'end');
    const afterId = value('after-id');
    const beforeId = value('before-id');
    if (afterId) filter.after = await positionOrFail(store, owner, afterId);
    if (beforeId) filter.before = await positionOrFail(store, owner, beforeId);
    const ids = form.fields
      .find((f) => f.var === 'ids')
      ?.values.map((v) => v.trim())
      .filter((v) => v !== '');
    if (ids && ids.length > 0) {
      const found = await store.existing(owner, ids);
      const missing = ids.find((id) => !found.has(id));
      if (missing !== undefined)
        throw new StanzaError('item-not-found', { text: `no message ${missing} in the archive` });
      filter.ids = ids;
    }
  }

  const rsm = parseRsm(query);
  const max = Math.min(rsm?.max ?? maxPage, maxPage);
  const flip = query.getChild('flip-page', NS.mam) !== undefined;
  const count = await store.count(filter);

  if (max === 0) return { messages: [], rsm: { count }, complete: count === 0, flip };

  // RSM `after`/`before` narrow the filter; `before` pages backwards from the end.
  const paged: ArchiveFilter = { ...filter };
  const backward = rsm?.before !== undefined;
  if (rsm?.after !== undefined && rsm.after !== '') {
    const at = await positionOrFail(store, owner, rsm.after);
    paged.after = paged.after === undefined ? at : later(at, paged.after);
  }
  if (rsm?.before !== undefined && rsm.before !== '') {
    const at = await positionOrFail(store, owner, rsm.before);
    paged.before = paged.before === undefined ? at : earlier(at, paged.before);
  }
  const offset = !backward && rsm?.after === undefined ? rsm?.index : undefined;
  const rows = await store.page(paged, { limit: max + 1, backward, offset });
  const more = rows.length > max;
  if (more) rows.length = max;
  if (backward) rows.reverse();

  const result: RsmResult = { count };
  const first = rows[0];
  const last = rows[rows.length - 1];
  if (first && last) {
    result.first = first.id;
    result.last = last.id;
    // Position of the first item in the whole result set.
    result.firstIndex = await store.count({ ...filter, before: first });
  }
  // §4.3.2: complete when this page reaches the end of the results in its paging direction.
  return { messages: rows, rsm: result, complete: !more, flip };
}

export function finElement(r: QueryResult): Element {
  return xml('fin', { xmlns: NS.mam, complete: r.complete ? 'true' : undefined }, buildRsm(r.rsm));
}
