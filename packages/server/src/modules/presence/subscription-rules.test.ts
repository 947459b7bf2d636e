import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { xml } from '@natter/xml';
import type { RosterItem, SubscriptionState } from '../roster/api.js';
import { inboundRule, outboundRule, type Outcome, type SubscriptionType } from './subscription-rules.js';

/** The nine states of RFC 6121 Appendix A.1, by their names there. */
type StateName =
  | 'None'
  | 'None + Pending Out'
  | 'None + Pending In'
  | 'None + Pending Out/In'
  | 'To'
  | 'To + Pending In'
  | 'From'
  | 'From + Pending Out'
  | 'Both';

const REQUEST = xml('presence', { type: 'subscribe', from: 'user@example.com' });

function make(name: StateName): SubscriptionState {
  const [base, pending] = name.split(' + ') as [string, string | undefined];
  const item: RosterItem = {
    jid: 'contact@example.com',
    subscription: base.toLowerCase() as RosterItem['subscription'],
    groups: [],
  };
  if (pending === 'Pending Out' || pending === 'Pending Out/In') item.ask = 'subscribe';
  const pendingIn = pending === 'Pending In' || pending === 'Pending Out/In' ? REQUEST : undefined;
  return { item, pendingIn };
}

function nameOf(s: SubscriptionState): StateName {
  const sub = s.item?.subscription ?? 'none';
  const out = s.item?.ask === 'subscribe';
  const inn = s.pendingIn !== undefined;
  const base = sub[0]!.toUpperCase() + sub.slice(1);
  const pending = out && inn ? 'Pending Out/In' : out ? 'Pending Out' : inn ? 'Pending In' : '';
  return (pending ? `${base} + ${pending}` : base) as StateName;
}

function apply(s: SubscriptionState, o: Outcome): SubscriptionState {
  const c = o.change;
  if (!c) return s;
  let item = s.item;
  if (c.item === 'remove') item = undefined;
  else if (c.item) {
    item = { ...(item ?? { jid: 'contact@example.com', subscription: 'none', groups: [] }) };
    if (c.item.subscription) item.subscription = c.item.subscription;
    if ('ask' in c.item) {
      if (c.item.ask) item.ask = c.item.ask;
      else delete item.ask;
    }
  }
  const pendingIn = c.pendingIn === false ? undefined : (c.pendingIn ?? s.pendingIn);
  return { item, pendingIn };
}

/** [existing state, routed/delivered?, new state] rows, as in the RFC's tables. */
type Row = [StateName, boolean, StateName];

function check(dir: 'outbound' | 'inbound', type: SubscriptionType, rows: Row[]): void {
  for (const [from, forward, to] of rows) {
    const state = make(from);
    const out = dir === 'outbound' ? outboundRule(type, state, false) : inboundRule(type, state, REQUEST);
    assert.equal(
      out.forward,
      forward,
      `${dir} ${type} in "${from}": ${forward ? 'forwarded' : 'not forwarded'}`,
    );
    assert.equal(nameOf(apply(state, out)), to, `${dir} ${type} in "${from}"`);
  }
}

