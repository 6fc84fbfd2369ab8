import { afterEach, describe, expect, it } from 'vitest';
import { SimFleet } from '../../bench/sim-agents.js';
import { MusterClient } from '../../src/client/muster-client.js';
import { MusterServer } from '../../src/server/muster-server.js';
import { eventually, uniquePrefix } from '../conformance/harness.js';
import { etcdForFile } from '../support/etcd-harness.js';
import { FakeDirectory } from './fake-directory.js';

const etcd = etcdForFile();

/** Two servers on one etcd: one drives the jobs; when it stops, the other takes over mid-job. */
describe('push jobs across two servers (etcd)', () => {
  const cleanup: (() => Promise<void> | void)[] = [];
  afterEach(async () => {
    for (const step of cleanup.reverse()) await step();
    cleanup.length = 0;
  });

  it('the other server takes the scheduling over when the leading one stops mid-job', async () => {
    const directory = new FakeDirectory();
    const store = { kind: 'etcd' as const, endpoints: etcd.cluster().endpoints, prefix: uniquePrefix() };
    const options = { store, port: 0, logger: false as const, auth: 'off' as const, nodeDirectory: directory };
    const first = await MusterServer.start({ ...options, serverId: 'first', jobTickMs: 100, dutiesTtl: 2 });
    cleanup.push(() => first.stop());
    const client = new MusterClient({ endpoints: first.url });
    await eventually(async () => expect(first.duties.state).toBe('LEADING'));
    const second = await MusterServer.start({ ...options, serverId: 'second', jobTickMs: 100, dutiesTtl: 2 });
    cleanup.push(() => second.stop());
    expect(second.duties.state).not.toBe('LEADING');
    const fleet = new SimFleet(second.url);
    cleanup.push(() => fleet.close());
    for (const node of ['web-1', 'web-2', 'web-3']) {
      directory.add(node, { attrs: { role: 'web' } });
      fleet.add(node, { step: { durationMs: 600 } });
    }
    await fleet.connectAll();
    const started = await client.startJob({ query: 'role:web', command: 'step', concurrency: 1 });
    await eventually(async () => expect((await client.getJob(started.id)).counts.running).toBe(1));
    await first.stop();
    const other = new MusterClient({ endpoints: second.url });
    await eventually(async () => expect(second.duties.state).toBe('LEADING'), 10_000);
    const job = await eventually(async () => {
      const view = await other.getJob(started.id);
      expect(view.state).toBe('complete');
      return view;
    }, 15_000);
    expect(job.counts.succeeded).toBe(3);
    expect(fleet.agents.every((a) => a.started.length === 1)).toBe(true);
  });
});
