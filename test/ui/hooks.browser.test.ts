import { createServer } from 'node:http';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, expect, test } from 'vitest';
import type { Browser, Page } from 'playwright-core';
import { MusterServer } from '../../src/server/muster-server.js';
import { MusterClient } from '../../src/client/muster-client.js';
import { eventually } from '../conformance/harness.js';
import { launchBrowser, screenshot, strictPage } from './browser.js';

/** The hooks page: a delivering hook and a failing one, a delivery log, pause and resume from the page. */
let server: MusterServer;
let receiver: Server;
let browser: Browser;
let page: Page;
let admin: MusterClient;
const problems: string[] = [];

beforeAll(async () => {
  receiver = createServer((req, res) => {
    req.resume();
    req.on('end', () => res.writeHead(204).end());
  });
  await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
  server = await MusterServer.start({
    store: { kind: 'sqlite', dataDir: ':memory:' },
    port: 0,
    logger: false,
    auth: 'off',
  });
  admin = new MusterClient({ endpoints: server.url });
  const port = (receiver.address() as AddressInfo).port;
  await admin.addHook({ name: 'ci', prefix: '/ephemerals/', url: `http://127.0.0.1:${port}/hook` });
  // Nobody listens on port 9: every attempt fails.
  await admin.addHook({ name: 'dead', prefix: '/ephemerals/', url: 'http://127.0.0.1:9/hook' });
  await admin.put('/ephemerals/build', '42');
  await eventually(async () => expect((await admin.getHook('ci')).delivered).toBe(1), 20_000);
  browser = await launchBrowser();
  page = await strictPage(browser, problems);
}, 60_000);

afterAll(async () => {
  await browser?.close();
  await server?.stop();
  receiver?.close();
});

test('hooks: status, failures and the delivery log; pause and resume from the page', async () => {
  await page.goto(`${server.url}/ui/#/hooks`);
  const ci = page.getByRole('row', { name: /^ci / });
  await ci.waitFor();
  expect(await ci.textContent()).toContain('active');
  await page.getByRole('button', { name: 'ci', exact: true }).click();
  await page.getByRole('heading', { name: 'Deliveries of ci' }).waitFor();
  await page.locator('td.ok', { hasText: '204' }).first().waitFor();
  await screenshot(page, 'hooks');
  await ci.getByRole('button', { name: 'Pause' }).click();
  await eventually(async () => expect((await admin.getHook('ci')).status).toBe('paused'));
  await ci.getByRole('button', { name: 'Resume' }).waitFor();
  await ci.getByRole('button', { name: 'Resume' }).click();
  await eventually(async () => expect((await admin.getHook('ci')).status).not.toBe('paused'));
  const dead = page.getByRole('row', { name: /^dead / });
  await page.getByRole('button', { name: 'Refresh' }).click();
  await expect.poll(async () => Number((await admin.getHook('dead')).failures)).toBeGreaterThan(0);
  await page.getByRole('button', { name: 'Refresh' }).click();
  await expect.poll(async () => dead.textContent()).toMatch(/connect|refused|fetch|ECONN/i);
  expect(problems).toEqual([]);
});
