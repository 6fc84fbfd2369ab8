/**
 * Regressions: a step timeout the jobs would refuse is refused in the plan file;
 * a plan that no longer parses ends failed instead of holding up the plans after
 * it; a step that set its desired state but whose plan record was not saved (a
 * restart between the two writes) keeps the real previous desired state for rollback;
 * a batch started again after such a restart gets its first job back.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { SqliteBackend } from '../../src/backends/sqlite/sqlite-backend.js';
import { MusterClient } from '../../src/client/muster-client.js';
import { virtualRuntime } from '../../src/core/runtime.js';
import { FleetState } from '../../src/plans/fleet-state.js';
import { encodeJson, planKeys } from '../../src/plans/plan-model.js';
import type { PlanRecord } from '../../src/plans/plan-model.js';
import { PlanRunner } from '../../src/plans/plan-runner.js';
import { parsePlan } from '../../src/plans/plan-spec.js';
import { PlanStore } from '../../src/plans/plan-store.js';
import { MusterServer } from '../../src/server/muster-server.js';
import { eventually } from '../conformance/harness.js';
import { FakeDirectory } from '../jobs/fake-directory.js';
import { leadingContext } from '../support/duty-context.js';

const cleanup: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const step of cleanup.reverse()) await step();
  cleanup.length = 0;
});

/** A store with one node, web-1, in the group web; a plan store and a leading plan runner on it. */
async function planFixture() {
  const backend = SqliteBackend.open({ dataDir: ':memory:' });
  cleanup.push(() => backend.close());
  const runtime = virtualRuntime(7);
  const directory = new FakeDirectory();
  directory.add('web-1', { attrs: { role: 'web' } });
  const fleet = new FleetState(backend, runtime.clock, directory);
  await fleet.putGroup('web', 'role:web');
  const store = new PlanStore(backend, runtime);
  const runner = new PlanRunner(leadingContext(backend, runtime), { directory });
  return { backend, fleet, store, runner };
}

const step = (timeout: string) =>
  `name: p\nsteps:\n  - id: web\n    group: web\n    run: chef-client\n    timeout: ${timeout}\n`;

