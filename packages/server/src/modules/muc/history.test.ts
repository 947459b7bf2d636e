import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { xml } from '@natter/xml';
import { NS } from '@natter/protocol';
import { History, parseHistoryRequest } from './history.js';

const msg = (n: number) =>
  xml('message', { type: 'groupchat', from: 'room@muc/nick' }, xml('body', null, `message ${n}`));

describe('MUC discussion history (XEP-0045 §7.2 Entering a Room, discussion history)', () => {
  const t0 = Date.UTC(2026, 0, 1);
  const filled = () => {
    const h = new History(5);
    for (let i = 1; i <= 7; i++) h.add(msg(i), t0 + i * 60_000);
    return h;
  };
  const bodies = (es: ReturnType<History['select']>) => es.map((e) => e.stanza.getChildText('body'));

  test('keeps only the last `limit` messages', () => {
    assert.deepEqual(bodies(filled().select({})), [
      'message 3',
      'message 4',
      'message 5',
      'message 6',
      'message 7',
    ]);
  });

  test('maxstanzas limits the count; 0 sends nothing', () => {
    assert.deepEqual(bodies(filled().select({ maxstanzas: 2 })), ['message 6', 'message 7']);
    assert.deepEqual(filled().select({ maxstanzas: 0 }), []);
  });

  test('seconds and since keep only recent messages', () => {
    const now = t0 + 7 * 60_000;
    assert.deepEqual(bodies(filled().select({ seconds: 150 }, now)), ['message 5', 'message 6', 'message 7']);
    assert.deepEqual(bodies(filled().select({ since: t0 + 6 * 60_000 }, now)), ['message 6', 'message 7']);
  });

  test('maxchars counts the characters of the XML of whole messages', () => {
    const one = msg(7).toString().length;
    assert.deepEqual(bodies(filled().select({ maxchars: one * 2 + 1 })), ['message 6', 'message 7']);
    assert.deepEqual(filled().select({ maxchars: 0 }), []);
  });

  test('the request is read from <history/>; bad values are ignored', () => {
    const x = xml(
      'x',
      { xmlns: NS.muc },
      xml('history', { maxstanzas: '3', maxchars: 'lots', since: '2026-01-01T00:05:00Z', seconds: '-1' }),
    );
    assert.deepEqual(parseHistoryRequest(x), {
      maxstanzas: 3,
      maxchars: undefined,
      seconds: undefined,
      since: t0 + 5 * 60_000,
    });
  });

  test('shrinking the limit drops the oldest', () => {
    const h = filled();
    h.setLimit(2);
    assert.deepEqual(bodies(h.select({})), ['message 6', 'message 7']);
  });
});
