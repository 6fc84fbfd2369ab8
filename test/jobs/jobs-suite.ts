/**
 * The scheduler, the routes and the client against simulated agents (the real
 * protocol over HTTP), on one store; jobs.sqlite.test.ts and jobs.etcd.test.ts
 * run it on each.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { SimFleet } from '../../bench/sim-agents.js';
import type { SimBehaviour } from '../../bench/sim-agents.js';
import { createBackend } from '../../src/backends/create-backend.js';
import type { BackendConfig } from '../../src/backends/create-backend.js';
import { encodeJson, keys, newJobId } from '../../src/jobs/job-model.js';
import type { JobRecord } from '../../src/jobs/job-model.js';
import { MusterClient } from '../../src/client/muster-client.js';
import type { JobEvent, JobView } from '../../src/client/job-types.js';
import { MusterServer } from '../../src/server/muster-server.js';
import type { MusterServerOptions } from '../../src/server/muster-server.js';
import { eventually } from '../conformance/harness.js';
import { FakeDirectory } from './fake-directory.js';

/** A store for one test; `durable`: one a restarted server finds again (a folder, not :memory:). */
export type StoreFactory = (durable?: boolean) => Promise<BackendConfig>;

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
      options: Partial<MusterServerOptions> & {
        commands?: Record<string, SimBehaviour>;
        durable?: boolean;
        store?: BackendConfig;
      } = {},
    ) {
      const directory = new FakeDirectory();
      const store = options.store ?? (await makeStore(options.durable));
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
      const stopServer = server.stop.bind(server);
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
      return { server, fleet, directory, client, store, stopServer };
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
      expect(listed.find((j) => j.id === started.id)?.counts.succeeded).toBe(3);
      expect(await client.listJobs({ state: 'failed' })).toEqual([]);
    });

    it('streams state changes and output as events, ending when the job is over', async () => {
      const { client, server } = await setup(2);
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
      // A late follower gets where the job is, output included, then the end.
      const late: JobEvent[] = [];
      for await (const event of client.jobEvents(started.id)) late.push(event);
      expect(late.map((e) => e.type)).toEqual(['job', 'node', 'node', 'output', 'output', 'end']);
      // Resuming from a revision replays what came after it.
      const response = await fetch(`${server.url}/v1/jobs/${started.id}/events?from=1`);
      const text = await response.text();
      expect(text.match(/^event: output$/gm)).toHaveLength(2);
      expect(text).toMatch(/event: end/);
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
      const started = await client.startJob({ query: 'role:web', command: 'slow', concurrency: 1 });
      const waiting = await eventually(async () => {
        const view = await client.getJob(started.id);
        const pending = view.nodeStates?.find((n) => n.assignedAt === undefined);
        if (!pending) throw new Error('no node waits its turn yet');
        return pending.node;
      });
      // A node not asked to run yet cannot report.
      await expect(client.reportJob(started.id, waiting, { seq: 0, type: 'started', pid: 1 })).rejects.toMatchObject({
        code: 'job_conflict',
      });
      const job = await finished(client, started.id);
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

    it('a server restarted mid-job resumes the bookkeeping; agents report what finished meanwhile', async () => {
      const { server, client, directory, store, fleet } = await setup(3, {
        durable: true,
        commands: { step: { durationMs: 700, output: ['step'] } },
      });
      const started = await client.startJob({ query: 'role:web', command: 'step', concurrency: 1 });
      await eventually(async () => expect((await client.getJob(started.id)).counts.running).toBe(1));
      const port = Number(new URL(server.url).port);
      await server.stop();
      const again = await MusterServer.start({
        store,
        port,
        logger: false,
        auth: 'off',
        nodeDirectory: directory,
        jobTickMs: 100,
        dutiesTtl: 3,
      });
      cleanup.push(() => again.stop());
      const job = await finished(client, started.id, 20_000);
      expect(job.state).toBe('complete');
      expect(job.counts.succeeded).toBe(3);
      expect(fleet.agents.every((a) => a.started.length === 1)).toBe(true);
    });

    it('jobs stored before the job index existed are indexed once: listed, a running one finishes', async () => {
      // What an older server left: job records without index keys.
      const store = await makeStore(true);
      const older = await createBackend(store);
      const at = Date.now() - 60_000;
      const record = (id: string, state: string): JobRecord => ({
        id,
        query: 'role:web',
        command: 'echo',
        args: [],
        quorum: { percent: 100 },
        concurrency: 0,
        failureThreshold: { count: 0 },
        timeoutMs: 3_600_000,
        graceMs: 10_000,
        state: state as JobRecord['state'],
        nodes: [],
        matched: 0,
        createdAt: new Date(at).toISOString(),
        createdBy: 'older-server',
      });
      const ended = record(newJobId(at, Math.random), 'complete');
      const voting = record(newJobId(at + 1, Math.random), 'voting');
      for (const job of [ended, voting]) await older.put(keys.job(job.id), encodeJson(job));
      await older.close();
      const { client } = await setup(2, { store });
      const job = await finished(client, voting.id);
      expect(job.state).toBe('complete');
      expect(job.counts.succeeded).toBe(2);
      const listed = (await client.listJobs()).map((j) => j.id);
      expect(listed).toContain(voting.id);
      expect(listed).toContain(ended.id);
    });

    it('a trigger coalesces 20 quick changes into one run, and a run in progress is followed by at most one more', async () => {
      const { client } = await setup(2, {
        commands: { converge: { durationMs: 1500, output: ['converged'] } },
      });
      const trigger = await client.addTrigger({
        name: 'converge-web',
        on: '/ephemerals/backends/',
        debounce: '500ms',
        job: { query: 'role:web', command: 'converge' },
      });
      expect(trigger.debounceMs).toBe(500);
      const jobsOf = async () => (await client.getTrigger('converge-web')).jobs ?? [];
      await Promise.all(Array.from({ length: 20 }, (_, i) => client.put(`/ephemerals/backends/b${i}`, 'up')));
      await client.put('/elsewhere/x', 'not watched');
      await eventually(async () => expect(await jobsOf()).toHaveLength(1), 5000);
      const [first] = await jobsOf();
      await eventually(async () => expect((await client.getJob(first!)).state).toBe('running'));
      // Changes while it runs: several debounce windows close before it ends, yet one more run follows.
      for (let i = 0; i < 4; i++) {
        await client.put(`/ephemerals/backends/late${i}`, 'up');
        await new Promise((resolve) => setTimeout(resolve, 300));
      }
      expect(await jobsOf()).toHaveLength(1);
      await eventually(async () => expect(await jobsOf()).toHaveLength(2), 8000);
      const jobs = await jobsOf();
      for (const id of jobs) expect((await finished(client, id)).state).toBe('complete');
      await new Promise((resolve) => setTimeout(resolve, 1000));
      expect(await jobsOf()).toHaveLength(2);
      const job = await client.getJob(jobs[0]!);
      expect(job.createdBy).toBe('trigger:converge-web');
      expect((await client.listTriggers()).map((t) => t.name)).toEqual(['converge-web']);
      await client.removeTrigger('converge-web');
      await expect(client.getTrigger('converge-web')).rejects.toMatchObject({ code: 'trigger_not_found' });
      await expect(
        client.addTrigger({ name: 'bad name', on: '/x/', job: { query: 'role:web', command: 'echo' } }),
      ).rejects.toMatchObject({ code: 'invalid_name' });
      await expect(
        client.addTrigger({ name: 'ok', on: 'no-slash', job: { query: 'role:web', command: 'echo' } }),
      ).rejects.toMatchObject({ code: 'invalid_key' });
    });

    it('keeps the last part of a long output within the limit and says it truncated', async () => {
      const line = 'x'.repeat(499);
      const { client } = await setup(1, {
        jobOutputLimit: 2048,
        commands: { chatty: { output: Array.from({ length: 10 }, (_, i) => `${i}${line}`) } },
      });
      const job = await finished(client, (await client.startJob({ query: 'role:web', command: 'chatty' })).id);
      expect(job.state).toBe('complete');
      const output = await client.jobOutput(job.id, 'web-1');
      expect(output.truncated).toBe(true);
      const text = output.chunks.map((c) => c.data).join('');
      expect(text.length).toBeLessThanOrEqual(2048);
      expect(text.endsWith(`9${line}\n`)).toBe(true);
      expect(text).not.toContain(`0${line}`);
      expect(job.nodeStates?.[0]?.truncated).toBe(true);
    });

    it('the assignment stream resumes after the last revision seen; a resent report is ignored', async () => {
      const { client, directory } = await setup(0);
      directory.add('solo', { attrs: { role: 'solo' } });
      const stop = new AbortController();
      const seen: { revision: number; jobId: string; state: string }[] = [];
      const first = await client.startJob({ query: 'role:solo', command: 'build', args: ['--fast'], grace: '3s' });
      for await (const event of client.assignments('solo', { signal: stop.signal })) {
        seen.push({ revision: event.revision, jobId: event.assignment.jobId, state: event.assignment.state });
        expect(event.assignment).toMatchObject({ command: 'build', args: ['--fast'], graceMs: 3000, state: 'run' });
        break;
      }
      expect(await client.reportJob(first.id, 'solo', { seq: 0, type: 'started', pid: 42 })).toEqual({
        accepted: true,
        state: 'running',
      });
      expect(await client.reportJob(first.id, 'solo', { seq: 0, type: 'started', pid: 42 })).toEqual({
        accepted: false,
        state: 'running',
      });
      const second = await client.startJob({ query: 'role:solo', command: 'deploy' });
      await client.abortJob(first.id);
      const resumed: string[] = [];
      for await (const event of client.assignments('solo', { from: seen[0]!.revision + 1 })) {
        resumed.push(`${event.assignment.jobId === first.id ? 'first' : 'second'}:${event.assignment.state}`);
        if (resumed.length === 2) break;
      }
      expect(resumed.sort()).toEqual(['first:abort', 'second:run']);
      expect(
        await client.reportJob(first.id, 'solo', {
          seq: 1,
          type: 'exit',
          exitCode: null,
          signal: 'SIGTERM',
          reason: 'aborted',
        }),
      ).toMatchObject({ accepted: true, state: 'aborted' });
      await client.reportJob(second.id, 'solo', { seq: 0, type: 'started', pid: 43 });
      await client.reportJob(second.id, 'solo', {
        seq: 1,
        type: 'output',
        stream: 'stderr',
        data: Buffer.from([0xff, 0x00]).toString('base64'),
        encoding: 'base64',
      });
      await client.reportJob(second.id, 'solo', { seq: 2, type: 'exit', exitCode: 0, signal: null });
      const done = await finished(client, second.id);
      expect(done.state).toBe('complete');
      const output = await client.jobOutput(second.id, 'solo');
      expect(output.chunks[0]).toMatchObject({ stream: 'stderr', encoding: 'base64', data: '/wA=' });
      await expect(client.reportJob(second.id, 'other', { seq: 0, type: 'started', pid: 1 })).rejects.toMatchObject({
        code: 'job_not_found',
      });
    });

    it('with the registry: a node whose lease ends mid-job turns unreachable', async () => {
      const store = await makeStore();
      const server = await MusterServer.start({ store, port: 0, logger: false, auth: 'off', jobTickMs: 100 });
      cleanup.push(() => server.stop());
      const fleet = new SimFleet(server.url);
      cleanup.push(() => fleet.close());
      const leases = new Map<string, string>();
      for (const node of ['db-1', 'db-2']) {
        const lease = await server.backend.grantLease(30);
        leases.set(node, lease.id);
        await new MusterClient({ endpoints: server.url }).registerNode(node, {
          lease: lease.id,
          tags: ['db'],
          attrs: { role: 'db' },
          facts: { commands: ['long', 'echo'] },
        });
        fleet.add(node, COMMANDS);
      }
      await fleet.connectAll();
      const client = new MusterClient({ endpoints: server.url });
      // The agents say which commands they allow: one they do not is refused at the vote.
      const refused = await finished(client, (await client.startJob({ query: 'role:db', command: 'fail' })).id);
      expect(refused.state).toBe('quorum_failed');
      expect(refused.reason).toMatch(/0 of 2 matched nodes are up and allow fail/);
      const started = await client.startJob({ query: 'tag:db', command: 'long' });
      await eventually(async () => expect((await client.getJob(started.id)).counts.running).toBe(2));
      fleet.get('db-2').kill();
      await server.backend.revokeLease(leases.get('db-2')!);
      await eventually(async () => expect((await client.getJob(started.id)).counts.unreachable).toBe(1));
      await client.abortJob(started.id);
      const job = await finished(client, started.id);
      expect(job.nodeStates?.find((n) => n.node === 'db-2')?.state).toBe('unreachable');
      expect(job.nodeStates?.find((n) => n.node === 'db-1')?.state).toBe('aborted');
    });

    it('a command ended by a signal (exit code null) fails its node; JSON types are never coerced', async () => {
      const { client, directory, server } = await setup(0);
      // A node with no simulated agent: the test reports for it, as its agent would.
      directory.add('web-1', { tags: ['web'], attrs: { role: 'web' } });
      const job = await client.startJob({ query: 'role:web', command: 'long' });
      await eventually(async () => {
        const view = await client.getJob(job.id);
        expect(view.nodeStates?.[0]?.assignedAt).toBeDefined();
      });
      await client.reportJob(job.id, 'web-1', { seq: 0, type: 'started', pid: 7 });
      // A string where a number belongs is refused, not read as the number.
      const coerced = await fetch(`${server.url}/v1/jobs/${job.id}/nodes/web-1/report`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ seq: '1', type: 'exit', exitCode: '0', signal: null }),
      });
      expect(coerced.status).toBe(400);
      await client.reportJob(job.id, 'web-1', { seq: 1, type: 'exit', exitCode: null, signal: 'SIGKILL' });
      const done = await finished(client, job.id);
      expect(done.state).toBe('failed');
      expect(done.nodeStates?.[0]).toMatchObject({ state: 'failed', exitCode: null, signal: 'SIGKILL' });
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
        [{ query: 'role', command: 'echo' }, /query/],
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

/** Tokens on: a node token sees and acts only for its own node; starting and aborting need jobs:run and are audited. */
export function describeJobsAuth(name: string, makeStore: StoreFactory): void {
  describe(`push jobs with tokens (${name})`, () => {
    let server: MusterServer | null = null;
    let fleet: SimFleet | null = null;
    afterEach(async () => {
      fleet?.close();
      await server?.stop();
    });

    it('a node token sees only its own jobs, and acts only for its own node', async () => {
      const directory = new FakeDirectory();
      server = await MusterServer.start({
        store: await makeStore(),
        port: 0,
        logger: false,
        auth: { adminTokenFile: null },
        nodeDirectory: directory,
        jobTickMs: 100,
      });
      const tokens = server.tokens!;
      const admin = new MusterClient({ endpoints: server.url, token: (await tokens.create({ role: 'admin' })).token });
      const reader = new MusterClient({
        endpoints: server.url,
        token: (await tokens.create({ role: 'reader' })).token,
      });
      const operator = new MusterClient({
        endpoints: server.url,
        token: (await tokens.create({ role: 'operator' })).token,
      });
      fleet = new SimFleet(server.url);
      const nodeTokens = new Map<string, string>();
      for (const node of ['web-1', 'web-2', 'db-1']) {
        directory.add(node, { attrs: { role: node.startsWith('web') ? 'web' : 'db' } });
        const token = (await tokens.create({ role: 'node', node })).token;
        nodeTokens.set(node, token);
        fleet.add(node, COMMANDS, token);
      }
      await fleet.connectAll();
      const asNode = (node: string) => new MusterClient({ endpoints: server!.url, token: nodeTokens.get(node)! });

      await expect(reader.startJob({ query: 'role:web', command: 'echo' })).rejects.toMatchObject({
        code: 'forbidden',
      });
      await expect(asNode('web-1').startJob({ query: 'role:web', command: 'echo' })).rejects.toMatchObject({
        code: 'forbidden',
      });
      const webJob = await operator.startJob({ query: 'role:web', command: 'long' });
      const dbJob = await admin.startJob({ query: 'role:db', command: 'echo' });
      await eventually(async () => expect((await admin.getJob(webJob.id)).counts.running).toBe(2));
      await eventually(async () => expect((await admin.getJob(dbJob.id)).state).toBe('complete'));

      const web1 = asNode('web-1');
      expect((await web1.listJobs()).map((j) => j.id)).toEqual([webJob.id]);
      const seen = await web1.getJob(webJob.id);
      expect(seen.nodeStates?.map((n) => n.node)).toEqual(['web-1']);
      await expect(web1.getJob(dbJob.id)).rejects.toMatchObject({ code: 'job_not_found' });
      await expect(web1.jobOutput(dbJob.id, 'db-1')).rejects.toMatchObject({ code: 'job_not_found' });
      await expect(web1.jobOutput(webJob.id, 'web-2')).rejects.toMatchObject({ code: 'forbidden' });
      await expect(
        web1.reportJob(webJob.id, 'web-2', { seq: 99, type: 'exit', exitCode: 0, signal: null }),
      ).rejects.toMatchObject({ code: 'forbidden' });
      const stream = await fetch(`${server.url}/v1/nodes/web-2/assignments`, {
        headers: { authorization: `Bearer ${nodeTokens.get('web-1')}` },
      });
      expect(stream.status).toBe(403);
      await stream.body?.cancel();
      expect((await reader.getJob(webJob.id)).nodeStates).toHaveLength(2);
      await expect(reader.abortJob(webJob.id)).rejects.toMatchObject({ code: 'forbidden' });

      await operator.abortJob(webJob.id);
      await eventually(async () => expect((await admin.getJob(webJob.id)).state).toBe('aborted'));
      await eventually(async () => {
        const records = await admin.audit();
        const routes = records.map((r) => `${r.method} ${r.route} ${r.target} ${r.status}`);
        expect(routes).toContain(`POST /v1/jobs ${webJob.id} 201`);
        expect(routes).toContain(`DELETE /v1/jobs/:id ${webJob.id} 200`);
      });
    });
  });
}
