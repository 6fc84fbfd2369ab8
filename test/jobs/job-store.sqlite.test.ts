import { describe, expect, it } from 'vitest';
import { SqliteBackend } from '../../src/backends/sqlite/sqlite-backend.js';
import { virtualRuntime } from '../../src/core/runtime.js';
import { FencedOutError, JobStore, recentNodes, rememberNode } from '../../src/jobs/job-store.js';
import { JOB_INDEX_BUILT, countStates, decodeJson, encodeJson, keys } from '../../src/jobs/job-model.js';
import type { NodeJobRecord } from '../../src/jobs/job-model.js';
import { jobRetentionDuty } from '../../src/server/duties/job-duties.js';
import { holds } from '../../src/server/duties/duty-runner.js';
import { MusterError } from '../../src/core/errors.js';
import { FleetState } from '../../src/plans/fleet-state.js';
import { FakeDirectory } from './fake-directory.js';
import { leadingContext } from '../support/duty-context.js';

/** A job store on an in-memory SQLite store, on a virtual clock. */
function jobStore() {
  const runtime = virtualRuntime();
  const backend = SqliteBackend.open({ dataDir: ':memory:', clock: runtime.clock });
  return { runtime, backend, store: new JobStore(backend, runtime) };
}

describe('job retention', () => {
  it('deletes jobs that finished before the retention, with their nodes, output and assignments', async () => {
    const { runtime, backend, store } = jobStore();
    const old = await store.create({ query: 'role:web', command: 'echo' }, 'test');
    runtime.clock.advance(3 * 86_400_000);
    const recent = await store.create({ query: 'role:web', command: 'echo' }, 'test');
    const running = await store.create({ query: 'role:web', command: 'echo' }, 'test');
    const finish = async (id: string, state: string, finishedAt: number) => {
      const job = (await store.get(id))!.record;
      const record = { ...job, state, nodes: ['web-1'], finishedAt: new Date(finishedAt).toISOString() };
      await backend.put(keys.job(id), encodeJson(record));
      await backend.put(keys.node(id, 'web-1'), encodeJson({ node: 'web-1', state: 'succeeded' }));
      await backend.put(keys.chunk(id, 'web-1', 0), encodeJson({ data: 'out' }));
      await backend.put(keys.assignment('web-1', id), encodeJson({ jobId: id }));
    };
    await finish(old.id, 'complete', runtime.clock.now() - 3 * 86_400_000);
    await finish(recent.id, 'failed', runtime.clock.now());
    const duty = jobRetentionDuty({ retentionMs: 86_400_000 });
    await duty.run(leadingContext(backend, runtime));
    expect((await store.ids()).sort()).toEqual([recent.id, running.id].sort());
    expect((await backend.range({ key: `${keys.job(old.id)}/`, prefix: true })).count).toBe(0);
    expect(await backend.get(keys.assignment('web-1', old.id))).toBeNull();
    expect(await backend.get(keys.assignment('web-1', recent.id))).not.toBeNull();
    await backend.close();
  });
});

describe('job creation by a duty', () => {
  it('is fenced: a duty that no longer leads starts no job', async () => {
    const { backend, store } = jobStore();
    const leadership = await backend.put('/muster/duties/leader', new TextEncoder().encode('me'));
    const fence = {
      key: '/muster/duties/leader',
      target: 'createRevision',
      op: '=',
      value: leadership.revision,
    } as const;
    const job = await store.create({ query: 'role:web', command: 'echo' }, 'trigger:t', fence);
    expect(await store.ids()).toEqual([job.id]);
    // Another server took over: the leadership key was made again.
    await backend.delete({ key: '/muster/duties/leader' });
    await backend.put('/muster/duties/leader', new TextEncoder().encode('other'));
    await expect(store.create({ query: 'role:web', command: 'echo' }, 'trigger:t', fence)).rejects.toThrow(
      FencedOutError,
    );
    expect(await store.ids()).toEqual([job.id]);
    await backend.close();
  });

  it('a lost leadership is told one way, by every fenced write of a duty: FencedOutError, not a MusterError', async () => {
    const { runtime, backend, store } = jobStore();
    const leadership = await backend.put('/muster/duties/leader', new TextEncoder().encode('me'));
    const fence = {
      key: '/muster/duties/leader',
      target: 'createRevision',
      op: '=',
      value: leadership.revision,
    } as const;
    const directory = new FakeDirectory();
    directory.add('web-1', { attrs: { role: 'web' } });
    const fleet = new FleetState(backend, runtime.clock, directory);
    await fleet.putGroup('web', 'role:web');
    const value = { state: 'v1', version: null, params: {} };
    await fleet.setDesired('web', value, 'plan:p', fence, { plan: 'p', step: 's', released: [] });
    expect(await holds(backend, fence)).toBe(true);
    // Another server took over.
    await backend.delete({ key: '/muster/duties/leader' });
    await backend.put('/muster/duties/leader', new TextEncoder().encode('other'));
    expect(await holds(backend, fence)).toBe(false);
    const refusals = await Promise.all([
      store
        .create({ query: 'role:web', command: 'echo' }, 'plan:p', fence, '/muster/plan-jobs/p/s/0')
        .catch((e: unknown) => e),
      fleet.setDesired('web', { ...value, state: 'v2' }, 'plan:p', fence).catch((e: unknown) => e),
      fleet.updateRollout('web', 'p', null, fence).catch((e: unknown) => e),
    ]);
    for (const refusal of refusals) {
      expect(refusal).toBeInstanceOf(FencedOutError);
      // A plan fails a batch on any MusterError: a lost leadership must not look like one.
      expect(refusal).not.toBeInstanceOf(MusterError);
    }
    expect((await fleet.getDesired('web'))?.state).toBe('v1');
    await backend.close();
  });
});

