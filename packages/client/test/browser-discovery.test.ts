// The browser build finds the WebSocket endpoint from the domain alone (XEP-0156 host-meta,
// served by Natter's http listener to a page of another origin: CORS) and connects, in headless
// Chromium (Debian's package, driven by playwright-core).
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { bundleForBrowser, servePage, type TestPage } from './browser-bundle.js';
import { startNatter } from './natter.js';
import type { Target } from './target.js';
import { ensureChromium, launchChromium } from '../../../test/support/chromium.js';

describe('browser client: endpoint from host-meta (XEP-0156) in headless Chromium (natter)', () => {
  let target: Target | undefined;
  let page: TestPage | undefined;
  let skip: string | undefined;
  before(async () => {
    skip = await ensureChromium();
    if (skip) return;
    target = await startNatter({ users: 2 });
    const b = await bundleForBrowser();
    page = await servePage(b.code);
  });
  after(async () => {
    await page?.close();
    await target?.stop();
  });

  test('createClient with a JID and no service: host-meta gives the WebSocket URL, the client connects', async (t) => {
    if (skip) return t.skip(skip);
    const browser = await launchChromium();
    try {
      const tab = browser.context.pages()[0] ?? (await browser.context.newPage());
      const errors: string[] = [];
      tab.on('pageerror', (e) => errors.push(e.message));
      await tab.goto(page!.url);
      await tab.waitForFunction(() => (window as unknown as { ready?: boolean }).ready === true, undefined, {
        timeout: 10000,
      });
      const account = target!.users[0]!;
      // The http listener of the test server is plain HTTP on another port: the page's origin differs.
      const base = new URL(target!.service.ws.replace(/^ws/, 'http')).origin;
      // A string, not a function: the test runner's transform would name the arrow functions with a
      // helper the page does not have.
      const got = (await tab.evaluate(`(async () => {
        const natter = window.natter;
        const client = natter.createClient({
          jid: ${JSON.stringify(account.jid)},
          password: ${JSON.stringify(account.password)},
          resource: 'discovered',
          discover: natter.hostMetaResolver({ base: () => ${JSON.stringify(base)}, allowInsecure: true }),
        });
        const full = await client.connect();
        const service = client.service;
        await client.disconnect();
        return { full: full.toString(), service };
      })()`)) as { full: string; service: string };
      // Bind2 (XEP-0386): the server's resource starts with the one asked for.
      assert.ok(got.full.startsWith(`${account.jid}/discovered.`), got.full);
      assert.equal(got.service, target!.service.ws);
      assert.deepEqual(errors, []);
    } finally {
      await browser.close();
    }
  });
});
