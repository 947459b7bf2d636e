// Headless Chromium for browser tests: Debian's package (installed with apt on demand, through the
// shared recipe and lock), driven by playwright-core, which downloads no browser of its own.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { BrowserContext } from 'playwright-core';
import { ensureDebianPackages } from './debian-packages.js';

export const CHROMIUM = '/usr/bin/chromium';

/** Installs Debian's chromium when missing; a reason to skip when that fails, else undefined. */
export async function ensureChromium(): Promise<string | undefined> {
  try {
    await ensureDebianPackages(CHROMIUM, ['chromium']);
    return undefined;
  } catch (err) {
    return `chromium could not be installed with apt: ${(err as Error).message}`;
  }
}

/**
 * A headless Chromium with a fresh profile; `close()` ends it and removes the profile.
 * `ignoreHTTPSErrors`: accept any certificate (a test server's self-signed one), for pages and
 * WebSockets alike.
 */
export async function launchChromium(
  opts: { ignoreHTTPSErrors?: boolean } = {},
): Promise<{ context: BrowserContext; close(): Promise<void> }> {
  const { chromium } = await import('playwright-core');
  const profile = await mkdtemp(join(tmpdir(), 'natter-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    ignoreHTTPSErrors: opts.ignoreHTTPSErrors ?? false,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--no-first-run',
    ],
  });
  return {
    context,
    async close() {
      await context.close();
      await rm(profile, { recursive: true, force: true });
    },
  };
}
