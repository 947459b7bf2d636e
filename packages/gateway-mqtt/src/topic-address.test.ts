import assert from 'node:assert/strict';
import { test } from 'node:test';
import { filterProblem, localToTopic, topicMatches, topicProblem, topicToLocal } from './topic-address.js';

test('XEP-0106: a topic is the escaped localpart of its address, and back', () => {
  assert.equal(topicToLocal('sensors/kitchen/temp'), 'sensors\\2fkitchen\\2ftemp');
  assert.equal(localToTopic('sensors\\2fkitchen\\2ftemp'), 'sensors/kitchen/temp');
  assert.equal(topicToLocal("home/bob's room@2"), 'home\\2fbob\\27s\\20room\\402');
  for (const t of ['a/+/c', 'a/#', '#', 'x:y/"q"/<z>&']) assert.equal(localToTopic(topicToLocal(t)), t);
});

test('MQTT §4.7.1: wildcards must fill whole levels; # only last', () => {
  for (const ok of ['a', 'a/b', 'a/+/c', 'a/#', '#', '+', '+/+', 'a//b', '/a'])
    assert.equal(filterProblem(ok), undefined, ok);
  for (const bad of ['', 'a/b#', 'a/#/c', 'a+/b', 'a/+b', '#/a', ' a']) assert.ok(filterProblem(bad), bad);
  assert.ok(topicProblem('a/+'));
  assert.ok(topicProblem('a/#'));
  assert.equal(topicProblem('a/b'), undefined);
});

test('MQTT §4.7.1-2: filters match topic names level by level; wildcards first do not match $ topics', () => {
  assert.ok(topicMatches('a/b', 'a/b'));
  assert.ok(!topicMatches('a/b', 'a/b/c'));
  assert.ok(topicMatches('a/+', 'a/b'));
  assert.ok(!topicMatches('a/+', 'a/b/c'));
  assert.ok(topicMatches('a/+/c', 'a/x/c'));
  assert.ok(topicMatches('a/#', 'a/b/c'));
  assert.ok(topicMatches('a/#', 'a'));
  assert.ok(topicMatches('#', 'anything/at/all'));
  assert.ok(!topicMatches('#', '$SYS/broker'));
  assert.ok(!topicMatches('+/broker', '$SYS/broker'));
  assert.ok(topicMatches('$SYS/#', '$SYS/broker'));
});
