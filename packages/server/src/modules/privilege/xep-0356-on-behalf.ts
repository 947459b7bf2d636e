import { Element, xml } from '@natter/xml';
import { parseJid, type Jid } from '@natter/jid';
import { NS, StanzaError } from '@natter/protocol';
import type { IqRequest, ModuleContext, RouteEvent } from '../../core/module-api.js';
import { NS_PRIVILEGE, allows, type Privileges } from './xep-0356-permissions.js';

/** Finds the privileges of the component that sent a stanza (undefined when none). */
export type PrivilegesOf = (sender: Jid) => Privileges | undefined;

/** A copy of a stanza taken out of a wrapper, as a top-level jabber:client stanza. */
function unwrap(inner: Element, attrs: Record<string, string | undefined>): Element {
  const copy = new Element(inner.name, NS.client, {}, inner.children.slice());
  for (const [k, v] of Object.entries({ ...inner.attrs, ...attrs })) if (v !== undefined) copy.attrs[k] = v;
  return copy;
}

function sole(el: Element): Element | undefined {
  const children = el.elements();
  return children.length === 1 ? children[0] : undefined;
}

/**
 * XEP-0356 §5 (message permission): `<message><privilege><forwarded><message from='user@host'/>`
 * from a component with `message: outgoing` is sent as if the user (or the server) had sent it.
 * Registered on `message/host`: the wrapper is addressed to the server.
 */
export function handlePrivilegedMessage(
  ctx: ModuleContext<unknown>,
  privilegesOf: PrivilegesOf,
  ev: RouteEvent,
): boolean | Promise<boolean> {
  const wrapper = ev.stanza.getChild('privilege', NS_PRIVILEGE);
  if (!wrapper || ev.stanza.attrs.type === 'error') return false;
  const p = privilegesOf(ev.from);
  if (!p || p.message !== 'outgoing') {
    ctx.bounce(ev, 'forbidden', 'no message privilege (XEP-0356) was granted to this entity');
    return true;
  }
  const inner = wrapper.getChild('forwarded', NS.forward)?.getChild('message', NS.client);
  if (!inner) {
    ctx.bounce(
      ev,
      'bad-request',
      "expected <forwarded xmlns='urn:xmpp:forward:0'><message xmlns='jabber:client'/>",
    );
    return true;
  }
  let from: Jid, to: Jid;
  try {
    from = parseJid(inner.attrs.from ?? '');
    to = parseJid(inner.attrs.to ?? '');
  } catch {
    ctx.bounce(ev, 'jid-malformed', "the forwarded message needs valid 'from' and 'to' addresses");
    return true;
  }
  // §5.1: the forwarded message's 'from' MUST be a bare JID of the server (or the server itself).
  if (from.resource !== '' || from.domain !== ctx.domain) {
    ctx.bounce(ev, 'forbidden', `the forwarded message must come from a bare JID of ${ctx.domain}`);
    return true;
  }
  const stanza = unwrap(inner, { from: from.toString(), to: to.toString() });
  if (from.local === '') {
    void ctx.send(stanza);
    return true;
  }
  const routed: RouteEvent = { stanza, from, to, origin: undefined, onBehalfOf: ev.from.domain };
  return ctx.accountExists({ ...routed, to: from }).then(async (exists) => {
    if (!exists) {
      ctx.bounce(ev, 'forbidden', `${from.toString()} is not an account of ${ctx.domain}`);
      return true;
    }
    await ctx.routeAs(routed);
    return true;
  });
}

/** How long the server waits for the answer to an IQ it sent in a user's name. */
const IQ_TIMEOUT_MS = 30_000;

/**
 * XEP-0356 §6 (IQ permission): `<iq to='user@host'><privileged_iq><iq xmlns='jabber:client'/>`
 * is sent as if the user had sent it; the answer comes back wrapped in
 * `<privilege><forwarded>`. Every check of §6.3 that fails gets `forbidden`.
 */
export async function handlePrivilegedIq(
  ctx: ModuleContext<unknown>,
  privilegesOf: PrivilegesOf,
  req: IqRequest,
): Promise<Element> {
  const p = privilegesOf(req.from);
  if (!p || p.iq.size === 0)
    throw new StanzaError('forbidden', { text: 'no IQ privilege (XEP-0356) was granted to this entity' });
  const inner = sole(req.payload);
  if (!inner || inner.name !== 'iq' || inner.xmlns !== NS.client)
    throw new StanzaError('forbidden', { text: "the encapsulated IQ must be in namespace 'jabber:client'" });
  if (inner.attrs.type !== req.type)
    throw new StanzaError('forbidden', {
      text: 'the encapsulated IQ must have the type of the top-level IQ',
    });
  const user = req.to;
  if (inner.attrs.from !== undefined) {
    let f: Jid | undefined;
    try {
      f = parseJid(inner.attrs.from);
    } catch {
      f = undefined;
    }
    if (!f || !f.equals(user))
      throw new StanzaError('forbidden', {
        text: `the encapsulated IQ may only come from ${user.toString()}`,
      });
  }
  const payload = sole(inner);
  if (!payload)
    throw new StanzaError('bad-request', { text: 'the encapsulated IQ needs exactly one payload' });
  if (!allows(p.iq.get(payload.xmlns), req.type))
    throw new StanzaError('forbidden', {
      text: `no IQ ${req.type} privilege for namespace ${payload.xmlns || '(none)'}`,
    });
  if (!(await ctx.accountExists(req)))
    throw new StanzaError('forbidden', { text: `${user.toString()} is not an account of ${ctx.domain}` });
  let to: Jid;
  try {
    to = inner.attrs.to === undefined ? user : parseJid(inner.attrs.to);
  } catch {
    throw new StanzaError('jid-malformed', { text: "the encapsulated IQ's 'to' is not a valid JID" });
  }
  // Sent under an id of the server's own, so that two components cannot collide; the answer is
  // handed back with the component's id.
  const theirId = inner.attrs.id;
  const request = unwrap(inner, { from: user.toString(), to: to.toString(), id: undefined });
  let answer: Element;
  try {
    const result = await ctx.sendIq(request, IQ_TIMEOUT_MS);
    answer = unwrap(result, { id: theirId });
  } catch (err) {
    const error =
      err instanceof StanzaError
        ? err
        : new StanzaError('remote-server-timeout', { text: `no answer from ${to.toString()}` });
    answer = xml(
      'iq',
      { xmlns: NS.client, type: 'error', id: theirId, from: to.toString(), to: user.toString() },
      error.toElement(),
    );
  }
  const forwarded = new Element('forwarded', NS.forward, {}, [answer]);
  forwarded.inheritsNs = false;
  answer.inheritsNs = false;
  return xml('privilege', { xmlns: NS_PRIVILEGE }, forwarded);
}
