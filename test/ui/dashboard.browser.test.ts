import { existsSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { Browser, Page } from 'playwright-core';
import { MusterServer } from '../../src/server/muster-server.js';
import { MusterClient } from '../../src/client/muster-client.js';
import { defaultUiDir } from '../../src/server/ui/ui-assets.js';
import { launchBrowser, screenshot, strictPage } from './browser.js';

/**
 * The dashboard in headless Chromium against a real server: sign in with a token,
 * see the overview, browse keys, watch a lock be taken and released, sign out.
 * Every page must load without a script error or a CSP violation.
 */

let server: MusterServer;
let browser: Browser;
let page: Page;
let admin: MusterClient;
let adminToken: string;
const problems: string[] = [];

beforeAll(async () => {
  if (defaultUiDir() === null) throw new Error('the dashboard is not built: run `npm run build` first');
  server = await MusterServer.start({
    store: { kind: 'sqlite', dataDir: ':memory:' },
    port: 0,
    logger: false,
    auth: { adminTokenFile: null },
  });
  if (server.adminOutcome?.kind !== 'printed') throw new Error('expected a printed admin token');
  adminToken = server.adminOutcome.token;
  admin = new MusterClient({ endpoints: server.url, token: adminToken });
  browser = await launchBrowser();
  page = await strictPage(browser, problems);
}, 60_000);

afterAll(async () => {
  await browser?.close();
  await server?.stop();
});

describe('the dashboard in a browser', () => {
  test('signing in: a wrong token is refused, the right one shows the overview; no token in storage', async () => {
    await page.goto(`${server.url}/ui/`);
    await page.getByLabel('Token').fill('mst_0123456789ab_' + 'x'.repeat(43));
    await page.getByRole('button', { name: 'Sign in' }).click();
    await expect.poll(() => page.getByRole('alert').textContent()).toMatch(/not valid|token/i);
    await page.getByLabel('Token').fill(adminToken);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('heading', { name: 'Overview' }).waitFor();
    const cookies = await page.context().cookies();
    const session = cookies.find((c) => c.name === 'muster_session');
    expect(session?.httpOnly).toBe(true);
    expect(session?.sameSite).toBe('Strict');
    const stored = await page.evaluate<string>(
      'JSON.stringify({ ...localStorage }) + JSON.stringify({ ...sessionStorage })',
    );
    expect(stored).not.toContain(adminToken.slice(4, 20));
    // Changes appear live on the overview.
    await admin.put('/config/db/host', '10.0.0.5');
    await page.getByText('/config/db/host').first().waitFor();
    await page.getByText('live').first().waitFor();
    await screenshot(page, 'overview');
  });

  test('keys: the tree, a value pretty-printed, its revisions', async () => {
    await admin.put('/config/app.json', JSON.stringify({ replicas: 3, image: 'web:v42' }));
    await admin.put('/config/app.json', JSON.stringify({ replicas: 4, image: 'web:v42' }));
    await page.getByRole('link', { name: 'Keys' }).click();
    await page.getByRole('link', { name: 'config/' }).click();
    await page.getByRole('link', { name: 'app.json' }).click();
    const value = page.locator('pre.value');
    await expect.poll(() => value.textContent()).toContain('"replicas": 4');
    await page.getByRole('button', { name: 'Show its revisions' }).click();
    await expect.poll(() => page.locator('.detail ol.events li').count()).toBe(2);
    await screenshot(page, 'keys');
  });

  test('locks: a lock taken elsewhere appears with its fencing token, and goes when released', async () => {
    await page.getByRole('link', { name: 'Locks & elections' }).click();
    // The server's own duties election is there from the start.
    await page.getByRole('article', { name: 'election muster-duties' }).waitFor();
    const lease = await admin.grantLease(30);
    const held = await admin.acquireLock('db-migrate', lease.id);
    const card = page.getByRole('article', { name: 'lock db-migrate' });
    await card.waitFor();
    await expect.poll(() => card.locator('.token').first().textContent()).toBe(String(held.token));
    await screenshot(page, 'locks');
    await admin.releaseLock('db-migrate', held);
    await card.waitFor({ state: 'detached' });
  });

  test('signing out ends the session: the next load asks for a token again', async () => {
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByLabel('Token').waitFor();
    await page.reload();
    await page.getByLabel('Token').waitFor();
    expect(problems).toEqual([]);
  });
});

test('the built dashboard is where the server looks for it', () => {
  expect(existsSync(`${defaultUiDir()}/index.html`)).toBe(true);
});
