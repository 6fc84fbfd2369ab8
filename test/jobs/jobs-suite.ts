/**
 * The scheduler, the routes and the client against simulated agents (the real
 * protocol over HTTP), on one store; jobs.sqlite.test.ts and jobs.etcd.test.ts
 * run it on each.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { SimFleet } from '../../bench/sim-agents.js';
import type { SimBehaviour } from '../../bench/sim-agents.js';
import type { BackendConfig } from '../../src/backends/create-backend.js';
import { MusterClient } from '../../src/client/muster-client.js';
import type { JobEvent, JobView } from '../../src/client/job-types.js';
import { MusterServer } from '../../src/server/muster-server.js';
import type { MusterServerOptions } from '../../src/server/muster-server.js';
import { eventually } from '../conformance/harness.js';
import { FakeDirectory } from './fake-directory.js';

export type StoreFactory = () => Promise<BackendConfig>;

const COMMANDS: Record<string, SimBehaviour> = {
  echo: { output: ['hello'] },
  slow: { durationMs: 300, output: ['working'] },
  long: { durationMs: 60_000 },
  fail: { exitCode: 3, output: ['broken'] },
};

export function describeJobs(name: string, makeStore: StoreFactory): void {
  describe(`push jobs (${name})`, () => {
    const cleanup: (() => Promise<void> | void)[] = [];
    afterEach(async () => {
      for (const step of cleanup.reverse()) await step();
      cleanup.length = 0;
    });

    async function setup(
      nodes: number,
      options: Partial<MusterServerOptions> & { commands?: Record<string, SimBehaviour> } = {},
    ) {
      const directory = new FakeDirectory();
      const store = await makeStore();
      const server = await MusterServer.start({
        store,
        port: 0,
        logger: false,
        auth: 'off',
        nodeDirectory: directory,
        jobTickMs: 100,
        dutiesTtl: 3,
        ...options,
      });
      cleanup.push(() => server.stop());
      const fleet = new SimFleet(server.url);
      cleanup.push(() => fleet.close());
      for (let i = 1; i <= nodes; i++) {
        const node = `web-${i}`;
        directory.add(node, { tags: ['web'], attrs: { role: 'web' } });
        fleet.add(node, options.commands ?? COMMANDS);
      }
      await fleet.connectAll();
      const client = new MusterClient({ endpoints: server.url });
      return { server, fleet, directory, client, store };
    }

    async function finished(client: MusterClient, id: string, timeoutMs = 15_000): Promise<JobView> {
      return eventually(async () => {
        const job = await client.getJob(id);
        if (!['complete', 'failed', 'quorum_failed', 'aborted', 'timed_out'].includes(job.state)) {
          throw new Error(`job still ${job.state}: ${JSON.stringify(job.counts)}`);
        }
        return job;
      }, timeoutMs);
    }

    it('runs a command on every matched node, keeps its output and completes', async () => {
      const { client } = await setup(3);
      const started = await client.startJob({ query: 'role:web', command: 'echo' });
      expect(started.state).toBe('voting');
      const job = await finished(client, started.id);
      expect(job.state).toBe('complete');
      expect(job.nodes.sort()).toEqual(['web-1', 'web-2', 'web-3']);
      expect(job.counts.succeeded).toBe(3);
      expect(job.nodeStates?.every((n) => n.state === 'succeeded' && n.exitCode === 0)).toBe(true);
      const output = await client.jobOutput(started.id, 'web-2');
      expect(output.chunks.map((c) => c.data).join('')).toBe('hello\n');
      expect(output.truncated).toBe(false);
      const listed = await client.listJobs();
      expect(listed.map((j) => j.id)).toContain(started.id);
    });

    it('streams state changes and output as events, ending when the job is over', async () => {
      const { client } = await setup(2);
      const started = await client.startJob({ query: 'tag:web', command: 'slow' });
      const events: JobEvent[] = [];
      for await (const event of client.jobEvents(started.id)) events.push(event);
      expect(events.at(-1)?.type).toBe('end');
      const output = events.filter((e) => e.type === 'output');
      expect(output.map((e) => (e.type === 'output' ? `${e.chunk.node}:${e.chunk.data}` : '')).sort()).toEqual([
        'web-1:working\n',
        'web-2:working\n',
      ]);
      const states = events.filter((e) => e.type === 'node').map((e) => (e.type === 'node' ? e.node.state : ''));
      expect(states).toContain('running');
      expect(states).toContain('succeeded');
      const last = events.filter((e) => e.type === 'job').at(-1);
      expect(last?.type === 'job' && last.job.state).toBe('complete');
    });

    it('fails the quorum when too few matched nodes are up, and runs when enough are', async () => {
      const { client, directory } = await setup(3);
      directory.setUp('web-3', false);
      const all = await finished(client, (await client.startJob({ query: 'role:web', command: 'echo' })).id);
      expect(all.state).toBe('quorum_failed');
      expect(all.reason).toMatch(/2 of 3 matched nodes are up/);
      expect(all.nodeStates).toEqual([]);
      const most = await finished(
        client,
        (await client.startJob({ query: 'role:web', command: 'echo', quorum: '60%' })).id,
      );
      expect(most.state).toBe('complete');
      expect(most.nodes.sort()).toEqual(['web-1', 'web-2']);
      const none = await finished(client, (await client.startJob({ query: 'role:db', command: 'echo' })).id);
      expect(none.state).toBe('quorum_failed');
      expect(none.reason).toMatch(/no registered node matches/);
    });

    it('with concurrency 1, runs one node at a time', async () => {
      const { client, fleet } = await setup(3);
      const job = await finished(
        client,
        (await client.startJob({ query: 'role:web', command: 'slow', concurrency: 1 })).id,
      );
      expect(job.state).toBe('complete');
      const spans = (job.nodeStates ?? [])
        .map((n) => [Date.parse(n.startedAt ?? ''), Date.parse(n.finishedAt ?? '')] as const)
        .sort((a, b) => a[0] - b[0]);
      expect(spans).toHaveLength(3);
      for (let i = 1; i < spans.length; i++) expect(spans[i]![0]).toBeGreaterThanOrEqual(spans[i - 1]![1]);
      expect(fleet.agents.every((a) => a.started.length === 1)).toBe(true);
    });

    it('stops starting nodes once the failure threshold is exceeded', async () => {
      const { client, fleet } = await setup(5);
      const job = await finished(
        client,
        (await client.startJob({ query: 'role:web', command: 'fail', concurrency: 1, failureThreshold: 1 })).id,
      );
      expect(job.state).toBe('failed');
      expect(job.counts.failed).toBe(2);
      expect(job.counts.aborted).toBe(3);
      expect(fleet.agents.reduce((n, a) => n + a.started.length, 0)).toBe(2);
      const failed = job.nodeStates?.find((n) => n.state === 'failed');
      expect(failed?.exitCode).toBe(3);
      expect(job.nodeStates?.find((n) => n.state === 'aborted')?.reason).toMatch(/failure threshold/);
    });

    it('rejected commands count as failures', async () => {
      const { client } = await setup(2);
      const job = await finished(client, (await client.startJob({ query: 'role:web', command: 'rm-rf' })).id);
      expect(job.state).toBe('failed');
      expect(job.counts.rejected).toBe(2);
      expect(job.nodeStates?.[0]?.reason).toMatch(/not in the allowlist/);
    });

    it('aborts: running nodes are told to stop, the rest never start', async () => {
      const { client, fleet } = await setup(3);
      const started = await client.startJob({ query: 'role:web', command: 'long', concurrency: 2 });
      await eventually(async () => expect((await client.getJob(started.id)).counts.running).toBe(2));
      await client.abortJob(started.id);
      const job = await finished(client, started.id);
      expect(job.state).toBe('aborted');
      expect(job.counts.aborted).toBe(3);
      await eventually(() => {
        const aborts = fleet.agents.flatMap((a) => a.received.filter((e) => e.assignment.state === 'abort'));
        expect(aborts).toHaveLength(2);
      });
      expect(fleet.agents.reduce((n, a) => n + a.started.length, 0)).toBe(2);
      expect(fleet.agents.every((a) => a.busy === 0)).toBe(true);
    });

    it('a node that goes down mid-job turns unreachable; the job fails', async () => {
      const { client, fleet, directory } = await setup(2);
      const started = await client.startJob({ query: 'role:web', command: 'long' });
      await eventually(async () => expect((await client.getJob(started.id)).counts.running).toBe(2));
      fleet.get('web-2').kill();
      directory.setUp('web-2', false);
      await eventually(async () => expect((await client.getJob(started.id)).counts.unreachable).toBe(1));
      await client.abortJob(started.id);
      const job = await finished(client, started.id);
      expect(job.nodeStates?.find((n) => n.node === 'web-2')?.state).toBe('unreachable');
    });

    it('times out: nodes still running are told to stop', async () => {
      const { client, fleet } = await setup(2);
      const job = await finished(
        client,
        (await client.startJob({ query: 'role:web', command: 'long', timeout: '500ms' })).id,
      );
      expect(job.state).toBe('timed_out');
      expect(job.counts.timed_out).toBe(2);
      await eventually(() => expect(fleet.agents.every((a) => a.busy === 0)).toBe(true));
    });

    it('refuses bad input with 4xx naming the problem', async () => {
      const { server, client } = await setup(0);
      const post = (body: unknown) =>
        fetch(`${server.url}/v1/jobs`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify(body),
        });
      for (const [body, pattern] of [
        [{ query: 'role:web' }, /command/],
        [{ query: 'role:web', command: 'echo', color: 'red' }, /color|additional/],
        [{ query: 'role:web', command: 'echo', quorum: '150%' }, /quorum/],
        [{ query: 'role:web', command: 'echo', timeout: 'soon' }, /timeout/],
        [{ query: 'role:web', command: 'echo; rm -rf /' }, /command/],
      ] as const) {
        const res = await post(body);
        expect(res.status).toBe(400);
        expect(((await res.json()) as { error: { message: string } }).error.message).toMatch(pattern);
      }
      const malformed = await fetch(`${server.url}/v1/jobs`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: '{"query":',
      });
      expect(malformed.status).toBe(400);
      await expect(client.getJob('0mhq3x1k2-4f9a0c')).rejects.toMatchObject({ code: 'job_not_found' });
      await expect(client.getJob('../etc')).rejects.toMatchObject({ code: 'invalid_request' });
      expect(await client.listJobs()).toEqual([]);
      const report = await fetch(`${server.url}/v1/jobs/0mhq3x1k2-4f9a0c/nodes/web-1/report`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ seq: 0, type: 'exploded' }),
      });
      expect(report.status).toBe(400);
    });
  });
}
