// The web chat page in headless Chromium (Debian's package, driven by playwright-core) against a
// real server: alice logs in through Converse's form over plain ws:// from loopback, chats with bob
// (a test client), and joins a room carol made; the page's CSP lets all of it run.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { Page } from 'playwright-core';
import { xml, type Element } from '@natter/xml';
import { startTestServer, type TestServer } from '../../../test/support/test-server.js';
import { TestClient } from '../../../test/support/test-client.js';
import { createRoom, isGroupchat, isPresenceFrom, groupchat } from '../../../test/support/muc.js';
import { ensureChromium, launchChromium } from '../../../../../test/support/chromium.js';

const PW = 'web-chat-password';
const ROOM = 'lobby@conference.localhost';
/** Bound on every wait for the page: Converse's first load parses about 1.3 MB of script. */
const UI_MS = 30_000;

const isChat = (body: string) => (e: Element) =>
  e.name === 'message' && e.attrs.type === 'chat' && e.getChildText('body') === body;

/** Types `text` into the message box of the open chat or room `box` and sends it with Enter. */
async function say(page: Page, box: string, text: string): Promise<void> {
  const textarea = page.locator(`${box} textarea.chat-textarea`);
  await textarea.waitFor({ state: 'visible', timeout: UI_MS });
  await textarea.fill(text);
  await textarea.press('Enter');
}

/** Waits until a message with exactly `text` shows in `box`. */
async function shows(page: Page, box: string, text: string): Promise<void> {
  await page
    .locator(`${box} .chat-msg__text`, { hasText: text })
    .first()
    .waitFor({ state: 'visible', timeout: UI_MS });
}

/** Opens the page and collects what should never happen there: script errors, CSP refusals, failed loads. */
async function openPage(browser: Browser, url: string): Promise<{ page: Page; problems: string[] }> {
  const page = await browser.context.newPage();
  const problems: string[] = [];
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  // A CSP violation is logged to the console as an error ("Refused to …").
  page.on('console', (m) => {
    if (m.type() === 'error' && /Content Security Policy|Refused to/i.test(m.text()))
      problems.push(`console: ${m.text()}`);
  });
  page.on('requestfailed', (r) => problems.push(`request failed: ${r.url()} ${r.failure()?.errorText}`));
  // Nothing from another site (Converse's footer would load sponsors' logos from conversejs.org).
  const origin = new URL(url).origin;
  page.on('request', (r) => {
    const u = new URL(r.url());
    if (u.origin !== origin && u.protocol !== 'data:' && u.protocol !== 'blob:')
      problems.push(`request to another site: ${r.url()}`);
  });
  const response = await page.goto(url);
  assert.equal(response?.status(), 200);
  return { page, problems };
}

/** Fills Converse's login form; the domain is locked to localhost, so the user name is enough. */
async function logIn(page: Page, user: string): Promise<void> {
  const jid = page.locator('#converse-login-jid');
  await jid.waitFor({ state: 'visible', timeout: UI_MS });
  await jid.fill(user);
  await page.locator('#converse-login-password').fill(PW);
  await page.locator('#converse-login button[type="submit"]').click();
}

type Browser = Awaited<ReturnType<typeof launchChromium>>;