describe('subscription states (RFC 6121 Appendix A)', () => {
  test('RFC 6121 A.2.1: outbound subscribe is always routed; None → None + Pending Out, From → From + Pending Out', () => {
    check('outbound', 'subscribe', [
      ['None', true, 'None + Pending Out'],
      ['None + Pending Out', true, 'None + Pending Out'],
      ['None + Pending In', true, 'None + Pending Out/In'],
      ['None + Pending Out/In', true, 'None + Pending Out/In'],
      ['To', true, 'To'],
      ['To + Pending In', true, 'To + Pending In'],
      ['From', true, 'From + Pending Out'],
      ['From + Pending Out', true, 'From + Pending Out'],
      ['Both', true, 'Both'],
    ]);
  });

  test('RFC 6121 A.2.2: outbound unsubscribe is always routed and drops To and Pending Out', () => {
    check('outbound', 'unsubscribe', [
      ['None', true, 'None'],
      ['None + Pending Out', true, 'None'],
      ['None + Pending In', true, 'None + Pending In'],
      ['None + Pending Out/In', true, 'None + Pending In'],
      ['To', true, 'None'],
      ['To + Pending In', true, 'None + Pending In'],
      ['From', true, 'From'],
      ['From + Pending Out', true, 'From'],
      ['Both', true, 'From'],
    ]);
  });

  test('RFC 6121 A.2.3: outbound subscribed is routed only when a request is pending', () => {
    check('outbound', 'subscribed', [
      ['None', false, 'None'],
      ['None + Pending Out', false, 'None + Pending Out'],
      ['None + Pending In', true, 'From'],
      ['None + Pending Out/In', true, 'From + Pending Out'],
      ['To', false, 'To'],
      ['To + Pending In', true, 'Both'],
      ['From', false, 'From'],
      ['From + Pending Out', false, 'From + Pending Out'],
      ['Both', false, 'Both'],
    ]);
  });

  test('RFC 6121 A.2.4: outbound unsubscribed is routed only when it declines a request or cancels a subscription', () => {
    check('outbound', 'unsubscribed', [
      ['None', false, 'None'],
      ['None + Pending Out', false, 'None + Pending Out'],
      ['None + Pending In', true, 'None'],
      ['None + Pending Out/In', true, 'None + Pending Out'],
      ['To', false, 'To'],
      ['To + Pending In', true, 'To'],
      ['From', true, 'None'],
      ['From + Pending Out', true, 'None + Pending Out'],
      ['Both', true, 'To'],
    ]);
  });

  test('RFC 6121 A.3.1: inbound subscribe is delivered only when new; subscribers get an automatic subscribed', () => {
    check('inbound', 'subscribe', [
      ['None', true, 'None + Pending In'],
      ['None + Pending Out', true, 'None + Pending Out/In'],
      ['None + Pending In', false, 'None + Pending In'],
      ['None + Pending Out/In', false, 'None + Pending Out/In'],
      ['To', true, 'To + Pending In'],
      ['To + Pending In', false, 'To + Pending In'],
      ['From', false, 'From'],
      ['From + Pending Out', false, 'From + Pending Out'],
      ['Both', false, 'Both'],
    ]);
    for (const s of ['From', 'From + Pending Out', 'Both'] as const)
      assert.equal(inboundRule('subscribe', make(s), REQUEST).autoReply, true);
  });

  test('RFC 6121 A.3.2: inbound subscribed is delivered only as the answer to our pending request', () => {
    check('inbound', 'subscribed', [
      ['None', false, 'None'],
      ['None + Pending Out', true, 'To'],
      ['None + Pending In', false, 'None + Pending In'],
      ['None + Pending Out/In', true, 'To + Pending In'],
      ['To', false, 'To'],
      ['To + Pending In', false, 'To + Pending In'],
      ['From', false, 'From'],
      ['From + Pending Out', true, 'Both'],
      ['Both', false, 'Both'],
    ]);
  });

  test("RFC 6121 A.3.3: inbound unsubscribe withdraws a request or ends the sender's subscription", () => {
    check('inbound', 'unsubscribe', [
      ['None', false, 'None'],
      ['None + Pending Out', false, 'None + Pending Out'],
      ['None + Pending In', true, 'None'],
      ['None + Pending Out/In', true, 'None + Pending Out'],
      ['To', false, 'To'],
      ['To + Pending In', true, 'To'],
      ['From', true, 'None'],
      ['From + Pending Out', true, 'None + Pending Out'],
      ['Both', true, 'To'],
    ]);
  });

  test('RFC 6121 A.3.4: inbound unsubscribed refuses our request or cancels our subscription', () => {
    check('inbound', 'unsubscribed', [
      ['None', false, 'None'],
      ['None + Pending Out', true, 'None'],
      ['None + Pending In', false, 'None + Pending In'],
      ['None + Pending Out/In', true, 'None + Pending In'],
      ['To', true, 'None'],
      ['To + Pending In', true, 'None + Pending In'],
      ['From', false, 'From'],
      ['From + Pending Out', true, 'From'],
      ['Both', true, 'From'],
    ]);
  });

  test('RFC 6121 §3.4: with pre-approval, subscribed without a request marks the item approved; a later request is accepted', () => {
    for (const s of ['None', 'None + Pending Out', 'To'] as const) {
      const out = outboundRule('subscribed', make(s), true);
      assert.equal(out.forward, false);
      assert.deepEqual(out.change, { item: { approved: true } });
    }
    const approved = make('To');
    approved.item!.approved = true;
    const inbound = inboundRule('subscribe', approved, REQUEST);
    assert.equal(inbound.forward, false);
    assert.equal(inbound.autoReply, true);
    assert.deepEqual(inbound.change, { item: { subscription: 'both', approved: false } });
  });
});
