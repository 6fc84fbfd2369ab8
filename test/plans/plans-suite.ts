/**
 * The plan runner on a real server, against simulated agents (the real job
 * protocol) whose `chef-client` reads its group's desired state and reports it,
 * as a recipe would. plans.sqlite.test.ts and plans.etcd.test.ts run it on each store.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { SimFleet } from '../../bench/sim-agents.js';
import type { SimBehaviour } from '../../bench/sim-agents.js';
import type { BackendConfig } from '../../src/backends/create-backend.js';
import { MusterClient } from '../../src/client/muster-client.js';
import type { PlanRecord } from '../../src/client/plan-types.js';
import { MusterServer } from '../../src/server/muster-server.js';
import { eventually } from '../conformance/harness.js';
import { FakeDirectory } from '../jobs/fake-directory.js';

export type StoreFactory = (durable?: boolean) => Promise<BackendConfig>;

const GROUPS: Record<string, string[]> = {
  db: ['db-1', 'db-2'],
  web: ['web-1', 'web-2', 'web-3', 'web-4', 'web-5'],
  lb: ['lb-1'],
};
const groupOf = (node: string) => node.split('-')[0] as string;

const PLAN = (extra = '', web = '') => `name: release-v42
${extra}
steps:
  - id: db
    group: db
    desired: { state: migrated, version: v42 }
    run: chef-client
    timeout: 30s
  - id: web
    after: [db]
    group: web
    desired: { state: converged, version: v42 }
    run: chef-client
    timeout: 30s
    rolling: { canary: 1, batch: 2 }
${web}
  - id: lb
    after: [web]
    group: lb
    desired: { state: converged, version: v42 }
    run: chef-client
    timeout: 30s
`;

export function describePlans(name: string, makeStore: StoreFactory): void {
  describe(`plans (${name})`, () => {
    const cleanup: (() => Promise<void> | void)[] = [];
    afterEach(async () => {
      for (const step of cleanup.reverse()) await step();
      cleanup.length = 0;
    });

    async function setup(options: { durable?: boolean; failing?: Set<string>; down?: string[] } = {}) {
      const directory = new FakeDirectory();
      const store = await makeStore(options.durable);
      const start = () =>
        MusterServer.start({
          store,
          port: 0,
          logger: false,
          auth: 'off',
          nodeDirectory: directory,
          jobTickMs: 50,
          planTickMs: 50,
          dutiesTtl: 3,
        });
      let server = await start();
      cleanup.push(() => server.stop());
      let client = new MusterClient({ endpoints: server.url });
      /** Each job the runner started, with the nodes it was for, in order. */
      const runs: { node: string; job: string }[] = [];
      const chef: SimBehaviour = {
        durationMs: 20,
        output: ['converging'],
        effect: async (node, assignment) => {
          runs.push({ node, job: assignment.jobId });
          if (options.failing?.has(node)) {
            await client.reportState(groupOf(node), node, 'failed');
            return 1;
          }
          const desired = await client.getDesired(groupOf(node));
          if (desired) await client.reportState(groupOf(node), node, desired.state, desired.version);
        },
      };
      const fleet = new SimFleet(server.url);
      cleanup.push(() => fleet.close());
      for (const [group, nodes] of Object.entries(GROUPS)) {
        await client.putGroup(group, `role:${group}`);
        for (const node of nodes) {
          directory.add(node, { attrs: { role: group }, up: !options.down?.includes(node) });
          if (!options.down?.includes(node)) fleet.add(node, { 'chef-client': chef });
        }
      }
      await fleet.connectAll();
      return {
        directory,
        runs,
        get client() {
          return client;
        },
        get server() {
          return server;
        },
        async restart() {
          await server.stop();
          server = await start();
          client = new MusterClient({ endpoints: server.url });
          return server;
        },
        async finished(id: string, timeoutMs = 20_000): Promise<PlanRecord> {
          let plan: PlanRecord | undefined;
          await eventually(async () => {
            plan = await client.getPlan(id);
            expect(['complete', 'failed', 'aborted', 'rolled_back']).toContain(plan.state);
          }, timeoutMs);
          return plan as PlanRecord;
        },
      };
    }

    it('runs the steps in order, the canary first and then batches, and every node converges', async () => {
      const t = await setup();
      const preview = await t.client.previewPlan(PLAN(), 'release.yaml');
      expect(preview.steps.map((s) => [s.id, s.batches])).toEqual([
        ['db', [['db-1', 'db-2']]],
        ['web', [['web-1'], ['web-2', 'web-3'], ['web-4', 'web-5']]],
        ['lb', [['lb-1']]],
      ]);
      expect(await t.client.listPlans()).toEqual([]);
      const plan = await t.client.applyPlan(PLAN(), 'release.yaml');
      const done = await t.finished(plan.id);
      expect(done.state).toBe('complete');
      // Each batch's job ran on exactly its nodes, one batch after the other, steps in order.
      const jobs = [...new Set(t.runs.map((r) => r.job))];
      const byJob = jobs.map((job) =>
        t.runs
          .filter((r) => r.job === job)
          .map((r) => r.node)
          .sort(),
      );
      expect(byJob).toEqual([['db-1', 'db-2'], ['web-1'], ['web-2', 'web-3'], ['web-4', 'web-5'], ['lb-1']]);
      const web = done.steps.find((s) => s.id === 'web')!;
      const db = done.steps.find((s) => s.id === 'db')!;
      expect(Date.parse(web.startedAt!)).toBeGreaterThanOrEqual(Date.parse(db.finishedAt!));
      for (let i = 1; i < web.batches.length; i++) {
        expect(Date.parse(web.batches[i]!.startedAt!)).toBeGreaterThanOrEqual(
          Date.parse(web.batches[i - 1]!.finishedAt!),
        );
      }
      for (const group of Object.keys(GROUPS)) {
        const status = await t.client.groupStatus(group);
        expect(
          status.nodes.every((n) => n.converged),
          group,
        ).toBe(true);
      }
      expect((await t.client.getDesired('web'))?.version).toBe('v42');
    });

    it('holds a batch at the health gate until its nodes are healthy', async () => {
      const t = await setup();
      const web = '    health: { key: "/health/{node}", equals: ok, timeout: 1m }';
      const plan = await t.client.applyPlan(PLAN('', web));
      await eventually(async () => {
        const p = await t.client.getPlan(plan.id);
        expect(p.steps[1]!.batches[0]?.state).toBe('health');
      }, 15_000);
      await new Promise((r) => setTimeout(r, 500));
      // Still held: the canary is not healthy, no other batch has started.
      const held = await t.client.getPlan(plan.id);
      expect(held.steps[1]!.batches.map((b) => b.state)).toEqual(['health', 'pending', 'pending']);
      for (const node of GROUPS.web!) await t.client.put(`/health/${node}`, 'ok');
      expect((await t.finished(plan.id)).state).toBe('complete');
    });

    it('a failing node stops the plan: later batches and steps never start', async () => {
      const t = await setup({ failing: new Set(['web-2']) });
      const plan = await t.client.applyPlan(PLAN());
      const done = await t.finished(plan.id);
      expect(done.state).toBe('failed');
      expect(done.reason).toMatch(/step web failed: batch 2 of 3/);
      expect(done.steps.map((s) => s.state)).toEqual(['complete', 'failed', 'pending']);
      expect(t.runs.some((r) => r.node === 'lb-1' || r.node === 'web-4')).toBe(false);
    });

    it('on_failure rollback puts back the desired states the plan changed', async () => {
      const t = await setup({ failing: new Set(['web-3']) });
      await t.client.setDesired('web', { state: 'converged', version: 'v41' });
      const plan = await t.client.applyPlan(PLAN('on_failure: rollback'));
      const done = await t.finished(plan.id);
      expect(done.state).toBe('rolled_back');
      expect((await t.client.getDesired('web'))?.version).toBe('v41');
      // db had no desired state before the plan: it has none again.
      expect(await t.client.getDesired('db')).toBeNull();
    });

    it('pause holds the next batch; resume goes on; abort ends it', async () => {
      const t = await setup();
      const web = '    health: { key: "/health/{node}", equals: ok, timeout: 1m }';
      const plan = await t.client.applyPlan(PLAN('', web));
      await eventually(async () => {
        expect((await t.client.getPlan(plan.id)).steps[1]!.batches[0]?.state).toBe('health');
      }, 15_000);
      expect((await t.client.pausePlan(plan.id)).pauseRequested).toBe(true);
      await eventually(async () => expect((await t.client.getPlan(plan.id)).state).toBe('paused'));
      for (const node of GROUPS.web!) await t.client.put(`/health/${node}`, 'ok');
      await new Promise((r) => setTimeout(r, 400));
      expect((await t.client.getPlan(plan.id)).steps[1]!.batches[1]!.state).toBe('pending');
      await expect(t.client.resumePlan('0000000000-000000')).rejects.toMatchObject({ code: 'plan_not_found' });
      await t.client.resumePlan(plan.id);
      expect((await t.finished(plan.id)).state).toBe('complete');
      await expect(t.client.abortPlan(plan.id)).rejects.toMatchObject({ code: 'plan_conflict' });
    });

    it('a server restarted mid-plan picks the plan up where it was', async () => {
      const t = await setup({ durable: true });
      const web = '    health: { key: "/health/{node}", equals: ok, timeout: 1m }';
      const plan = await t.client.applyPlan(PLAN('', web));
      await eventually(async () => {
        expect((await t.client.getPlan(plan.id)).steps[1]!.batches[0]?.state).toBe('health');
      }, 15_000);
      const server = await t.restart();
      const fleet = new SimFleet(server.url);
      cleanup.push(() => fleet.close());
      for (const node of GROUPS.web!) await t.client.put(`/health/${node}`, 'ok');
      // The agents of the first server are gone with it: the new fleet runs the rest.
      const rest: SimBehaviour = {
        effect: async (node) => {
          const desired = await t.client.getDesired(groupOf(node));
          if (desired) await t.client.reportState(groupOf(node), node, desired.state, desired.version);
        },
      };
      for (const node of [...GROUPS.web!, ...GROUPS.lb!]) fleet.add(node, { 'chef-client': rest });
      await fleet.connectAll();
      expect((await t.finished(plan.id)).state).toBe('complete');
    });

    it('a node down during the plan is skipped, and converges from the desired state when it returns', async () => {
      const t = await setup({ down: ['web-5'] });
      const plan = await t.client.applyPlan(PLAN());
      const done = await t.finished(plan.id);
      expect(done.state).toBe('complete');
      expect(done.steps[1]!.skipped).toEqual(['web-5']);
      expect((await t.client.groupStatus('web')).nodes.find((n) => n.node === 'web-5')?.converged).toBe(false);
      // It comes back: its recipe reads the group's desired state and reports it.
      t.directory.setUp('web-5', true);
      const desired = await t.client.getDesired('web');
      await t.client.reportState('web', 'web-5', desired!.state, desired!.version);
      expect((await t.client.groupStatus('web')).nodes.every((n) => n.converged)).toBe(true);
    });

    it('a bad plan is a 400 naming the line, an unknown group a 404; neither is stored', async () => {
      const t = await setup();
      const cycle =
        'name: p\nsteps:\n  - id: a\n    group: web\n    run: x\n    after: [b]\n  - id: b\n    group: web\n    run: x\n    after: [a]\n';
      await expect(t.client.applyPlan(cycle, 'p.yaml')).rejects.toMatchObject({ code: 'invalid_plan' });
      await expect(
        t.client.applyPlan('name: p\nsteps:\n  - id: a\n    group: nope\n    run: x\n'),
      ).rejects.toMatchObject({
        code: 'group_not_found',
      });
      expect(await t.client.listPlans()).toEqual([]);
      const res = await fetch(`${t.server.url}/v1/plans`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ source: 'x', extra: 1 }),
      });
      expect(res.status).toBe(400);
      const state = await fetch(`${t.server.url}/v1/state/web/web-1`, {
        method: 'PUT',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ state: 'bad state!' }),
      });
      expect(state.status).toBe(400);
      expect((await t.client.groupStatus('web')).nodes.every((n) => n.state === null)).toBe(true);
    });
  });
}