describe('web-chat in headless Chromium: Converse against Natter', () => {
  let server: TestServer;
  let browser: Browser | undefined;
  let skip: string | undefined;
  const clients: TestClient[] = [];
  before(async () => {
    skip = await ensureChromium();
    if (skip) return;
    server = await startTestServer({
      modules: { 'web-chat': {}, ping: { idleMs: 0 } },
    });
    for (const u of ['alice', 'bob', 'carol']) await server.addUser(u, PW);
    // The https test server's certificate is a generated self-signed one.
    browser = await launchChromium({ ignoreHTTPSErrors: true });
  });
  after(async () => {
    for (const c of clients) c.kill();
    await browser?.close();
    await server?.destroy();
  });

  test('log in through Converse’s form over ws:// from loopback, chat both ways with a contact, join a room and talk there', async (t) => {
    if (skip) return t.skip(skip);
    const bob = await TestClient.login(server, 'bob', PW, { resource: 'node', presence: true });
    const carol = await TestClient.login(server, 'carol', PW, { resource: 'node', presence: true });
    clients.push(bob, carol);
    await createRoom(carol, ROOM, 'carol');

    const { page, problems } = await openPage(browser!, `http://127.0.0.1:${server.port('http')}/`);
    // The login screen's footer: Converse's name and version, without the remote logos.
    await page
      .locator('converse-footer', { hasText: 'an open-source XMPP chat client' })
      .waitFor({ state: 'visible', timeout: UI_MS });
    await logIn(page, 'alice');
    await page.locator('#converse-roster').waitFor({ state: 'attached', timeout: UI_MS });
    assert.equal(await page.locator('#converse-login').count(), 0, 'the login form is gone');

    // A chat with bob (Converse's URL route, as a link to a contact would open it).
    const chat = 'converse-chat[jid="bob@localhost"]';
    await page.evaluate(() => (location.hash = '#converse/chat?jid=bob@localhost'));
    await say(page, chat, 'hello bob, from the browser');
    const got = await bob.receive(isChat('hello bob, from the browser'), UI_MS);
    assert.match(got.attrs.from ?? '', /^alice@localhost\//);
    bob.send(
      xml('message', { to: 'alice@localhost', type: 'chat' }, xml('body', null, 'hi alice, from bob')),
    );
    await shows(page, chat, 'hi alice, from bob');

    // The room carol made: Converse joins under the user name (muc_nickname_from_jid).
    const room = `converse-muc[jid="${ROOM}"]`;
    await page.evaluate((r) => (location.hash = `#converse/room?jid=${r}`), ROOM);
    await carol.receive(isPresenceFrom(`${ROOM}/alice`), UI_MS);
    groupchat(carol, ROOM, 'welcome to the lobby, alice');
    await shows(page, room, 'welcome to the lobby, alice');
    await say(page, room, 'thanks, carol');
    await carol.receive(isGroupchat(`${ROOM}/alice`, 'thanks, carol'), UI_MS);

    assert.deepEqual(problems, []);
    await page.close();
  });

  test('where credentials may not travel over plain ws:// (auth.allowPlaintext), the page shows Converse’s error; over https it logs in (wss://)', async (t) => {
    if (skip) return t.skip(skip);
    const strict = await startTestServer({
      listeners: [
        { type: 'http', port: 0, host: '127.0.0.1' },
        { type: 'https', port: 0, host: '127.0.0.1' },
      ],
      modules: { 'web-chat': {} },
      auth: { allowPlaintext: 'never' },
    });
    try {
      await strict.addUser('alice', PW);
      const plain = await openPage(browser!, `http://127.0.0.1:${strict.port('http')}/`);
      await logIn(plain.page, 'alice');
      const feedback = plain.page.locator('#converse-login .conn-feedback:not(.d-none)');
      await feedback.waitFor({ state: 'visible', timeout: UI_MS });
      // Converse's words for "no SASL mechanism offered" (no-auth-mech, in version 14).
      assert.match((await feedback.textContent()) ?? '', /\S/);
      assert.equal(await plain.page.locator('#converse-roster').count(), 0);
      assert.deepEqual(plain.problems, []);
      await plain.page.close();

      const secure = await openPage(browser!, `https://127.0.0.1:${strict.port('https')}/`);
      await logIn(secure.page, 'alice');
      await secure.page.locator('#converse-roster').waitFor({ state: 'attached', timeout: UI_MS });
      assert.equal(strict.core.sessions.size, 1, 'alice’s session, over wss://');
      assert.deepEqual(secure.problems, []);
      await secure.page.close();
    } finally {
      await strict.destroy();
    }
  });
});
