import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import type { Browser, Page } from 'playwright-core';
import { CHROMIUM_INSTALL_HINT, findChromium } from '../support/find-chromium.js';

/** Where the browser tests leave their screenshots (git-ignored). */
export const SCREENSHOTS = join(process.cwd(), 'test-output', 'ui');

/** Headless Chromium (Debian's), or a failure saying how to install it. */
export async function launchBrowser(): Promise<Browser> {
  const executablePath = findChromium();
  if (executablePath === null) {
    throw new Error(`the dashboard's browser tests need Chromium; install it: ${CHROMIUM_INSTALL_HINT}`);
  }
  mkdirSync(SCREENSHOTS, { recursive: true });
  // Root in a container has no user namespace for Chromium's sandbox.
  return chromium.launch({ executablePath, headless: true, args: ['--no-sandbox', '--disable-dev-shm-usage'] });
}

/** A page that fails the test on any script error or CSP violation it reports. */
export async function strictPage(browser: Browser, problems: string[]): Promise<Page> {
  const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
  page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
  page.on('console', (message) => {
    const text = message.text();
    // A 401 while signed out is how the page learns it must show the sign-in form.
    if (message.type() === 'error' && !/401 \(Unauthorized\)/.test(text)) problems.push(`console: ${text}`);
  });
  return page;
}

export async function screenshot(page: Page, name: string): Promise<string> {
  const path = join(SCREENSHOTS, `${name}.png`);
  await page.screenshot({ path, fullPage: true });
  return path;
}
