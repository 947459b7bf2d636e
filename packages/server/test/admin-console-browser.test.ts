// The web console in headless Chromium (Debian's package, driven by playwright-core): an admin
// logs in, reads the dashboard, adds and disables an account, ends a live session. With
// NATTER_SCREENSHOTS=1 it also writes docs/images/console-*.png (CI leaves them as they are).
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Browser, Page } from 'playwright-core';
import { ensureDebianPackages } from '../../../test/support/debian-packages.js';
import { ADMIN_COMMANDS } from '../src/admin/commands.js';
import { runCommand } from '../src/admin/registry.js';
import { startTestServer, type TestServer } from './support/test-server.js';
import { TestClient } from './support/test-client.js';

const CHROMIUM = '/usr/bin/chromium';
const PW = 'console-browser-pw';
const WAIT = { timeout: 10_000 };
const SCREENSHOTS = process.env.NATTER_SCREENSHOTS === '1';
const IMAGES = fileURLToPath(new URL('../../../docs/images/', import.meta.url));

async function loginFails(server: TestServer, user: string, password: string): Promise<string> {
  try {
    const c = await TestClient.login(server, user, password);
    await c.close();
  } catch (err) {
    return (err as { condition: string }).condition;
  }
  assert.fail(`${user} could log in`);
}

describe('the web console in headless Chromium', () => {
  let server: TestServer;
  let browser: Browser | undefined;
  let page: Page;
  let skip: string | undefined;
  const problems: string[] = [];
  let carol: TestClient;

  before(async () => {
    try {
      await ensureDebianPackages(CHROMIUM, ['chromium']);
    } catch (err) {
      skip = `chromium is not installed and apt could not provide it: ${(err as Error).message}`;
      return;
    }
    server = await startTestServer({
      admins: ['admin@localhost'],
      modules: { ping: { idleMs: 0 } },
    });
    for (const u of ['admin', 'alice', 'bob', 'carol']) await server.addUser(u, PW);
    carol = await TestClient.login(server, 'carol', PW, { resource: 'laptop', presence: true });
    const { chromium } = await import('playwright-core');
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: [
        '--no-sandbox',
        '--disable-gpu',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
        '--no-first-run',
      ],
    });
    page = await browser.newPage({ viewport: { width: 1280, height: 720 } });
    // A CSP violation, a script error or a failed request would show here.
    page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
    page.on('console', (m) => {
      // The refused logins (and the first look for a session) are 401 answers: expected.
      if (m.type() === 'error' && !/status of 401/.test(m.text())) problems.push(`console: ${m.text()}`);
    });
  });

  after(async () => {
    await browser?.close();
    await carol?.close().catch(() => undefined);
    await server?.destroy();
  });

  const ready = (name: string) =>
    page.waitForSelector(`section[data-page="${name}"][data-state="ready"]`, WAIT);
  const shot = async (name: string) => {
    if (!SCREENSHOTS) return;
    mkdirSync(IMAGES, { recursive: true });
    await page.screenshot({ path: `${IMAGES}console-${name}.png`, fullPage: true });
  };

  test('an admin logs in and the dashboard shows what server.stats says', async (t) => {
    if (skip) return t.skip(skip);
    await page.goto(`http://127.0.0.1:${server.port('admin')}/console/`);
    await page.waitForSelector('#login-form', { state: 'visible', ...WAIT });
    await page.fill('#login-jid', 'admin@localhost');
    await page.fill('#login-password', 'not the password');
    await page.click('#login-form button[type=submit]');
    await page.waitForFunction(
      () => document.getElementById('login-error')!.textContent !== '',
      undefined,
      WAIT,
    );
    assert.match((await page.textContent('#login-error')) ?? '', /wrong JID or password/);
    await page.fill('#login-password', PW);
    await page.click('#login-form button[type=submit]');
    await ready('dashboard');
    assert.equal(await page.textContent('#whoami'), 'admin@localhost');
    const stats = (await runCommand(
      server.core,
      ADMIN_COMMANDS.find((c) => c.id === 'server.stats')!,
      {},
      {
        via: 'cli',
      },
    )) as {
      hosts: { registered: number; online: number; sessions: number; disabled: number }[];
      components: number;
    };
    const shown = async (k: string) => page.textContent(`[data-stat="${k}"]`);
    assert.equal(await shown('registered'), String(stats.hosts[0]!.registered));
    assert.equal(await shown('registered'), '4');
    assert.equal(await shown('online'), String(stats.hosts[0]!.online));
    assert.equal(await shown('sessions'), String(stats.hosts[0]!.sessions));
    assert.equal(await shown('sessions'), '1');
    assert.equal(await shown('disabled'), '0');
    assert.equal(await shown('components'), String(stats.components));
    await shot('dashboard');
  });

  test('an account added through the form and disabled with a reason can no longer log in (account-disabled)', async (t) => {
    if (skip) return t.skip(skip);
    await page.click('a[data-nav="users"]');
    await ready('users');
    await page.fill('#add-jid', 'dave@localhost');
    await page.fill('#add-password', 'dave-pw');
    await page.click('#user-add button[type=submit]');
    await page.waitForSelector('button[data-manage="dave@localhost"]', WAIT);
    assert.equal(await server.core.accounts.exists('dave', 'localhost'), true);
    // Dave can log in before he is disabled.
    await (await TestClient.login(server, 'dave', 'dave-pw')).close();
    await page.click('button[data-manage="dave@localhost"]');
    await page.waitForSelector('#user-detail', { state: 'visible', ...WAIT });
    assert.equal(await page.textContent('#detail-jid'), 'dave@localhost');
    await page.fill('#disable-reason', 'left the company');
    await page.click('#user-disable button[type=submit]');
    await page.waitForFunction(
      () => document.getElementById('message')!.textContent!.startsWith('Disabled dave@localhost'),
      undefined,
      WAIT,
    );
    await page.waitForSelector('#user-enable:not([hidden])', WAIT);
    assert.match((await page.textContent('#detail-status')) ?? '', /Disabled since .*left the company/);
    assert.equal(await loginFails(server, 'dave', 'dave-pw'), 'account-disabled');
    const info = await server.core.accounts.info('dave', 'localhost');
    assert.equal(info?.disabled?.reason, 'left the company');
    await shot('users');
  });

  test('a live session is listed and ended from the sessions page', async (t) => {
    if (skip) return t.skip(skip);
    await page.click('a[data-nav="sessions"]');
    await ready('sessions');
    const end = `button[data-end="${carol.jid}"]`;
    await page.waitForSelector(end, WAIT);
    assert.equal(carol.jid, 'carol@localhost/laptop');
    await shot('sessions');
    await page.click(end);
    await carol.waitClosed(10_000);
    await page.waitForSelector(end, { state: 'detached', ...WAIT });
    assert.match(
      (await page.textContent('#message')) ?? '',
      /1 session\(s\) of carol@localhost\/laptop ended/,
    );
    assert.equal(server.core.sessions.size, 0);
  });

  test('the other pages draw without errors; logging out shows the login form', async (t) => {
    if (skip) return t.skip(skip);
    for (const name of ['rooms', 's2s', 'components', 'config', 'logs']) {
      await page.click(`a[data-nav="${name}"]`);
      await ready(name);
    }
    assert.match((await page.textContent('#config-json')) ?? '', /"admins": \[\s*"admin@localhost"/);
    await page.click('#logout');
    await page.waitForSelector('#login-form', { state: 'visible', ...WAIT });
    assert.deepEqual(problems, []);
  });
});
