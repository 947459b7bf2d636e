import { z } from 'zod';
import { xml, type Element } from '@natter/xml';
import { NS } from '@natter/protocol';
import { defineModule, type ClientStreamView } from '../../core/module-api.js';

const KEY = Symbol('csi');

interface CsiState {
  inactive: boolean;
  /** Held stanzas by key (latest presence per sender, latest chat state per conversation), oldest first. */
  held: Map<string, Element>;
}

/** A message is held only when it carries nothing a user must see now: a bare chat state. */
function isChatStateOnly(el: Element): boolean {
  if (el.name !== 'message' || el.attrs.type === 'error') return false;
  let chatState = false;
  for (const c of el.elements()) {
    if (c.xmlns === NS.chatStates) chatState = true;
    else if (c.name === 'thread' || c.name === 'delay' || c.xmlns === NS.hints) continue;
    else return false; // body, subject, receipts, encrypted payloads …: important
  }
  return chatState;
}

/** Presence updates (available / unavailable broadcasts) are held; subscription requests are not. */
function isPresenceUpdate(el: Element): boolean {
  return el.name === 'presence' && (el.attrs.type === undefined || el.attrs.type === 'unavailable');
}

/**
 * Client State Indication (XEP-0352): while a client says it is inactive, presence updates and
 * bare chat states are held back (only the latest per sender is kept) and flushed, in order, when
 * it becomes active again or before anything important (a message with a body, an IQ) is sent.
 * Nothing else is ever held.
 */
export default defineModule({
  name: 'csi',
  description: 'Client state indication: holds back presence and chat states while the client is inactive',
  specs: ['XEP-0352'],
  enabledByDefault: true,
  options: z
    .object({
      /** Held stanzas per session; the buffer is flushed when it would grow beyond. */
      maxHeld: z.number().int().min(1).default(1000),
    })
    .strict()
    .prefault({}),
  setup(ctx) {
    const { maxHeld } = ctx.options;
    const mine = (stream: ClientStreamView) => stream.host?.domain === ctx.domain;

    ctx.streamFeature((stream) =>
      mine(stream) && stream.state === 'authenticated' ? xml('csi', { xmlns: NS.csi }) : null,
    );

    function stateOf(stream: ClientStreamView): CsiState {
      let st = stream.data.get(KEY) as CsiState | undefined;
      if (st) return st;
      st = { inactive: false, held: new Map() };
      const state = st;
      stream.data.set(KEY, st);
      stream.pipeline.filter('csi', (el) => filter(stream, state, el));
      stream.pipeline.holder('csi', () => {
        const out = [...state.held.values()];
        state.held.clear();
        return out;
      });
      return st;
    }

    function flush(stream: ClientStreamView, st: CsiState): void {
      if (st.held.size === 0) return;
      const out = [...st.held.values()];
      st.held.clear();
      for (const el of out) stream.writeStanza(el);
    }

    function filter(stream: ClientStreamView, st: CsiState, el: Element): Element | null {
      if (!st.inactive) return el;
      let key: string | undefined;
      if (isPresenceUpdate(el)) key = `p ${el.attrs.from ?? ''}`;
      else if (isChatStateOnly(el)) key = `c ${el.attrs.from ?? ''}`;
      if (key === undefined) {
        // Important: what was held goes first, so the client sees everything in order.
        flush(stream, st);
        return el;
      }
      st.held.delete(key); // the newest replaces the older one, at the end
      st.held.set(key, el);
      if (st.held.size > maxHeld) flush(stream, st);
      return null;
    }

    // XEP-0386 §2.3 (Bind2 inline): the client's state from the first moment of its session.
    ctx.bind2Feature({
      var: NS.csi,
      bound: ({ stream, element }) => {
        if (element.name === 'inactive' && mine(stream)) stateOf(stream).inactive = true;
        return undefined;
      },
    });

    ctx.hook('stream/nonza', ({ stream, element }) => {
      if (element.xmlns !== NS.csi || !mine(stream)) return false;
      if (stream.state !== 'bound') {
        stream.fail('unsupported-stanza-type', 'client state indication needs a bound resource');
        return true;
      }
      if (element.name === 'inactive') {
        stateOf(stream).inactive = true;
      } else if (element.name === 'active') {
        const st = stream.data.get(KEY) as CsiState | undefined;
        if (st) {
          st.inactive = false;
          flush(stream, st);
        }
      } else {
        stream.fail('unsupported-stanza-type', `<${element.name}/> is not a client state`);
      }
      return true;
    });
  },
});
