import assert from 'node:assert/strict';
import { test } from 'node:test';
import { RateLimiter } from './rate-limiter.js';

test('a user gets a burst, then tokens back at the configured rate', () => {
  let now = 0;
  const r = new RateLimiter({ burst: 2, perSecond: 1 }, 100, () => now);
  assert.ok(r.take('alice'));
  assert.ok(r.take('alice'));
  assert.ok(!r.take('alice'));
  assert.ok(r.take('bob'), 'buckets are per user');
  now += 1000;
  assert.ok(r.take('alice'));
  assert.ok(!r.take('alice'));
});

test('the number of buckets is bounded; an evicted user starts with a full bucket', () => {
  const now = 0;
  const r = new RateLimiter({ burst: 1, perSecond: 0 }, 2, () => now);
  assert.ok(r.take('a'));
  assert.ok(r.take('b'));
  assert.ok(r.take('c')); // evicts a (least recently used)
  assert.ok(r.take('a'));
  assert.ok(!r.take('c'));
});
