// Helpers shared by the pubsub and pep tests (not a test file itself).
import assert from 'node:assert/strict';
import { xml, type Element, type Child } from '@natter/xml';
import { NS, buildForm } from '@natter/protocol';
import type { TestClient } from './test-client.js';
import { builtinModules } from '../../src/modules/index.js';

/** Whether a module is registered (tests needing roster/presence skip until they land). */
export const hasModule = (name: string): boolean => builtinModules.some((m) => m.name === name);

/** `<iq type to><pubsub xmlns>…children</pubsub></iq>` */
export function pubsubIq(
  type: 'get' | 'set',
  to: string | undefined,
  owner: boolean,
  ...children: Child[]
): Element {
  return xml('iq', { type, to }, xml('pubsub', { xmlns: owner ? NS.pubsubOwner : NS.pubsub }, ...children));
}

/** A submitted data form with FORM_TYPE and `pubsub#…` fields (arrays for multi-valued ones). */
export function submitForm(formType: string, fields: Record<string, string | string[]>): Element {
  return buildForm({
    type: 'submit',
    formType,
    fields: Object.entries(fields).map(([k, v]) => ({ var: k, values: Array.isArray(v) ? v : [v] })),
  });
}

export const NODE_CONFIG = 'http://jabber.org/protocol/pubsub#node_config';
export const PUBLISH_OPTIONS = 'http://jabber.org/protocol/pubsub#publish-options';

/** Asserts a result IQ and returns it. */
export function ok(iq: Element): Element {
  assert.equal(iq.attrs.type, 'result', `expected a result, got ${iq.toString()}`);
  return iq;
}

/** Asserts an error IQ with this condition (and application condition) and returns the <error/>. */
export function fails(iq: Element, condition: string, app?: string): Element {
  assert.equal(iq.attrs.type, 'error', `expected an error, got ${iq.toString()}`);
  const err = iq.getChild('error')!;
  assert.ok(err.getChild(condition, NS.stanzas), `expected ${condition}, got ${err.toString()}`);
  if (app !== undefined)
    assert.ok(err.getChild(app, NS.pubsubErrors), `expected <${app}/>, got ${err.toString()}`);
  return err;
}

/** Publishes one item; returns the IQ reply. */
export function publish(
  c: TestClient,
  to: string | undefined,
  node: string,
  id: string | undefined,
  payload: Element,
  options?: Record<string, string>,
): Promise<Element> {
  return c.iq(
    pubsubIq(
      'set',
      to,
      false,
      xml('publish', { node }, xml('item', { id }, payload)),
      options && xml('publish-options', null, submitForm(PUBLISH_OPTIONS, options)),
    ),
  );
}

/** Waits for a pubsub event message and returns its <event/>. */
export async function event(
  c: TestClient,
  match: (ev: Element) => boolean = () => true,
  timeoutMs = 3000,
): Promise<Element> {
  const msg = await c.receive(
    (e) =>
      e.name === 'message' &&
      !!e.getChild('event', NS.pubsubEvent) &&
      match(e.getChild('event', NS.pubsubEvent)!),
    timeoutMs,
  );
  return msg.getChild('event', NS.pubsubEvent)!;
}

/** Matches an event about `node` (items, purge, delete …). */
export const about = (node: string) => (ev: Element) => ev.elements().some((c) => c.attrs.node === node);

/** Asserts no pubsub event about `node` arrives. */
export function noEvent(c: TestClient, node: string, ms = 300): Promise<void> {
  return c.nothing(
    (e) =>
      e.name === 'message' &&
      e.getChild('event', NS.pubsubEvent) !== undefined &&
      about(node)(e.getChild('event', NS.pubsubEvent)!),
    ms,
  );
}

/** Module configuration every pubsub/pep test server starts with. */
export const BASE_MODULES: Record<string, Record<string, unknown> | false> = { ping: { idleMs: 0 } };
