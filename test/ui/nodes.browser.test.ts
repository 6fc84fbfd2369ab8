import { afterAll, beforeAll, expect, test } from 'vitest';
import type { Browser, Page } from 'playwright-core';
import { MusterServer } from '../../src/server/muster-server.js';
import { launchBrowser, screenshot, strictPage } from './browser.js';
import { writeFleet } from '../../bench/fleet.js';

/** The nodes page with 10,000 nodes: every one in the (virtualised) table, the last one reachable by scrolling. */
let server: MusterServer;
let browser: Browser;
let page: Page;
const problems: string[] = [];

beforeAll(async () => {
  server = await MusterServer.start({
    store: { kind: 'sqlite', dataDir: ':memory:' },
    port: 0,
    logger: false,
    auth: 'off',
  });
  await writeFleet(server.backend, 10_000);
  browser = await launchBrowser();
  page = await strictPage(browser, problems);
}, 120_000);

afterAll(async () => {
  await browser?.close();
  await server?.stop();
});

test('10,000 nodes: counted, rendered virtualised, scrolled to the last one; a query narrows them', async () => {
  await page.goto(`${server.url}/ui/#/nodes`);
  await page.getByText('10000 nodes').waitFor({ timeout: 30_000 });
  expect(await page.getByText(/6667 up/).count()).toBe(1);
  // Virtualised: only the rows in view (and a few around) are in the page.
  const rendered = await page.locator('.vspace > .vrow').count();
  expect(rendered).toBeGreaterThan(5);
  expect(rendered).toBeLessThan(100);
  const grid = page.getByRole('grid', { name: 'Nodes' });
  expect(await grid.getAttribute('aria-rowcount')).toBe('10001');
  await page.locator('.vbox').focus();
  await page.keyboard.press('End');
  await page.getByText('node-09999').waitFor();
  await screenshot(page, 'nodes');
  await page.getByLabel('Query').fill('tag:canary AND role:web');
  await page.getByRole('button', { name: 'Find' }).click();
  await page.getByText(/^334 nodes/).waitFor();
  await page.keyboard.press('Tab');
  expect(problems).toEqual([]);
});
