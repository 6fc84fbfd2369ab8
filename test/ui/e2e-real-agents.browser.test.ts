import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { Browser, Page } from 'playwright-core';
import type { MusterClient } from '../../src/client/muster-client.js';
import type { MusterServer } from '../../src/server/muster-server.js';
import { defaultUiDir } from '../../src/server/ui/ui-assets.js';
import { assertBuilt, muster } from '../cli/cli-harness.js';
import type { RunningCli } from '../cli/cli-harness.js';
import { eventually } from '../conformance/harness.js';
import { spawnAgent, startServerForAgents } from '../support/agent-process.js';
import { launchBrowser, screenshot, strictPage } from './browser.js';

/**
 * The dashboard end to end with real agents (issue 12's proof): a real server with
 * auth on, three real `muster agent` processes enrolled with one enrolment token,
 * and headless Chromium. Sign in with the admin token, see the three agents up, run
 * a job of a real allowlisted command and watch its output arrive while it runs,
 * see a lock taken and released, browse the keys to a value, open a plan that runs
 * on the agents. Every step saves a screenshot in test-output/ui/e2e-*.png.
 *
 * Timeouts are for a loaded machine (two cores shared with other test runs); each
 * wait is bounded, so a step that never happens fails the test.
 */

const NODES = ['web-1', 'web-2', 'web-3'];
const WAIT = { timeout: 30_000 };

let dir: string;
let server: MusterServer;
let admin: MusterClient;
let browser: Browser;
let page: Page;
const agents: RunningCli[] = [];
const problems: string[] = [];
const adminToken = 'mst_00000000e2e1_' + 'U'.repeat(43);

beforeAll(async () => {
  assertBuilt();
  if (defaultUiDir() === null) throw new Error('the dashboard is not built: run `npm run build` first');
  dir = mkdtempSync(join(tmpdir(), 'muster-ui-e2e-'));
  writeFileSync(
    join(dir, 'allowlist.json'),
    JSON.stringify({
      // Eight lines over six seconds: output that arrives while the job runs.
      tick: { argv: ['sh', '-c', 'for i in 1 2 3 4 5 6 7 8; do echo "tick $i on $MUSTER_NODE"; sleep 0.75; done'] },
      hello: { argv: ['sh', '-c', 'echo "hello from $MUSTER_NODE"'] },
    }),
  );
  ({ server, admin } = await startServerForAgents(dir, adminToken, NODES.length));
  for (const name of NODES) {
    agents.push(
      spawnAgent({
        server: server.url,
        name,
        dir,
        attrs: { role: 'web' },
        tags: [name === 'web-1' ? 'canary' : 'main'],
        ttl: '5s',
      }),
    );
  }
  await eventually(async () => {
    const nodes = await admin.listNodes('role:web', { facts: false });
    expect(nodes.map((n) => `${n.name}:${n.status}`)).toEqual(NODES.map((n) => `${n}:up`));
  }, 45_000);
  browser = await launchBrowser();
  page = await strictPage(browser, problems);
}, 120_000);

