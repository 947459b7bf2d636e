import type { Element } from '@natter/xml';
import { NS } from '@natter/protocol';

/** Payload namespaces that alone do not make a message worth keeping for later. */
const EPHEMERAL_NS = new Set<string>([
  NS.chatStates, // XEP-0085 chat states
  'jabber:x:event', // XEP-0022 message events (legacy chat states)
  NS.hints, // XEP-0334 hints
  NS.sid, // XEP-0359 origin-id / stanza-id
]);

/**
 * XEP-0160 §3 with the XEP-0334 hints: should a message for an account without an available
 * resource be stored? Only chat and normal messages (error, groupchat and headline never are),
 * not when the sender asked `<no-store/>`, always when it asked `<store/>`, otherwise only when
 * it carries a body or some payload other than chat states, hints, ids, threads or a bare
 * receipt request.
 */
export function shouldStore(message: Element): boolean {
  const type = message.attrs.type ?? 'normal';
  if (type !== 'chat' && type !== 'normal') return false;
  let worth = false;
  let store = false;
  for (const c of message.children) {
    if (typeof c === 'string') continue;
    const ns = c.xmlns;
    if (ns === NS.hints) {
      if (c.name === 'no-store') return false;
      if (c.name === 'store') store = true;
      continue;
    }
    if (worth) continue;
    if (ns === NS.client) {
      if (c.name === 'body' || c.name === 'subject') worth = c.text().trim() !== '' || c.name === 'subject';
      continue; // thread and other stanza-level children
    }
    if (EPHEMERAL_NS.has(ns)) continue;
    if (ns === NS.receipts && c.name === 'request') continue; // a request only makes sense with content
    worth = true;
  }
  return worth || store;
}
