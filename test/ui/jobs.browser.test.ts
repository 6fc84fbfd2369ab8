import { afterAll, beforeAll, expect, test } from 'vitest';
import type { Browser, Page } from 'playwright-core';
import { SimFleet } from '../../bench/sim-agents.js';
import { MusterServer } from '../../src/server/muster-server.js';
import { MusterClient } from '../../src/client/muster-client.js';
import { FakeDirectory } from '../jobs/fake-directory.js';
import { launchBrowser, screenshot, strictPage } from './browser.js';

/**
 * The jobs pages in headless Chromium: a job on three nodes (simulated agents
 * speaking the real protocol), its nodes' states and a node's output arriving live,
 * then a long job aborted from the page.
 */

let server: MusterServer;
let fleet: SimFleet;
let browser: Browser;
let page: Page;
let admin: MusterClient;
const problems: string[] = [];

beforeAll(async () => {
  const directory = new FakeDirectory();
  server = await MusterServer.start({
    store: { kind: 'sqlite', dataDir: ':memory:' },
    port: 0,
    logger: false,
    auth: 'off',
    nodeDirectory: directory,
    jobTickMs: 100,
  });
  admin = new MusterClient({ endpoints: server.url });
  fleet = new SimFleet(server.url);
  for (const node of ['web-1', 'web-2', 'web-3']) {
    directory.add(node, { tags: ['web'], attrs: { role: 'web' } });
    fleet.add(node, {
      deploy: { durationMs: 1500, output: ['fetching v42', 'restarting', 'done'] },
      sleep: { durationMs: 60_000 },
    });
  }
  await fleet.connectAll();
  browser = await launchBrowser();
  page = await strictPage(browser, problems);
}, 60_000);

afterAll(async () => {
  await browser?.close();
  await fleet?.close();
  await server?.stop();
});

test('a job: its nodes turn succeeded live, and a node shows its output', async () => {
  await page.goto(`${server.url}/ui/#/jobs`);
  await page.getByRole('heading', { name: /Jobs/ }).waitFor();
  const job = await admin.startJob({ query: 'role:web', command: 'deploy', args: [] });
  await page.getByRole('link', { name: job.id }).click();
  await page.getByRole('heading', { name: new RegExp(`Job ${job.id}`) }).waitFor();
  await page.getByRole('row', { name: /web-2/ }).click();
  await expect.poll(() => page.locator('pre.output').textContent(), { timeout: 30_000 }).toContain('done');
  await expect
    .poll(() => page.getByRole('heading', { name: new RegExp(`Job ${job.id}`) }).textContent(), { timeout: 30_000 })
    .toContain('complete');
  expect(await page.getByRole('grid', { name: "The job's nodes" }).getByText('succeeded').count()).toBe(3);
  await screenshot(page, 'jobs');
}, 90_000);

test('aborting a running job from its page', async () => {
  const job = await admin.startJob({ query: 'role:web', command: 'sleep', args: [], grace: '1s' });
  // From the finished job (a node selected) to the new one by its hash, while it is
  // still voting: the view must start afresh (it once kept the old node selected, read
  // its output in a job it had no part in yet, and showed only that 404).
  await page.goto(`${server.url}/ui/#/jobs/${job.id}`);
  await page.getByRole('heading', { name: new RegExp(`Job ${job.id}`) }).waitFor({ timeout: 30_000 });
  expect(await page.locator('.detail h2').textContent()).toBe('Output');
  await page.getByRole('button', { name: 'Abort job' }).click({ timeout: 30_000 });
  await expect
    .poll(() => page.getByRole('heading', { name: new RegExp(`Job ${job.id}`) }).textContent(), { timeout: 30_000 })
    .toContain('aborted');
  expect((await admin.getJob(job.id)).state).toBe('aborted');
  expect(problems).toEqual([]);
}, 90_000);