afterAll(async () => {
  await browser?.close();
  for (const agent of agents) agent.child.kill('SIGKILL');
  await server?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('the dashboard with three real agents', () => {
  test('sign in with the admin token: the overview counts the three agents up', async () => {
    await page.goto(`${server.url}/ui/`);
    await page.getByLabel('Token').fill(adminToken);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('heading', { name: 'Overview' }).waitFor(WAIT);
    const nodesCard = page.locator('.card', { has: page.getByRole('heading', { name: 'Nodes', exact: true }) });
    await expect.poll(() => nodesCard.textContent(), WAIT).toMatch(/3 up · 0 down/);
    expect(await page.getByText(`admin · ${adminToken.slice(4, 16)}`).count()).toBe(1);
    await screenshot(page, 'e2e-overview');
  }, 60_000);

  test('nodes: the three agents up, and a node opens with the facts its agent detected', async () => {
    await page.getByRole('navigation', { name: 'Pages' }).getByRole('link', { name: 'Nodes' }).click();
    await page.getByText('3 nodes').waitFor(WAIT);
    const grid = page.getByRole('grid', { name: 'Nodes' });
    for (const name of NODES) {
      const row = grid.getByRole('row', { name: new RegExp(name) });
      await expect.poll(() => row.locator('.status-up').textContent(), WAIT).toBe('up');
    }
    await screenshot(page, 'e2e-nodes');
    // The list carries no facts; the node's own page fetches them.
    await grid.getByRole('row', { name: /web-2/ }).click();
    await page.getByRole('heading', { name: /web-2/ }).waitFor(WAIT);
    const facts = page.locator('pre.value-json');
    await expect.poll(() => facts.textContent(), WAIT).toContain('"commands"');
    expect(await facts.textContent()).toContain('"tick"');
    await screenshot(page, 'e2e-node');
    // The CLI agrees: the same three in its table, with facts in --json, without when asked.
    const env = { env: { MUSTER_ENDPOINT: server.url, MUSTER_TOKEN: adminToken } };
    const table = await muster(['nodes'], env);
    expect(table.code).toBe(0);
    expect(table.stdout.split('\n').slice(1, 4)).toEqual(
      NODES.map((n) => expect.stringMatching(new RegExp(`^${n}\\s+up\\s+now\\s+(canary|main)\\s+role=web\\s*$`))),
    );
    for (const [args, withFacts] of [
      [['nodes', '--json'], true],
      [['nodes', '--json', '--no-facts'], false],
    ] as const) {
      const cli = await muster(args, env);
      expect(cli.code).toBe(0);
      const listed = (JSON.parse(cli.stdout) as { nodes: Record<string, unknown>[] }).nodes;
      expect(listed.map((n) => [n.name, n.status, 'facts' in n])).toEqual(NODES.map((n) => [n, 'up', withFacts]));
    }
  }, 60_000);

  test("a job of a real command: its output arrives on the page while it runs, then it's complete", async () => {
    await page.getByRole('navigation', { name: 'Pages' }).getByRole('link', { name: 'Jobs' }).click();
    await page.getByRole('heading', { name: /Jobs/ }).waitFor(WAIT);
    const job = await admin.startJob({ query: 'role:web', command: 'tick', args: [] });
    await page.getByRole('link', { name: job.id }).click(WAIT);
    const heading = page.getByRole('heading', { name: new RegExp(`Job ${job.id}`) });
    await heading.waitFor(WAIT);
    const nodes = page.getByRole('grid', { name: "The job's nodes" });
    // The nodes appear once the job has left voting; pick web-2 and read its output.
    await nodes.getByRole('row', { name: /web-2/ }).click(WAIT);
    const output = page.locator('pre.output');
    await expect.poll(() => output.textContent(), WAIT).toContain('tick 1 on web-2');
    // Live: the first lines are on the page before the command has printed its last.
    const early = (await output.textContent()) ?? '';
    expect(early).not.toContain('tick 8');
    expect(await heading.textContent()).toMatch(/running/);
    await screenshot(page, 'e2e-job-running');
    await expect.poll(() => output.textContent(), WAIT).toContain('tick 8 on web-2');
    await expect.poll(() => heading.textContent(), WAIT).toMatch(/complete/);
    for (const name of NODES) {
      await expect
        .poll(() => nodes.getByRole('row', { name: new RegExp(name) }).textContent(), WAIT)
        .toMatch(/succeeded\s*0$/);
    }
    // Every line, once, in order.
    const lines = ((await output.textContent()) ?? '').split('\n').filter((l) => l !== '');
    expect(lines).toEqual([1, 2, 3, 4, 5, 6, 7, 8].map((i) => `tick ${i} on web-2`));
    await screenshot(page, 'e2e-jobs');
    // What the page showed is what the server kept.
    const kept = await admin.jobOutput(job.id, 'web-2');
    expect(kept.chunks.map((c) => c.data).join('')).toBe(lines.map((l) => `${l}\n`).join(''));
  }, 90_000);

  test('a lock taken elsewhere appears with its holder and fencing token, and goes when released', async () => {
    await page.getByRole('navigation', { name: 'Pages' }).getByRole('link', { name: 'Locks & elections' }).click();
    await page.getByRole('article', { name: 'election muster-duties' }).waitFor(WAIT);
    const lease = await admin.grantLease(30);
    const held = await admin.acquireLock('deploy-window', lease.id);
    const card = page.getByRole('article', { name: 'lock deploy-window' });
    await card.waitFor(WAIT);
    await expect.poll(() => card.locator('.token').first().textContent(), WAIT).toBe(String(held.token));
    // The holder (its key's last part) and its session, the lease.
    expect(await card.textContent()).toContain(held.key.split('/').pop()!);
    expect(await card.textContent()).toContain(lease.id);
    await screenshot(page, 'e2e-locks');
    await admin.releaseLock('deploy-window', held);
    await card.waitFor({ state: 'detached', ...WAIT });
    await admin.revokeLease(lease.id);
  }, 60_000);

  test('keys: the tree, down to a value shown pretty-printed', async () => {
    await admin.put('/config/web/release.json', JSON.stringify({ version: 'v42', canary: 'web-1' }));
    await page.getByRole('navigation', { name: 'Pages' }).getByRole('link', { name: 'Keys' }).click();
    await page.getByRole('link', { name: 'config/' }).click(WAIT);
    await page.getByRole('link', { name: 'web/' }).click(WAIT);
    await page.getByRole('link', { name: 'release.json' }).click(WAIT);
    await expect.poll(() => page.locator('pre.value').textContent(), WAIT).toContain('"version": "v42"');
    await screenshot(page, 'e2e-keys');
  }, 60_000);

  test('a plan applied with the client opens on the plans page and runs its batches on the agents', async () => {
    await admin.putGroup('web', 'role:web');
    const plan = await admin.applyPlan(
      'name: say-hello\nsteps:\n  - id: hello\n    group: web\n    run: hello\n    rolling: { canary: 1, batch: 2 }\n',
      'say-hello.yaml',
    );
    await page.getByRole('navigation', { name: 'Pages' }).getByRole('link', { name: 'Plans' }).click();
    await page.getByRole('link', { name: plan.id }).click(WAIT);
    const heading = page.getByRole('heading', { name: /Plan say-hello/ });
    await heading.waitFor(WAIT);
    const step = page.getByRole('article', { name: 'step hello' });
    await step.waitFor(WAIT);
    await expect.poll(() => heading.textContent(), WAIT).toMatch(/complete/);
    // The canary alone, then the other two, each batch a real job on real agents.
    await expect
      .poll(() => step.locator('ol.batches li').allTextContents(), WAIT)
      .toEqual([
        expect.stringMatching(/canary\s+complete 1 node\b/),
        expect.stringMatching(/batch 2\s+complete 2 nodes/),
      ]);
    await screenshot(page, 'e2e-plan');
    const record = await admin.getPlan(plan.id);
    expect(record.steps[0]?.batches.map((b) => b.nodes)).toEqual([['web-1'], ['web-2', 'web-3']]);
    const jobId = record.steps[0]?.batches[1]?.jobId;
    expect(jobId).toBeTruthy();
    expect((await admin.jobOutput(jobId!, 'web-3')).chunks.map((c) => c.data).join('')).toBe('hello from web-3\n');
    expect(problems).toEqual([]);
  }, 90_000);
});
