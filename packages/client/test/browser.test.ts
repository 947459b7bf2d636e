// The browser build: it bundles without Node built-ins, and in headless Chromium (Debian's
// package, driven by playwright-core) it connects over WebSocket, sends and receives messages.
import assert from 'node:assert/strict';
import { builtinModules } from 'node:module';
import { after, before, describe, test } from 'node:test';
import { createClient } from '../src/index.node.js';
import { bundleForBrowser, servePage, type BrowserBundle, type TestPage } from './browser-bundle.js';
import { available } from './helpers.js';
import type { Target } from './target.js';
import { targets } from './targets.js';
import { ensureChromium, launchChromium } from '../../../test/support/chromium.js';

let bundle: BrowserBundle;

describe('browser build', () => {
  before(async () => {
    bundle = await bundleForBrowser();
  });

  test('the browser bundle pulls in no Node built-in and no *.node.ts file', () => {
    const builtins = new Set(builtinModules.flatMap((m) => [m, `node:${m}`]));
    const offenders = bundle.inputs.filter(
      (i) =>
        i.startsWith('node:') ||
        builtins.has(i) ||
        /\.node\.ts$/.test(i) ||
        /node_modules\/(ws|better-sqlite3)\//.test(i),
    );
    assert.deepEqual(offenders, []);
    assert.ok(bundle.inputs.some((i) => i.endsWith('src/core/client.ts')));
    assert.doesNotMatch(bundle.code, /\brequire\(["'](node:)?(net|tls|fs|crypto|buffer)["']\)/);
    assert.doesNotMatch(bundle.code, /\bBuffer\.(from|alloc)/);
  });
});

describe('IndexedDB message store in headless Chromium', () => {
  let server: TestPage | undefined;
  let skip: string | undefined;
  before(async () => {
    skip = await ensureChromium();
    if (skip) return;
    const b = bundle ?? (await bundleForBrowser());
    server = await servePage(b.code);
  });
  after(async () => {
    await server?.close();
  });

  test('deduplicates, pages, keeps sync points and survives reopening (the MessageStore contract)', async (t) => {
    if (skip) return t.skip(skip);
    const browser = await launchChromium();
    try {
      const page = browser.context.pages()[0] ?? (await browser.context.newPage());
      const errors: string[] = [];
      page.on('pageerror', (e) => errors.push(e.message));
      await page.goto(server!.url);
      await page.waitForFunction(() => (window as unknown as { ready?: boolean }).ready === true, undefined, {
        timeout: 10000,
      });
      // tsx names the functions below with a helper that exists only in Node.
      await page.evaluate('window.__name = (f) => f');
      const out = await page.evaluate(async () => {
        const natter = (window as unknown as { natter: typeof import('../src/index.js') }).natter;
        const me = 'me@x';
        const peer = 'peer@x';
        const m = (body: string, timestamp: number, extra: Record<string, string> = {}) => ({
          conversation: peer,
          timestamp,
          from: `${peer}/r`,
          direction: 'in' as const,
          body,
          xml: `<message><body>${body}</body></message>`,
          ...extra,
        });
        const s = natter.indexedDbMessageStore({ name: 'contract' });
        const added = [
          await s.add(me, m('m3', 3000, { archive: me, archiveId: 'a3' })),
          await s.add(me, m('m1', 1000, { archive: me, archiveId: 'a1' })),
          await s.add(me, m('m2', 3000, { archive: me, archiveId: 'a2' })),
          await s.add(me, m('dup', 3000, { archive: me, archiveId: 'a2' })),
          await s.add(me, m('live', 4000, { originId: 'o4' })),
          await s.add(me, m('live', 4001, { originId: 'o4', archive: me, archiveId: 'a4' })),
          await s.add('other@x', m('theirs', 1000, { archive: me, archiveId: 'a1' })),
        ];
        const bodies = (l: { body?: string }[]) => l.map((x) => x.body);
        const all = await s.list(me, peer);
        const latest = await s.list(me, peer, { limit: 2 });
        const older = await s.list(me, peer, { limit: 2, before: latest[0] });
        const after = await s.list(me, peer, { limit: 2, after: all[0] });
        await s.setSyncPoint(me, me, { id: 'a4', timestamp: 4000 });
        await s.setSyncPoint('other@x', me, { id: 'z', timestamp: 1 });
        const reopened = natter.indexedDbMessageStore({ name: 'contract' });
        const persisted = {
          list: bodies(await reopened.list(me, peer)),
          sync: await reopened.syncPoint(me, me),
          hasMerged: await reopened.has(me, { archive: me, archiveId: 'a4' }),
          hasOrigin: await reopened.has(me, { conversation: peer, originId: 'o4' }),
        };
        await reopened.clear(me);
        return {
          added,
          all: bodies(all),
          latest: bodies(latest),
          older: bodies(older),
          after: bodies(after),
          persisted,
          cleared: bodies(await reopened.list(me, peer)),
          clearedSync: (await reopened.syncPoint(me, me)) ?? null,
          otherSync: await reopened.syncPoint('other@x', me),
          otherList: bodies(await reopened.list('other@x', peer)),
        };
      });
      assert.deepEqual(out, {
        added: [true, true, true, false, true, false, true],
        all: ['m1', 'm3', 'm2', 'live'],
        latest: ['m2', 'live'],
        older: ['m1', 'm3'],
        after: ['m3', 'm2'],
        persisted: {
          list: ['m1', 'm3', 'm2', 'live'],
          sync: { id: 'a4', timestamp: 4000 },
          hasMerged: true,
          hasOrigin: true,
        },
        cleared: [],
        clearedSync: null,
        otherSync: { id: 'z', timestamp: 1 },
        otherList: ['theirs'],
      });
      assert.deepEqual(errors, []);
    } finally {
      await browser.close();
    }
  });
});

for (const factory of targets) {
  describe(`browser client over WebSocket in headless Chromium (${factory.name})`, () => {
    let target: Target | undefined;
    let server: TestPage | undefined;
    let skip: string | undefined;
    before(async () => {
      skip = await ensureChromium();
      if (skip) return;
      target = await factory.start();
      const b = bundle ?? (await bundleForBrowser());
      server = await servePage(b.code);
    });
    after(async () => {
      await server?.close();
      await target?.stop();
    });

    test('RFC 7395 in a browser: connect, send a message, receive one', async (t) => {
      if (skip) return t.skip(skip);
      const browser = await launchChromium();
      const context = browser.context;
      const peer = createClient({ service: target!.service.tcp, tls: target!.tls, ...target!.users[1]! });
      try {
        await peer.connect();
        await available(peer);
        const page = context.pages()[0] ?? (await context.newPage());
        const errors: string[] = [];
        page.on('pageerror', (e) => errors.push(e.message));
        await page.goto(server!.url);
        await page.waitForFunction(
          () => (window as unknown as { ready?: boolean }).ready === true,
          undefined,
          { timeout: 10000 },
        );
        const fromBrowser = peer.waitFor('message', {
          filter: (m) => m.getChildText('body') === 'hello from chromium',
          timeout: 15000,
        });
        const account = target!.users[0]!;
        const boundJid = await page.evaluate(
          async ({ service, jid, password, peerJid }) => {
            const natter = (window as unknown as { natter: typeof import('../src/index.js') }).natter;
            const client = natter.createClient({ service, jid, password, resource: 'chromium' });
            (window as unknown as { client: unknown }).client = client;
            (window as unknown as { inbox: string[] }).inbox = [];
            client.on('message', (m) =>
              (window as unknown as { inbox: string[] }).inbox.push(m.getChildText('body') ?? ''),
            );
            const full = await client.connect();
            await client.sendPresence();
            await client.sendMessage({ to: peerJid, body: 'hello from chromium' });
            return full.toString();
          },
          {
            service: target!.service.ws,
            jid: account.jid,
            password: account.password,
            peerJid: peer.jid!.toString(),
          },
        );
        // With Bind2 (XEP-0386, Natter) the server's resource starts with the one asked for.
        const asked = `${account.jid}/chromium`;
        assert.ok(boundJid === asked || boundJid.startsWith(`${asked}.`), boundJid);
        const m = await fromBrowser;
        assert.equal(m.attr('from'), boundJid);
        await peer.sendMessage({ to: boundJid, body: 'hello from node' });
        await page.waitForFunction(
          () => (window as unknown as { inbox: string[] }).inbox.includes('hello from node'),
          undefined,
          { timeout: 10000 },
        );
        await page.evaluate(() =>
          (window as unknown as { client: { disconnect(): Promise<void> } }).client.disconnect(),
        );
        assert.deepEqual(errors, []);
      } finally {
        await peer.disconnect().catch(() => undefined);
        await browser.close();
      }
    });

    test('XEP-0363 in a browser: an upload with XMLHttpRequest progress events; the GET URL serves the bytes', async (t) => {
      if (skip) return t.skip(skip);
      const browser = await launchChromium();
      try {
        const page = browser.context.pages()[0] ?? (await browser.context.newPage());
        const errors: string[] = [];
        page.on('pageerror', (e) => errors.push(e.message));
        await page.goto(server!.url);
        await page.waitForFunction(
          () => (window as unknown as { ready?: boolean }).ready === true,
          undefined,
          {
            timeout: 10000,
          },
        );
        const size = 256 * 1024;
        const account = target!.users[2]!;
        // The slot URL is on another port than the page: the PUT is cross-origin (CORS preflight).
        const result = await page.evaluate(
          async ({ service, jid, password, size }) => {
            const natter = (window as unknown as { natter: typeof import('../src/index.js') }).natter;
            const client = natter.createClient({
              service,
              jid,
              password,
              plugins: { upload: natter.httpUpload({ allowInsecure: true }) },
            });
            await client.connect();
            try {
              const bytes = new Uint8Array(size).map((_, i) => i % 251);
              const progress: number[] = [];
              // Through the event, not an `onProgress` property: tsx would wrap a named arrow
              // function in a `__name` helper that does not exist in the page.
              client.plugins.upload.on('progress', (e) => progress.push(e.loaded));
              const url = await client.plugins.upload.upload(
                new Blob([bytes], { type: 'application/octet-stream' }),
                { filename: 'from-chromium.bin' },
              );
              return { url, progress };
            } finally {
              await client.disconnect();
            }
          },
          { service: target!.service.ws, jid: account.jid, password: account.password, size },
        );
        assert.ok(result.progress.length >= 2, `progress events: ${result.progress.join(', ')}`);
        assert.equal(result.progress.at(-1), size);
        const res = await fetch(result.url, { signal: AbortSignal.timeout(5000) });
        assert.equal(res.status, 200);
        const body = new Uint8Array(await res.arrayBuffer());
        assert.equal(body.length, size);
        assert.ok(
          body.every((b, i) => b === i % 251),
          'the GET returns the uploaded bytes',
        );
        assert.deepEqual(errors, []);
      } finally {
        await browser.close();
      }
    });
  });
}