describe('plan fixes', () => {
  it('refuses a step timeout of 0 or above 7 days (its job would be refused), naming the line', () => {
    expect(() => parsePlan(step('8d'), 'p.yaml')).toThrow(/p\.yaml:6: .*timeout must be more than 0 and at most 7d/);
    expect(() => parsePlan(step('0s'), 'p.yaml')).toThrow(/p\.yaml:6: .*timeout must be more than 0 and at most 7d/);
    expect(parsePlan(step('7d'), 'p.yaml').steps[0]?.timeoutMs).toBe(7 * 86_400_000);
  });

  it('a stored plan that no longer parses ends failed, and the plans after it still run', async () => {
    const directory = new FakeDirectory();
    const server = await MusterServer.start({
      store: { kind: 'sqlite', dataDir: ':memory:' },
      port: 0,
      logger: false,
      auth: 'off',
      nodeDirectory: directory,
      planTickMs: 50,
      dutiesTtl: 3,
      onDutyError: () => undefined,
    });
    cleanup.push(() => server.stop());
    const client = new MusterClient({ endpoints: server.url });
    await client.putGroup('web', 'role:web');
    // As an older server with looser checks would have stored it; first in key order.
    const poisoned: PlanRecord = {
      id: '000000000-000000',
      name: 'old',
      source: step('8d'),
      onFailure: 'stop',
      state: 'running',
      steps: [{ id: 'web', group: 'web', after: [], state: 'pending', batches: [], skipped: [], setDesired: false }],
      createdAt: new Date().toISOString(),
      createdBy: 'test',
    };
    await server.backend.put(planKeys.plan(poisoned.id), encodeJson(poisoned));
    const good = await client.applyPlan(
      'name: good\nsteps:\n  - id: web\n    group: web\n    desired: { state: up }\n',
    );
    await eventually(async () => {
      expect((await client.getPlan(good.id)).state).toBe('complete');
      const old = await client.getPlan(poisoned.id);
      expect(old.state).toBe('failed');
      expect(old.reason).toMatch(/not valid \(any more\).*timeout must be more than 0 and at most 7d/);
    }, 10_000);
  });

  it('a step re-run after its desired state was set (record not saved) keeps the real previous state', async () => {
    const { fleet, store, runner } = await planFixture();
    await fleet.setDesired('web', { state: 'converged', version: 'v41', params: {} }, 'operator');
    const source = 'name: p\nsteps:\n  - id: web\n    group: web\n    desired: { state: converged, version: v42 }\n';
    const plan = await store.create(source, 'p.yaml', 'test', fleet);
    // The first attempt set the desired state, then the server died before saving the plan.
    await runner.advance(structuredClone(plan));
    expect((await fleet.getDesired('web'))?.version).toBe('v42');
    // The next leader starts the step again from the stored (unchanged) record.
    const again = await runner.advance(structuredClone(plan));
    expect(again.steps[0]?.previousDesired).toEqual({ state: 'converged', version: 'v41', params: {} });
    const desired = await fleet.getDesired('web');
    expect(desired?.version).toBe('v42');
    expect(desired?.previous?.version).toBe('v41');
  });

  it('a batch started again after a restart lost the plan record gets its first job back, not a second', async () => {
    const { backend, fleet, store, runner } = await planFixture();
    const plan = await store.create(step('5m'), 'p.yaml', 'test', fleet);
    // The batch's job was created, then the server died before saving the plan.
    const first = await runner.advance(structuredClone(plan));
    const jobId = first.steps[0]?.batches[0]?.jobId;
    expect(jobId).toBeDefined();
    // The next leader starts the batch again from the stored (unchanged) record.
    const again = await runner.advance(structuredClone(plan));
    expect(again.steps[0]?.batches[0]?.jobId).toBe(jobId);
    const jobs = await backend.range({ key: '/muster/job-index/', prefix: true, keysOnly: true });
    expect(jobs.kvs.map((kv) => kv.key)).toEqual([`/muster/job-index/${jobId}`]);
  });
});

describe('a node token and its group desired state', () => {
  it('may read, wait on and watch /muster/desired/<group> (a recipe does), and write none of it', async () => {
    const server = await MusterServer.start({
      store: { kind: 'sqlite', dataDir: ':memory:' },
      port: 0,
      logger: false,
      auth: { adminTokenFile: null },
      nodeDirectory: new FakeDirectory(),
      dutiesTtl: 3,
    });
    cleanup.push(() => server.stop());
    const tokens = server.tokens!;
    const admin = new MusterClient({ endpoints: server.url, token: (await tokens.create({ role: 'admin' })).token });
    const nodeToken = (await tokens.create({ role: 'node', node: 'web-1' })).token;
    const call = (method: string, path: string, body?: unknown) =>
      fetch(server.url + path, {
        method,
        headers: {
          authorization: `Bearer ${nodeToken}`,
          ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
        },
        ...(body !== undefined ? { body: typeof body === 'string' ? body : JSON.stringify(body) } : {}),
      });
    await admin.putGroup('web', 'role:web');
    await admin.setDesired('web', { state: 'converged', version: 'v42' });
    const get = await call('GET', '/v1/kv/muster/desired/web');
    expect(get.status).toBe(200);
    const wait = await call('GET', '/v1/wait/muster/desired/web?exists=true&timeout=1s');
    expect(wait.status).toBe(200);
    const stop = new AbortController();
    const watch = await fetch(server.url + '/v1/watch/muster/desired/web', {
      headers: { authorization: `Bearer ${nodeToken}` },
      signal: stop.signal,
    });
    expect(watch.status).toBe(200);
    stop.abort();
    expect((await call('PUT', '/v1/kv/muster/desired/web', '{}')).status).toBe(403);
    expect((await call('PUT', '/v1/desired/web', { state: 'x' })).status).toBe(403);
    expect((await call('GET', '/v1/kv/muster/plans/x')).status).toBe(403);
    expect((await call('GET', '/v1/kv/muster/groups/web')).status).toBe(403);
  });
});
