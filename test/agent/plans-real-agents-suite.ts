import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MusterClient } from '../../src/client/muster-client.js';
import type { PlanRecord } from '../../src/plans/plan-model.js';
import { ROOT, TEST_ADMIN_TOKEN, assertBuilt, muster, spawnMuster, startServerProcess } from '../cli/cli-harness.js';
import type { RunningCli, ServerProcess } from '../cli/cli-harness.js';
import { eventually, uniquePrefix } from '../conformance/harness.js';
import { spawnAgent } from '../support/agent-process.js';

/**
 * Plans on real machinery: a `muster server` process (SQLite, or etcd) and four
 * `muster agent` processes (db-1, web-1..3). Their one allowlisted command is a
 * recipe, a node script that does what docs/plans.md says a recipe does: it reads
 * what its node is to be in (`muster desired get GROUP --node $MUSTER_NODE --json`,
 * with the node's own token from the agent's state folder), converges (writes a
 * marker file) and reports (`muster state report GROUP STATE --version V`). Files
 * in the test's folder make a node's recipe fail (`fail-<node>`) or wait
 * (`hold-<node>`); every run appends what it did, with the time, to `recipe.log`.
 */

const RECIPE = `
import { execFileSync } from 'node:child_process';
import { appendFileSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
const group = process.argv[2];
const node = process.env.MUSTER_NODE;
const dir = process.env.RECIPE_DIR;
const log = (what, extra = {}) =>
  appendFileSync(join(dir, 'recipe.log'),
    JSON.stringify({ t: Date.now(), pid: process.pid, node, group, job: process.env.MUSTER_JOB_ID, what, ...extra }) + '\\n');
const token = readFileSync(process.env.RECIPE_TOKEN_FILE, 'utf8').trim();
const muster = (...args) =>
  execFileSync(process.execPath, [${JSON.stringify(join(ROOT, 'bin/muster.js'))}, ...args], {
    env: { ...process.env, MUSTER_TOKEN: token },
    encoding: 'utf8',
  });
log('start');
if (existsSync(join(dir, 'fail-' + node))) {
  log('fail');
  console.error('recipe: this node is told to fail');
  process.exit(1);
}
const hold = join(dir, 'hold-' + node);
if (existsSync(hold)) {
  log('hold');
  while (existsSync(hold)) await new Promise((r) => setTimeout(r, 100));
}
const { effective } = JSON.parse(muster('desired', 'get', group, '--node', node, '--json'));
if (!effective) {
  log('nothing');
  process.exit(0);
}
writeFileSync(join(dir, 'marker-' + node + '-' + group + '.json'), JSON.stringify(effective));
muster('state', 'report', group, effective.state, ...(effective.version ? ['--version', effective.version] : []));
log('reported', { state: effective.state, version: effective.version });
console.log(node + ' is ' + effective.state + ' ' + (effective.version ?? ''));
`;

interface LogEntry {
  readonly t: number;
  readonly pid: number;
  readonly node: string;
  readonly group: string;
  readonly job: string;
  readonly what: 'start' | 'fail' | 'hold' | 'nothing' | 'reported';
  readonly state?: string;
  readonly version?: string | null;
}

/** A step that moves a group to `version` (web: converged, db: migrated), its nodes poked with the recipe. */
const step = (group: 'web' | 'db', version: string, more: Record<string, unknown> = {}) => ({
  id: group,
  group,
  desired: { state: group === 'web' ? 'converged' : 'migrated', version },
  run: 'converge',
  args: [group],
  ...more,
});
/** A canary, then one node at a time. */
const ONE_BY_ONE = { rolling: { canary: 1, batch: 1 } };

const NODES = ['db-1', 'web-1', 'web-2', 'web-3'] as const;
const FINAL = ['complete', 'failed', 'aborted', 'rolled_back'];

export type StoreChoice = { readonly kind: 'sqlite' } | { readonly kind: 'etcd'; readonly endpoints: () => string[] };