describe('job reports and what the server remembers', () => {
  it('a report is judged by the store, not by an older state this process remembers', async () => {
    const { runtime, backend, store } = jobStore();
    const job = await store.create({ query: 'role:web', command: 'echo' }, 'test');
    const key = keys.node(job.id, 'web-1');
    const waiting: NodeJobRecord = { node: 'web-1', state: 'pending', seq: -1, outputBytes: 0, truncated: false };
    const before = await backend.put(key, encodeJson(waiting));
    // The scheduler remembers the node as it voted it in...
    rememberNode(backend, key, { record: waiting, modRevision: before.revision });
    // ...and its assignment's txn lands, but its answer comes after the agent's report
    // (txns in flight together, the agent told by the watch).
    const assigned: NodeJobRecord = { ...waiting, assignedAt: new Date(runtime.clock.now()).toISOString() };
    const after = await backend.put(key, encodeJson(assigned));
    const result = await store.report(job.id, 'web-1', { seq: 0, type: 'started', pid: 42 });
    expect(result).toEqual({ accepted: true, state: 'running' });
    const stored = decodeJson<NodeJobRecord>((await backend.get(key))!.value);
    expect(stored.startedAt).toBeDefined();
    // The late answer must not put the older state back.
    rememberNode(backend, key, { record: assigned, modRevision: after.revision });
    expect(recentNodes(backend).get(key)?.record.state).toBe('running');
    const exit = await store.report(job.id, 'web-1', { seq: 1, type: 'exit', exitCode: 0, signal: null });
    expect(exit).toEqual({ accepted: true, state: 'succeeded' });
    await backend.close();
  });
});

describe('a late report of a node the server gave up on', () => {
  /** A job of web-1 and web-2; web-2 turned unreachable, web-1 succeeded. */
  async function gaveUp(ended: boolean) {
    const { runtime, backend, store } = jobStore();
    const created = await store.create({ query: 'role:web', command: 'echo' }, 'test');
    const at = new Date(runtime.clock.now()).toISOString();
    const base = { seq: 1, outputBytes: 0, truncated: false, assignedAt: at, finishedAt: at };
    const nodes: NodeJobRecord[] = [
      { ...base, node: 'web-1', state: 'succeeded', exitCode: 0 },
      { ...base, node: 'web-2', state: 'unreachable', reason: 'the node went down' },
    ];
    for (const n of nodes) await backend.put(keys.node(created.id, n.node), encodeJson(n));
    const job = {
      ...created,
      nodes: ['web-1', 'web-2'],
      state: ended ? 'failed' : 'running',
      ...(ended ? { finishedAt: at, counts: countStates(nodes) } : {}),
    };
    await backend.put(keys.job(created.id), encodeJson(job));
    return { backend, store, id: created.id };
  }

  it('counts again the nodes of a job that ended: the list agrees with the job', async () => {
    const { backend, store, id } = await gaveUp(true);
    expect((await store.list())[0]?.counts.unreachable).toBe(1);
    const exit = await store.report(id, 'web-2', { seq: 2, type: 'exit', exitCode: 0, signal: null });
    expect(exit).toEqual({ accepted: true, state: 'succeeded' });
    const view = await store.view(id, false);
    expect(view.counts.succeeded).toBe(2);
    expect(view.counts.unreachable).toBe(0);
    const listed = await store.list();
    expect(listed[0]?.counts).toEqual(view.counts);
    // A report that changes no node's state leaves the job as it is.
    const before = (await store.get(id))!.modRevision;
    await store.report(id, 'web-2', { seq: 3, type: 'output', stream: 'stdout', data: 'late' });
    expect((await store.get(id))!.modRevision).toBe(before);
    await backend.close();
  });

  it('refuses a scheduler ending the job with counts taken before the report', async () => {
    const { backend, store, id } = await gaveUp(false);
    // The scheduler read the job, counted its nodes, and is about to end it...
    const read = (await store.get(id))!;
    await store.report(id, 'web-2', { seq: 2, type: 'exit', exitCode: 0, signal: null });
    // ...its write (compared on the job's revision) is refused: it reads the job again.
    const end = await backend.txn({
      compare: [{ key: keys.job(id), target: 'modRevision', op: '=', value: read.modRevision }],
      success: [{ type: 'put', key: keys.job(id), value: encodeJson({ ...read.record, state: 'failed' }) }],
      failure: [],
    });
    expect(end.succeeded).toBe(false);
    expect((await store.get(id))!.record).toEqual(read.record);
    await backend.close();
  });
});

