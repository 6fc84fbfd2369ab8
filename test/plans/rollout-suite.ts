/**
 * A rolling step gates recipes that follow the desired state (not only the jobs
 * that poke them): the nodes not released yet are told the previous state.
 * rollout.sqlite.test.ts and rollout.etcd.test.ts run it on each store.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { BackendConfig } from '../../src/backends/create-backend.js';
import { MusterClient } from '../../src/client/muster-client.js';
import { MusterServer } from '../../src/server/muster-server.js';
import { eventually } from '../conformance/harness.js';
import { FakeDirectory } from '../jobs/fake-directory.js';

export function describeRollout(name: string, makeStore: () => Promise<BackendConfig>): void {
  describe(`a rolling step and recipes that follow the desired state (${name})`, () => {
    const cleanup: (() => Promise<void> | void)[] = [];
    afterEach(async () => {
      for (const step of cleanup.reverse()) await step();
      cleanup.length = 0;
    });

    it('holds the nodes not yet released in the previous state; all move once the step is over', async () => {
      const directory = new FakeDirectory();
      const server = await MusterServer.start({
        store: await makeStore(),
        port: 0,
        logger: false,
        auth: 'off',
        nodeDirectory: directory,
        planTickMs: 50,
        dutiesTtl: 3,
      });
      cleanup.push(() => server.stop());
      const client = new MusterClient({ endpoints: server.url });
      const nodes = ['web-1', 'web-2', 'web-3', 'web-4', 'web-5'];
      for (const node of nodes) directory.add(node, { attrs: { role: 'web' } });
      await client.putGroup('web', 'role:web');
      await client.setDesired('web', { state: 'converged', version: 'v41' });
      // Each node's recipe: converge to what it is to be in now, and report it (no job pokes it).
      const reported = new Map<string, string[]>();
      let running = true;
      const recipes = (async () => {
        while (running) {
          for (const node of directory.nodes.keys()) {
            const target = await client.effectiveDesired('web', node);
            if (!target) continue;
            await client.reportState('web', node, target.state, target.version);
            const seen = reported.get(node) ?? [];
            if (seen.at(-1) !== target.version) reported.set(node, [...seen, target.version ?? '']);
          }
          await new Promise((r) => setTimeout(r, 30));
        }
      })();
      cleanup.push(async () => {
        running = false;
        await recipes;
      });
      const plan = await client.applyPlan(
        'name: p\nsteps:\n  - id: web\n    group: web\n    desired: { state: converged, version: v42 }\n' +
          '    until: converged\n    rolling: { canary: 1, batch: 2 }\n' +
          '    health: { key: "/health/{node}", equals: ok, timeout: 1m }\n',
      );
      await eventually(async () => {
        expect((await client.getPlan(plan.id)).steps[0]?.batches[0]?.state).toBe('health');
      }, 10_000);
      await new Promise((r) => setTimeout(r, 400));
      // The canary is held at the health gate: only it has moved.
      expect(reported.get('web-1')).toEqual(['v41', 'v42']);
      for (const node of nodes.slice(1)) {
        expect(reported.get(node), node).toEqual(['v41']);
        expect((await client.effectiveDesired('web', node))?.version).toBe('v41');
      }
      expect((await client.getDesired('web'))?.rollout?.released).toEqual(['web-1']);
      for (const node of nodes) await client.put(`/health/${node}`, 'ok');
      await eventually(async () => expect((await client.getPlan(plan.id)).state).toBe('complete'), 15_000);
      expect((await client.getDesired('web'))?.rollout).toBeNull();
      // A node that joins now is to be in the new state at once.
      directory.add('web-6', { attrs: { role: 'web' } });
      expect((await client.effectiveDesired('web', 'web-6'))?.version).toBe('v42');
      await eventually(async () => {
        const status = await client.groupStatus('web');
        expect(status.nodes.map((n) => [n.node, n.converged])).toEqual([...nodes, 'web-6'].map((n) => [n, true]));
      }, 10_000);
    });
  });
}