/**
 * The cases, numbered as in issue 11's proof list (9: a node gone mid-plan); `only`
 * runs some of them (each sets up what it needs from the ones before it, or its own base).
 */
export function plansOnRealAgents(store: StoreChoice, only?: readonly number[]): void {
  const test = (n: number, title: string, body: () => Promise<void>) => {
    if (!only || only.includes(n)) it(`${n}. ${title}`, body);
  };
  const storeArgs = (() => {
    let args: string[] | undefined;
    return (dir: string) =>
      (args ??=
        store.kind === 'sqlite'
          ? ['--data-dir', join(dir, 'data')]
          : ['--etcd', store.endpoints().join(','), '--etcd-prefix', uniquePrefix()]);
  })();

  describe(
    `plans with a real server (${store.kind}) and four real agents running a real recipe`,
    { timeout: 120_000 },
    () => {
      let dir: string;
      let server: ServerProcess;
      let url: string;
      let admin: MusterClient;
      const agents = new Map<string, RunningCli>();

      const startServer = async (port: number | string = 0) => {
        server = await startServerProcess(storeArgs(dir), {}, port);
        url = server.url;
        admin = new MusterClient({ endpoints: url, token: TEST_ADMIN_TOKEN });
      };

      const startAgent = (name: string) => {
        const cli = spawnAgent({
          server: url,
          name,
          dir,
          attrs: { role: name.replace(/-\d+$/, '') },
          grace: '2s',
          env: {
            // The agent's own environment reaches its commands: the recipe finds the
            // server, this node's token (the agent's, in its state folder) and the test's folder.
            MUSTER_ENDPOINT: url,
            RECIPE_DIR: dir,
            RECIPE_TOKEN_FILE: join(dir, `state-${name}`, 'node.token'),
          },
        });
        agents.set(name, cli);
        return cli;
      };

      /** `muster ARGS` against the server, as the admin. */
      const cli = (args: readonly string[]) => muster(args, { env: { MUSTER_ENDPOINT: url } });

      const recipeLog = (): LogEntry[] => {
        const file = join(dir, 'recipe.log');
        if (!existsSync(file)) return [];
        return readFileSync(file, 'utf8')
          .split('\n')
          .filter(Boolean)
          .map((line) => JSON.parse(line) as LogEntry);
      };
      const entries = (since: number, what: LogEntry['what'], node?: string, group = 'web') =>
        recipeLog().filter((e) => e.t >= since && e.what === what && e.group === group && (!node || e.node === node));

      /** Until the recipe on `node` is holding (a hold file keeps it running), since `since`. */
      const untilHolding = (since: number, node: string, group = 'web', timeoutMs = 30_000) =>
        eventually(() => expect(entries(since, 'hold', node, group)).toHaveLength(1), timeoutMs, 100);

      /** `muster plan apply FILE` through the CLI (not following): the plan's id. */
      const applyFile = async (file: string) => {
        const applied = await cli(['plan', 'apply', file]);
        expect(applied.code, applied.stderr).toBe(0);
        return applied.stdout.trim();
      };

      const marker = (node: string, group = 'web') => {
        const file = join(dir, `marker-${node}-${group}.json`);
        return existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as { state: string; version: string }) : null;
      };

      const planFile = (name: string, plan: object) => {
        const file = join(dir, `${name}.json`);
        writeFileSync(file, JSON.stringify({ name, ...plan }, null, 2));
        return file;
      };

      /** Apply a plan through the client. */
      const apply = (name: string, plan: object) => admin.applyPlan(JSON.stringify({ name, ...plan }), `${name}.json`);

      const untilPlan = (id: string, check: (plan: PlanRecord) => void, timeoutMs = 60_000) =>
        eventually(
          async () => {
            const plan = await admin.getPlan(id);
            check(plan);
            return plan;
          },
          timeoutMs,
          200,
        );
      const finished = (id: string) => untilPlan(id, (p) => expect(FINAL).toContain(p.state));

      const touch = (name: string) => writeFileSync(join(dir, name), '');
      const remove = (name: string) => rmSync(join(dir, name), { force: true });
      const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

      /** Every web node reports `version` (its group's desired state), as `muster state web` says (exit 0). */
      const webConvergedTo = async (version: string) => {
        const status = await admin.groupStatus('web');
        expect(status.nodes.map((n) => `${n.node}:${n.version}:${n.converged}`)).toEqual(
          ['web-1', 'web-2', 'web-3'].map((n) => `${n}:${version}:true`),
        );
        for (const node of ['web-1', 'web-2', 'web-3']) expect(marker(node)?.version).toBe(version);
        const state = await cli(['state', 'web']);
        expect(state.code, state.stdout + state.stderr).toBe(0);
      };

      /** Run the recipe on a group's nodes as a plain job (no plan), and wait for it. */
      const converge = async (group: 'web' | 'db') => {
        const job = await admin.startJob({ query: `role:${group}`, command: 'converge', args: [group] });
        await eventually(async () => expect((await admin.getJob(job.id)).state).toBe('complete'), 60_000, 200);
      };

      /** Set the web group's desired state outside any plan, and converge every web node to it. */
      const base = async (version: string) => {
        expect((await cli(['desired', 'set', 'web', 'converged', '--version', version])).code).toBe(0);
        await converge('web');
        await webConvergedTo(version);
      };

      beforeAll(async () => {
        assertBuilt();
        dir = mkdtempSync(join(tmpdir(), 'muster-plans-agents-'));
        writeFileSync(join(dir, 'recipe.mjs'), RECIPE);
        writeFileSync(
          join(dir, 'allowlist.json'),
          JSON.stringify({ converge: { argv: [process.execPath, join(dir, 'recipe.mjs')], args: '^(web|db)$' } }),
        );
        await startServer();
        const { token } = await admin.createToken({ role: 'enrol', uses: NODES.length });
        writeFileSync(join(dir, 'enrol.token'), token);
        for (const name of NODES) startAgent(name);
        await eventually(
          async () =>
            expect((await admin.listNodes()).map((n) => `${n.name}:${n.status}`)).toEqual(NODES.map((n) => `${n}:up`)),
          45_000,
          200,
        );
        expect((await cli(['group', 'add', 'web', 'role:web'])).code).toBe(0);
        expect((await cli(['group', 'add', 'db', 'role:db'])).code).toBe(0);
      }, 90_000);

      afterAll(async () => {
        for (const agent of agents.values()) agent.child.kill('SIGKILL');
        server?.cli.child.kill('SIGKILL');
        await Promise.all([...agents.values(), server].filter(Boolean).map((p) => ('cli' in p ? p.cli : p).exited));
        if (dir) rmSync(dir, { recursive: true, force: true });
      });

      test(
        1,
        'ordering: a step starts only after the steps it comes after converged (muster plan apply --follow)',
        async () => {
          const since = Date.now();
          const file = planFile('release-v1', {
            steps: [step('db', 'v1'), step('web', 'v1', { after: ['db'] })],
          });
          const preview = await cli(['plan', 'apply', file, '--dry-run']);
          expect(preview.stdout).toBe(
            [
              'plan release-v1 (on failure: stop), in this order:',
              '1. db: group db: desired migrated v1, run converge db',
              '   batch 1: db-1',
              '2. web: group web after db: desired converged v1, run converge web',
              '   batch 1: web-1 web-2 web-3',
              '',
            ].join('\n'),
          );
          expect(await admin.listPlans()).toEqual([]);
          const applied = await cli(['plan', 'apply', file, '--follow']);
          expect(applied.code, applied.stdout + applied.stderr).toBe(0);
          expect(applied.stdout).toMatch(/release-v1: complete/);
          expect(applied.stdout).toMatch(/db \[db\]: complete/);
          expect(applied.stdout).toMatch(/batch 1: complete {2}web-1 web-2 web-3/);

          const dbDone = entries(since, 'reported', 'db-1', 'db');
          expect(dbDone.map((e) => e.version)).toEqual(['v1']);
          const webStarts = entries(since, 'start');
          expect(webStarts.map((e) => e.node).sort()).toEqual(['web-1', 'web-2', 'web-3']);
          // No web node's recipe started before db-1 had reported migrated v1.
          for (const start of webStarts) expect(start.t).toBeGreaterThan(dbDone[0]!.t);
          expect(marker('db-1', 'db')).toMatchObject({ state: 'migrated', version: 'v1' });
          await webConvergedTo('v1');

          const id = /plan (\S+) release-v1/.exec(applied.stdout)![1]!;
          const plan = await admin.getPlan(id);
          const [db, web] = plan.steps;
          expect(Date.parse(web!.startedAt!)).toBeGreaterThanOrEqual(Date.parse(db!.finishedAt!));
          expect(Date.parse(db!.batches[0]!.convergedAt!)).toBeGreaterThanOrEqual(dbDone[0]!.t - 1000);
        },
      );

      test(2, 'canary then batches: the canary is released and converges before the others start', async () => {
        const since = Date.now();
        touch('hold-web-1');
        const plan = await apply('canary-v2', {
          steps: [step('web', 'v2', { rolling: { canary: 1, batch: 2 } })],
        });
        await untilHolding(since, 'web-1');
        // The canary's recipe runs; the others are neither poked nor released yet.
        const during = await admin.getPlan(plan.id);
        expect(during.steps[0]!.batches.map((b) => `${b.nodes.join('+')}:${b.state}`)).toEqual([
          'web-1:running',
          'web-2+web-3:pending',
        ]);
        expect((await admin.effectiveDesired('web', 'web-1'))?.version).toBe('v2');
        expect((await admin.effectiveDesired('web', 'web-2'))?.version).toBe('v1');
        const got = await cli(['desired', 'get', 'web', '--node', 'web-3', '--json']);
        expect(JSON.parse(got.stdout)).toMatchObject({ desired: { version: 'v2' }, effective: { version: 'v1' } });
        remove('hold-web-1');

        const done = await finished(plan.id);
        expect(done.state).toBe('complete');
        const canary = entries(since, 'reported', 'web-1');
        expect(canary.map((e) => e.version)).toEqual(['v2']);
        const others = entries(since, 'start').filter((e) => e.node !== 'web-1');
        expect(others.map((e) => e.node).sort()).toEqual(['web-2', 'web-3']);
        for (const start of others) expect(start.t).toBeGreaterThan(canary[0]!.t);
        const [first, second] = done.steps[0]!.batches;
        expect(Date.parse(second!.startedAt!)).toBeGreaterThanOrEqual(Date.parse(first!.finishedAt!));
        expect(first!.jobId).not.toBe(second!.jobId);
        await webConvergedTo('v2');
        // The step is over: its rollout is cleared, every node (one joining later too) is to be in v2.
        expect((await admin.getDesired('web'))?.rollout ?? null).toBeNull();
      });

      test(3, 'a health gate holds the next batch until each node of the batch is healthy', async () => {
        const since = Date.now();
        const file = planFile('health-v3', {
          steps: [
            step('web', 'v3', {
              rolling: { canary: 1, batch: 2 },
              health: { key: '/health/{node}', equals: 'ok', timeout: '2m' },
            }),
          ],
        });
        const id = await applyFile(file);
        await untilPlan(id, (p) => expect(p.steps[0]!.batches[0]!.state).toBe('health'));
        expect(marker('web-1')?.version).toBe('v3');
        // Converged, but not healthy: the gate holds (several ticks of the runner).
        await sleep(3500);
        let plan = await admin.getPlan(id);
        expect(plan.steps[0]!.batches.map((b) => b.state)).toEqual(['health', 'pending']);
        expect(entries(since, 'start').map((e) => e.node)).toEqual(['web-1']);
        await admin.put('/health/web-1', 'ok');
        await untilPlan(id, (p) => expect(p.steps[0]!.batches[1]!.state).toBe('health'));
        // One node of the batch healthy, the other not (yet): still held.
        await admin.put('/health/web-2', 'ok');
        await admin.put('/health/web-3', 'starting');
        await sleep(2500);
        plan = await admin.getPlan(id);
        expect(plan.state).toBe('running');
        expect(plan.steps[0]!.batches[1]!.state).toBe('health');
        await admin.put('/health/web-3', 'ok');
        plan = await finished(id);
        expect(plan.state).toBe('complete');
        const released = Date.parse(plan.steps[0]!.batches[1]!.startedAt!);
        expect(released).toBeGreaterThanOrEqual(Date.parse(plan.steps[0]!.batches[0]!.convergedAt!) + 3500);
        await webConvergedTo('v3');
      });

      test(4, 'a failing node stops the plan (on_failure: stop): later batches and steps never start', async () => {
        const since = Date.now();
        touch('fail-web-2');
        try {
          const file = planFile('broken-v4', {
            on_failure: 'stop',
            steps: [step('web', 'v4', ONE_BY_ONE), step('db', 'v4', { after: ['web'] })],
          });
          const applied = await cli(['plan', 'apply', file, '--follow']);
          expect(applied.code, applied.stdout + applied.stderr).toBe(1);
          expect(applied.stdout).toMatch(/broken-v4: failed \(step web failed: batch 2 of 3: job \S+ failed/);
          const id = /plan (\S+) broken-v4/.exec(applied.stdout)![1]!;
          const plan = await admin.getPlan(id);
          expect(plan.state).toBe('failed');
          expect(plan.steps.map((s) => `${s.id}:${s.state}`)).toEqual(['web:failed', 'db:pending']);
          expect(plan.steps[0]!.batches.map((b) => `${b.nodes.join('+')}:${b.state}`)).toEqual([
            'web-1:complete',
            'web-2:failed',
            'web-3:pending',
          ]);
          const job = await admin.getJob(plan.steps[0]!.batches[1]!.jobId!);
          expect(job.nodeStates?.map((n) => `${n.node}:${n.state}:${n.exitCode}`)).toEqual(['web-2:failed:1']);
          // web-1 went to v4; web-2 failed; web-3 was never run, nor released; db never touched.
          expect(entries(since, 'reported').map((e) => `${e.node}:${e.version}`)).toEqual(['web-1:v4']);
          expect(entries(since, 'fail').map((e) => e.node)).toEqual(['web-2']);
          expect(entries(since, 'start', 'web-3')).toEqual([]);
          expect(entries(since, 'start', undefined, 'db')).toEqual([]);
          expect(marker('web-3')?.version).toBe('v3');
          expect((await admin.effectiveDesired('web', 'web-3'))?.version).toBe('v3');
          expect((await admin.getDesired('db'))?.version).toBe('v1');
        } finally {
          remove('fail-web-2');
        }
      });

      test(
        5,
        'rollback (on_failure: rollback) puts the previous desired states back; the recipe converges to them',
        async () => {
          await base('v5-base');
          const since = Date.now();
          touch('fail-web-3');
          try {
            const plan = await apply('rollback-v5', {
              on_failure: 'rollback',
              steps: [
                step('db', 'v5'),
                step('web', 'v5', {
                  after: ['db'],
                  desired: { state: 'converged', version: 'v5', params: { image: 'web:v5' } },
                  ...ONE_BY_ONE,
                }),
              ],
            });
            const done = await finished(plan.id);
            expect(done.state).toBe('rolled_back');
            expect(done.reason).toMatch(/step web failed: batch 3 of 3: job \S+ failed/);
            expect(entries(since, 'reported').map((e) => `${e.node}:${e.version}`)).toEqual(['web-1:v5', 'web-2:v5']);
            expect(marker('db-1', 'db')?.version).toBe('v5');
            // Both groups have their desired state from before the plan again, the rollout gone.
            const web = await admin.getDesired('web');
            expect(web).toMatchObject({ state: 'converged', version: 'v5-base', params: {} });
            expect(web?.rollout ?? null).toBeNull();
            expect(web?.setBy).toBe(`plan:${plan.id} (rollback)`);
            expect(await admin.getDesired('db')).toMatchObject({ state: 'migrated', version: 'v1' });
            // `muster state web` shows web-1 and web-2 off the desired state now (exit 1).
            expect((await cli(['state', 'web'])).code).toBe(1);
          } finally {
            remove('fail-web-3');
          }
          // The recipe's next run brings every node back to it.
          await converge('web');
          await converge('db');
          await webConvergedTo('v5-base');
          expect(marker('db-1', 'db')).toMatchObject({ state: 'migrated', version: 'v1' });
        },
      );

      test(6, 'pause and resume (muster plan pause|resume|status): no new batch starts while paused', async () => {
        const since = Date.now();
        touch('hold-web-1');
        const file = planFile('pause-v6', {
          steps: [step('web', 'v6', ONE_BY_ONE)],
        });
        const id = await applyFile(file);
        await untilHolding(since, 'web-1');
        const paused = await cli(['plan', 'pause', id]);
        expect(paused.code, paused.stderr).toBe(0);
        expect(paused.stdout).toMatch(new RegExp(`plan ${id}: pause requested`));
        await untilPlan(id, (p) => expect(p.state).toBe('paused'), 20_000);
        // The canary's running command goes on and converges; nothing new starts.
        remove('hold-web-1');
        await eventually(() => expect(entries(since, 'reported', 'web-1')).toHaveLength(1), 30_000, 100);
        await sleep(3000);
        const status = await cli(['plan', 'status', id]);
        expect(status.stdout).toMatch(/pause-v6: paused/);
        expect(status.stdout).toMatch(/batch 2: pending {2}web-2/);
        expect(entries(since, 'start').map((e) => e.node)).toEqual(['web-1']);
        const resumedAt = Date.now();
        const resumed = await cli(['plan', 'resume', id]);
        expect(resumed.code, resumed.stderr).toBe(0);
        const done = await finished(id);
        expect(done.state).toBe('complete');
        for (const node of ['web-2', 'web-3']) expect(entries(since, 'start', node)[0]!.t).toBeGreaterThan(resumedAt);
        await webConvergedTo('v6');
      });

      test(
        7,
        'a server killed (SIGKILL) mid-plan and started again: the plan finishes, --follow sees it through',
        async () => {
          const since = Date.now();
          touch('hold-web-2');
          const file = planFile('restart-v7', {
            steps: [step('web', 'v7', ONE_BY_ONE)],
          });
          const follow = spawnMuster(['plan', 'apply', file, '--follow'], { env: { MUSTER_ENDPOINT: url } });
          // A plain job followed by `muster run` lives through the restart as well.
          touch('hold-db-1');
          const run = spawnMuster(['run', 'role:db', 'converge', 'db'], { env: { MUSTER_ENDPOINT: url } });
          try {
            await untilHolding(since, 'web-2', 'web', 40_000);
            await untilHolding(since, 'db-1', 'db', 40_000);
            const port = new URL(url).port;
            server.cli.child.kill('SIGKILL');
            await server.cli.exited;
            await sleep(1000);
            await startServer(port);
            // The agents come back; the command web-2 runs for the plan outlives their old
            // sessions (the TTL is 3 s) and its job goes on. The recipe goes on once the
            // server is back (a real one would retry).
            await eventually(
              async () =>
                expect((await admin.listNodes()).map((n) => `${n.name}:${n.status}`)).toEqual(
                  NODES.map((n) => `${n}:up`),
                ),
              30_000,
              200,
            );
            await sleep(4000);
            expect((await admin.getPlan(/plan (\S+)/.exec(follow.stderr)![1]!)).state).toBe('running');
            remove('hold-web-2');
            remove('hold-db-1');
            const exit = await follow.exited;
            expect(exit.code, exit.stdout + exit.stderr).toBe(0);
            expect(exit.stdout).toMatch(/restart-v7: complete/);
            const ran = await run.exited;
            expect(ran.code, ran.stdout + ran.stderr).toBe(0);
            expect(ran.stderr).toMatch(/complete: 1 succeeded/);
          } finally {
            remove('hold-web-2');
            remove('hold-db-1');
            follow.child.kill('SIGKILL');
            run.child.kill('SIGKILL');
          }
          await webConvergedTo('v7');
          // Each node ran its recipe for the plan once: the restarted runner went on, it did not start over.
          expect(
            entries(since, 'start')
              .map((e) => e.node)
              .sort(),
          ).toEqual(['web-1', 'web-2', 'web-3']);
        },
      );

      test(
        8,
        'a node down when the plan starts is skipped; it returns mid-plan and follows the rollout without the plan',
        async () => {
          await base('v8-base');
          const since = Date.now();
          const before = 'v8-base';
          const web3 = agents.get('web-3')!;
          web3.child.kill('SIGTERM');
          expect((await web3.exited).code).toBe(0);
          await eventually(async () => expect((await admin.getNode('web-3')).status).toBe('down'), 15_000, 200);
          touch('hold-web-2');
          const plan = await apply('down-v8', {
            steps: [step('web', 'v8', ONE_BY_ONE)],
          });
          // What brings a returning node along is the node's own side: the recipe runs when
          // the node (re)registers, as at a machine's boot, and when the desired state changes
          // (a recipe that watches it); here both are triggers.
          const triggers = ['converge-on-join', 'converge-on-change'];
          try {
            await untilHolding(since, 'web-2');
            let running = await admin.getPlan(plan.id);
            expect(running.steps[0]!.skipped).toEqual(['web-3']);
            expect(running.steps[0]!.batches.map((b) => b.nodes.join('+'))).toEqual(['web-1', 'web-2']);
            expect(marker('web-3')?.version).toBe(before);
            for (const [name, on] of [
              ['converge-on-join', '/muster/nodes/'],
              ['converge-on-change', '/muster/desired/web'],
            ] as const) {
              // As docs/plans.md shows them.
              const added = await cli([
                'trigger',
                'add',
                name,
                '--on',
                on,
                '--run',
                'role:web',
                '--quorum',
                '1',
                'converge',
                'web',
                '--debounce',
                '1s',
              ]);
              expect(added.code, added.stderr).toBe(0);
            }
            startAgent('web-3');
            // Back while the rollout has not released it: its recipe keeps it on the previous state.
            await eventually(() => expect(entries(since, 'reported', 'web-3')).toHaveLength(1), 60_000, 200);
            expect(entries(since, 'reported', 'web-3')[0]!.version).toBe(before);
            running = await admin.getPlan(plan.id);
            expect(running.state).toBe('running');
            expect(running.steps[0]!.batches.flatMap((b) => b.nodes)).not.toContain('web-3');
            remove('hold-web-2');
            const done = await finished(plan.id);
            expect(done.state).toBe('complete');
            expect(done.steps[0]!.skipped).toEqual(['web-3']);
            // The step is over, the rollout cleared: web-3's recipe, run on that change, brings it to v8.
            await eventually(() => expect(marker('web-3')?.version).toBe('v8'), 60_000, 200);
            await eventually(() => webConvergedTo('v8'), 30_000, 500);
            const web3Runs = entries(since, 'start', 'web-3');
            // No job of the plan ran there.
            const planJobs = new Set(done.steps[0]!.batches.map((b) => b.jobId));
            expect(web3Runs.filter((e) => planJobs.has(e.job))).toEqual([]);
          } finally {
            remove('hold-web-2');
            for (const name of triggers) await admin.removeTrigger(name).catch(() => undefined);
          }
        },
      );

      test(
        9,
        'a node that goes down mid-plan, before its batch, is skipped then, and catches up on return',
        async () => {
          await base('v9-base');
          const since = Date.now();
          const before = 'v9-base';
          touch('hold-web-1');
          const plan = await apply('gone-v9', {
            steps: [step('web', 'v9', ONE_BY_ONE)],
          });
          try {
            await untilHolding(since, 'web-1');
            expect((await admin.getPlan(plan.id)).steps[0]!.batches.map((b) => b.nodes.join('+'))).toEqual([
              'web-1',
              'web-2',
              'web-3',
            ]);
            const web3 = agents.get('web-3')!;
            web3.child.kill('SIGTERM');
            expect((await web3.exited).code).toBe(0);
            await eventually(async () => expect((await admin.getNode('web-3')).status).toBe('down'), 15_000, 200);
            remove('hold-web-1');
            const done = await finished(plan.id);
            expect(done.state, done.reason).toBe('complete');
            expect(done.steps[0]!.skipped).toEqual(['web-3']);
            expect(done.steps[0]!.batches.map((b) => `${b.nodes.join('+')}:${b.state}:${b.reason ?? ''}`)).toEqual([
              'web-1:complete:',
              'web-2:complete:',
              ':complete:skipped (down): web-3',
            ]);
            expect(entries(since, 'start', 'web-3')).toEqual([]);
            expect(marker('web-3')?.version).toBe(before);
          } finally {
            remove('hold-web-1');
          }
          await admin.addTrigger({
            name: 'converge-on-join',
            on: '/muster/nodes/',
            debounce: '1s',
            job: { query: 'role:web', command: 'converge', args: ['web'] },
          });
          try {
            startAgent('web-3');
            await eventually(() => expect(marker('web-3')?.version).toBe('v9'), 60_000, 200);
            await eventually(() => webConvergedTo('v9'), 30_000, 500);
          } finally {
            await admin.removeTrigger('converge-on-join');
          }
        },
      );

      test(
        10,
        'abort (muster plan abort): the running job is aborted, its recipe stopped, nothing more starts',
        async () => {
          const since = Date.now();
          const before = marker('web-1')?.version;
          touch('hold-web-1');
          try {
            const file = planFile('abort-v10', { steps: [step('web', 'v10', ONE_BY_ONE)] });
            const id = await applyFile(file);
            await untilHolding(since, 'web-1');
            const aborted = await cli(['plan', 'abort', id]);
            expect(aborted.code, aborted.stderr).toBe(0);
            expect(aborted.stdout).toMatch(new RegExp(`plan ${id}: abort requested`));
            const done = await finished(id);
            expect(done.state).toBe('aborted');
            expect(done.steps[0]!.batches.map((b) => b.state)).toEqual(['aborted', 'pending', 'pending']);
            const job = await eventually(async () => {
              const view = await admin.getJob(done.steps[0]!.batches[0]!.jobId!);
              expect(view.state).toBe('aborted');
              return view;
            }, 30_000);
            expect(job.nodeStates?.map((n) => `${n.node}:${n.state}`)).toEqual(['web-1:aborted']);
            // The recipe was stopped while it held (the file is still there): it never went on.
            const { pid } = entries(since, 'hold', 'web-1')[0]!;
            await eventually(() => expect(() => process.kill(pid, 0)).toThrow(), 15_000, 100);
            remove('hold-web-1');
            await sleep(2000);
            expect(entries(since, 'reported')).toEqual([]);
            expect(entries(since, 'start').map((e) => e.node)).toEqual(['web-1']);
            expect(marker('web-1')?.version).toBe(before);
            const status = await cli(['plan', 'status', id]);
            expect(status.stdout).toMatch(/abort-v10: aborted \(aborted on request\)/);
            await expect(admin.abortPlan(id)).rejects.toMatchObject({ code: 'plan_conflict' });
          } finally {
            remove('hold-web-1');
          }
        },
      );
    },
  );
}
