import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MusterClient } from '../../src/client/muster-client.js';
import type { MusterServer } from '../../src/server/muster-server.js';
import { assertBuilt } from '../cli/cli-harness.js';
import type { RunningCli } from '../cli/cli-harness.js';
import { eventually } from '../conformance/harness.js';
import { spawnAgent, startServerForAgents } from '../support/agent-process.js';

/**
 * Jobs with three real `muster agent` processes: a node token sees only its own
 * jobs, and a trigger coalesces 20 quick changes into at most 2 runs of a real command.
 */
describe('push jobs with three real agents', () => {
  let server: MusterServer;
  let admin: MusterClient;
  let dir: string;
  const agents: RunningCli[] = [];
  const adminToken = 'mst_00000000a9e2_' + 'R'.repeat(43);

  beforeAll(async () => {
    assertBuilt();
    dir = mkdtempSync(join(tmpdir(), 'muster-jobs-agents-'));
    writeFileSync(
      join(dir, 'allowlist.json'),
      JSON.stringify({
        converge: { argv: ['sh', '-c', 'echo converging on $MUSTER_NODE; sleep 0.5'] },
        hello: { argv: ['echo', 'hello'] },
      }),
    );
    ({ server, admin } = await startServerForAgents(dir, adminToken, 3));
    for (const name of ['lb-1', 'lb-2', 'db-1']) {
      agents.push(spawnAgent({ server: server.url, name, dir, attrs: { role: name.slice(0, 2) } }));
    }
    await eventually(async () => {
      const nodes = await admin.listNodes();
      expect(nodes.map((n) => `${n.name}:${n.status}`)).toEqual(['db-1:up', 'lb-1:up', 'lb-2:up']);
    }, 30_000);
  }, 60_000);

  afterAll(async () => {
    for (const cli of agents) cli.child.kill('SIGKILL');
    await server?.stop();
  });

  it('a node token sees only the jobs it has a part in', async () => {
    const lbJob = await admin.startJob({ query: 'role:lb', command: 'hello' });
    const dbJob = await admin.startJob({ query: 'role:db', command: 'hello' });
    for (const id of [lbJob.id, dbJob.id]) {
      await eventually(async () => expect((await admin.getJob(id)).state).toBe('complete'), 20_000);
    }
    const nodeToken = readFileSync(join(dir, 'state-lb-1', 'node.token'), 'utf8').trim();
    const lb1 = new MusterClient({ endpoints: server.url, token: nodeToken });
    expect((await lb1.listJobs()).map((j) => j.id)).toEqual([lbJob.id]);
    expect((await lb1.getJob(lbJob.id)).nodeStates?.map((n) => n.node)).toEqual(['lb-1']);
    await expect(lb1.getJob(dbJob.id)).rejects.toMatchObject({ code: 'job_not_found' });
    await expect(lb1.jobOutput(lbJob.id, 'lb-2')).rejects.toMatchObject({ code: 'forbidden' });
    expect((await lb1.jobOutput(lbJob.id, 'lb-1')).chunks.map((c) => c.data).join('')).toBe('hello\n');
    await expect(lb1.startJob({ query: 'role:db', command: 'hello' })).rejects.toMatchObject({ code: 'forbidden' });
  }, 60_000);

  it('a trigger coalesces 20 quick changes into at most 2 runs', async () => {
    await admin.addTrigger({
      name: 'converge-lb',
      on: '/ephemerals/backends/',
      debounce: '1s',
      job: { query: 'role:lb', command: 'converge' },
    });
    for (let i = 0; i < 20; i++) await admin.put(`/ephemerals/backends/b${i}`, `10.0.0.${i}`);
    await eventually(
      async () => expect((await admin.getTrigger('converge-lb')).jobs?.length).toBeGreaterThan(0),
      20_000,
    );
    // Long enough for any further window to close and its run to end.
    await new Promise((resolve) => setTimeout(resolve, 4000));
    const jobs = (await admin.getTrigger('converge-lb')).jobs ?? [];
    expect(jobs.length).toBeGreaterThanOrEqual(1);
    expect(jobs.length).toBeLessThanOrEqual(2);
    for (const id of jobs) {
      const job = await eventually(async () => {
        const view = await admin.getJob(id);
        expect(view.state).toBe('complete');
        return view;
      }, 20_000);
      expect(job.counts.succeeded).toBe(2);
      const output = await admin.jobOutput(id, 'lb-2');
      expect(output.chunks.map((c) => c.data).join('')).toBe('converging on lb-2\n');
    }
  }, 60_000);
});
