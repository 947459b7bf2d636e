import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { xml } from '@natter/xml';
import { NS, parseDateTime } from '@natter/protocol';
import { startTestServer, type TestServer } from '../../../test/support/test-server.js';
import { TestClient } from '../../../test/support/test-client.js';
import { timezoneOffset, utcDateTime } from './time.js';
import { builtinModules } from '../index.js';

/** Only the modules under test. */
const MINE = new Set(['disco', 'ping', 'version', 'register', 'time']);
const others = Object.fromEntries(
  builtinModules.filter((m) => !MINE.has(m.name)).map((m) => [m.name, false as const]),
);

describe('entity time (XEP-0202)', () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer({ modules: { ...others, ping: { idleMs: 0 } } });
    await server.addUser('romeo', 'secret-password');
  });
  after(() => server?.destroy());

  test('XEP-0202 §3: the server answers <time/> with its tzo and utc (XEP-0082 formats)', async () => {
    const c = await TestClient.login(server, 'romeo', 'secret-password', { resource: 'r' });
    const before = Date.now();
    const res = await c.iq(xml('iq', { type: 'get', to: 'localhost' }, xml('time', { xmlns: NS.time })));
    assert.equal(res.attrs.type, 'result');
    const t = res.getChild('time', NS.time);
    assert.match(t?.getChildText('tzo', NS.time) ?? '', /^[+-]\d{2}:\d{2}$/);
    const utc = t?.getChildText('utc', NS.time) ?? '';
    assert.match(utc, /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$/);
    const d = parseDateTime(utc);
    assert.ok(d && Math.abs(d.getTime() - before) < 5000);
    const disco = await c.iq(
      xml('iq', { type: 'get', to: 'localhost' }, xml('query', { xmlns: NS.discoInfo })),
    );
    assert.ok(
      disco
        .getChild('query', NS.discoInfo)
        ?.getChildren('feature')
        .some((f) => f.attrs.var === NS.time),
    );
    await c.close();
  });

  test('XEP-0082 §3: time zone offsets are ±hh:mm, +00:00 for UTC', () => {
    const at = (minutesWest: number) => ({ getTimezoneOffset: () => minutesWest }) as Date;
    assert.equal(timezoneOffset(at(0)), '+00:00');
    assert.equal(timezoneOffset(at(-330)), '+05:30');
    assert.equal(timezoneOffset(at(300)), '-05:00');
    assert.equal(timezoneOffset(at(-765)), '+12:45');
    assert.equal(utcDateTime(new Date(Date.UTC(2006, 11, 19, 17, 58, 35, 123))), '2006-12-19T17:58:35Z');
  });
});