describe('a refusal is never decided on a remembered state', () => {
  it('a report the remembered state calls a duplicate is judged by the store', async () => {
    const { runtime, backend, store } = jobStore();
    const job = await store.create({ query: 'role:web', command: 'echo' }, 'test');
    const key = keys.node(job.id, 'web-1');
    const at = new Date(runtime.clock.now()).toISOString();
    const stored: NodeJobRecord = {
      node: 'web-1',
      state: 'pending',
      seq: -1,
      outputBytes: 0,
      truncated: false,
      assignedAt: at,
    };
    const put = await backend.put(key, encodeJson(stored));
    // A remembered state the store no longer has (a store put back from a snapshot, say).
    rememberNode(backend, key, { record: { ...stored, state: 'running', seq: 4 }, modRevision: put.revision + 1 });
    const result = await store.report(job.id, 'web-1', { seq: 0, type: 'started', pid: 7 });
    expect(result).toEqual({ accepted: true, state: 'running' });
    // Read from the store, a duplicate is still answered, not applied.
    expect(await store.report(job.id, 'web-1', { seq: 0, type: 'started', pid: 8 })).toEqual({
      accepted: false,
      state: 'running',
    });
    await backend.close();
  });
});

describe('the job index of jobs stored before it existed', () => {
  it('is written once, in fenced batches, then marked done; retention then finds the old jobs', async () => {
    const { runtime, backend, store } = jobStore();
    // 250 jobs of an older server (no index keys), one with a node and output, finished long ago.
    const ids: string[] = [];
    for (let i = 0; i < 250; i++) {
      const job = await store.create({ query: 'role:web', command: 'echo' }, 'older');
      ids.push(job.id);
      const ended = { ...job, state: 'complete', finishedAt: new Date(runtime.clock.now()).toISOString() };
      await backend.put(keys.job(job.id), encodeJson(ended));
      await backend.delete({ key: keys.index(job.id) });
      runtime.clock.advance(1);
    }
    await backend.put(keys.node(ids[0]!, 'web-1'), encodeJson({ node: 'web-1', state: 'succeeded' }));
    await backend.put(keys.chunk(ids[0]!, 'web-1', 0), encodeJson({ data: 'out' }));
    expect(await store.ids()).toEqual([]);
    // A duty that no longer leads writes nothing.
    const lost = { key: '/muster/duties/leader', target: 'version', op: '>', value: 0 } as const;
    await expect(store.backfillIndex(lost)).rejects.toThrow(FencedOutError);
    expect(await store.ids()).toEqual([]);
    expect(await backend.get(JOB_INDEX_BUILT)).toBeNull();
    const context = leadingContext(backend, runtime);
    expect(await store.backfillIndex(context.fence)).toBe(250);
    expect(await store.ids()).toEqual(ids);
    expect(await backend.get(JOB_INDEX_BUILT)).not.toBeNull();
    // Once: a job without an index key made after that (none should be) is not looked for again.
    await backend.delete({ key: keys.index(ids[1]!) });
    expect(await store.backfillIndex(context.fence)).toBe(0);
    runtime.clock.advance(2 * 86_400_000);
    await jobRetentionDuty({ retentionMs: 86_400_000 }).run(context);
    expect(await store.ids()).toEqual([]);
    expect((await backend.range({ key: '/muster/jobs/', prefix: true })).count).toBe(1); // ids[1]: its index was removed by hand
    await backend.close();
  });
});
