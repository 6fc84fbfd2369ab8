/**
 * The scheduler: the one place that moves jobs along (a duty, so on etcd exactly
 * one server runs it). It keeps the unfinished jobs in memory, loaded from the
 * keyspace when it starts leading and kept current by a watch of
 * `/muster/jobs/`, and decides: voting (quorum against the matched nodes that
 * are up), which nodes start (concurrency, failure threshold), which ended
 * without saying so (unreachable: the node's liveness lease died; timed out),
 * aborts, and the job's final state. Every write is fenced by the duties'
 * leadership and compares the revision it read, so a deposed leader's or a
 * racing report's write is never overwritten; all state is in the keyspace, so
 * a restarted server resumes where the last one stopped.
 */
import type { Assignment } from '../api/agent-protocol.js';
import type { Backend, Compare, TxnOp, WatchEvent } from '../core/backend.js';
import { sleep } from '../core/clock.js';
import type { TimerHandle } from '../core/clock.js';
import { CompactedError } from '../core/errors.js';
import type { DutyContext } from '../server/duties/duty-runner.js';
import type { JobRecord, NodeJobRecord, NodeState } from './job-model.js';
import {
  FINAL_JOB_STATES,
  FINAL_NODE_STATES,
  JOBS_PREFIX,
  JOB_INDEX_PREFIX,
  amountOf,
  countStates,
  decodeJson,
  describeAmount,
  encodeJson,
  keys,
  parseJobKey,
  toleratedOf,
} from './job-model.js';
import { JobStore, OPS_PER_TXN, rememberNode } from './job-store.js';
import type { StoredJob } from './job-store.js';
import type { NodeDirectory } from './node-directory.js';
import { allowsCommand } from './node-directory.js';

interface ActiveJob {
  record: JobRecord;
  modRevision: number;
  nodes: Map<string, { record: NodeJobRecord; modRevision: number }>;
}

export interface SchedulerOptions {
  readonly directory: NodeDirectory;
  /** How often timeouts are checked, ms (the liveness of running nodes every other time). @default 1000 */
  readonly tickMs?: number;
}

/**
 * What the scheduler wrote, unless the watch already brought something newer (a
 * node that reported while the scheduler was still writing the rest).
 */
function remember(backend: Backend, job: ActiveJob, node: string, record: NodeJobRecord, modRevision: number): void {
  const known = job.nodes.get(node);
  if (known && known.modRevision > modRevision) return;
  job.nodes.set(node, { record, modRevision });
  if (!FINAL_NODE_STATES.has(record.state))
    rememberNode(backend, keys.node(job.record.id, node), { record, modRevision });
}

/** Changes are gathered this long before the scheduler looks at them, ms. */
const BATCH_MS = 50;

/** Nodes failed, for the failure threshold. */
const FAILURES: ReadonlySet<NodeState> = new Set(['failed', 'timed_out', 'rejected', 'unreachable']);

export class JobScheduler {
  private readonly jobs = new Map<string, ActiveJob>();
  private readonly dirty = new Set<string>();
  private up: Set<string> | null = null;
  /** Set by the ticker: the next look checks whether running nodes are still up. */
  private livenessDue = false;
  private voteDue = false;
  private upAt = 0;
  private readonly tickMs: number;

  constructor(
    private readonly context: DutyContext,
    private readonly options: SchedulerOptions,
  ) {
    this.tickMs = options.tickMs ?? 1000;
  }

  private get backend() {
    return this.context.backend;
  }

  private now(): number {
    return this.context.runtime.clock.now();
  }

  private iso(): string {
    return new Date(this.now()).toISOString();
  }

  /** Lead until the signal aborts (or the watch fails: the duty runs again). */
  async run(): Promise<void> {
    const { signal } = this.context;
    // Jobs an older server stored have no index key yet: give them one before reading the index.
    await new JobStore(this.backend, this.context.runtime).backfillIndex(this.context.fence);
    const revision = await this.load();
    const watch = this.backend.watch(JOBS_PREFIX, { prefix: true, fromRevision: revision + 1 });
    const stop = () => watch.close();
    signal.addEventListener('abort', stop, { once: true });
    // Leadership may have ended while the jobs were loading: an aborted signal fires no more events.
    if (signal.aborted) stop();
    let working: Promise<void> = Promise.resolve();
    const clock = this.context.runtime.clock;
    // Changes are looked at together, at most every BATCH_MS: a job of 10,000 nodes
    // gets thousands of reports a second, and each look goes over all its nodes.
    let kicked: TimerHandle | null = null;
    let failure: unknown = null;
    const look = () => {
      working = working
        .then(() => this.work())
        .catch((error: unknown) => {
          failure = error;
          watch.close();
        });
    };
    const kick = () => {
      kicked ??= clock.setTimeout(() => {
        kicked = null;
        look();
      }, BATCH_MS);
    };
    look();
    let ticks = 0;
    const ticker = (async () => {
      while (!signal.aborted) {
        await sleep(clock, this.tickMs, signal).catch(() => undefined);
        if (signal.aborted) break;
        for (const id of this.jobs.keys()) this.dirty.add(id);
        // Whether running nodes are still up is read every other tick: it lists every node.
        if (++ticks % 2 === 0) {
          this.livenessDue = true;
          this.up = null;
        }
        kick();
      }
    })();
    try {
      for await (const batch of watch) {
        for (const event of batch.events) this.observe(event);
        // A new job is looked at at once (its vote starts it); other changes gather for BATCH_MS.
        if (this.voteDue) {
          this.voteDue = false;
          look();
        } else if (this.dirty.size > 0) kick();
        if (signal.aborted) break;
      }
      if (failure) throw failure;
    } catch (error) {
      if (!(error instanceof CompactedError) && !signal.aborted) throw error;
    } finally {
      signal.removeEventListener('abort', stop);
      watch.close();
      if (kicked) clock.clearTimeout(kicked);
      await ticker.catch(() => undefined);
      await working.catch(() => undefined);
    }
  }

  /** Every unfinished job with its nodes; returns the revision read at. */
  private async load(): Promise<number> {
    const revision = await this.backend.revision();
    const range = await this.backend.range({ key: JOB_INDEX_PREFIX, prefix: true, keysOnly: true, revision });
    this.jobs.clear();
    for (const kv of range.kvs) {
      const id = kv.key.slice(JOB_INDEX_PREFIX.length);
      const stored = await this.backend.range({ key: keys.job(id), revision });
      const jobKv = stored.kvs[0];
      if (!jobKv) continue;
      const record = decodeJson<JobRecord>(jobKv.value);
      if (FINAL_JOB_STATES.has(record.state)) continue;
      const nodes = await this.backend.range({ key: keys.nodes(record.id), prefix: true, revision });
      const job: ActiveJob = { record, modRevision: jobKv.modRevision, nodes: new Map() };
      for (const n of nodes.kvs) {
        const node = decodeJson<NodeJobRecord>(n.value);
        job.nodes.set(node.node, { record: node, modRevision: n.modRevision });
      }
      this.jobs.set(record.id, job);
      this.dirty.add(record.id);
    }
    return revision;
  }

  /** Bring the in-memory view up to an event (our own writes come back too, and are skipped). */
  private observe(event: WatchEvent): void {
    const parsed = parseJobKey(event.kv.key);
    if (!parsed || parsed.kind === 'output') return;
    if (parsed.kind === 'job') {
      if (event.type === 'delete') {
        this.jobs.delete(parsed.id);
        return;
      }
      const existing = this.jobs.get(parsed.id);
      if (existing && existing.modRevision >= event.kv.modRevision) return;
      const record = decodeJson<JobRecord>(event.kv.value);
      if (FINAL_JOB_STATES.has(record.state)) {
        this.jobs.delete(parsed.id);
        return;
      }
      if (existing) {
        existing.record = record;
        existing.modRevision = event.kv.modRevision;
      } else {
        this.jobs.set(parsed.id, { record, modRevision: event.kv.modRevision, nodes: new Map() });
        if (record.state === 'voting') this.voteDue = true;
      }
      this.dirty.add(parsed.id);
      return;
    }
    const job = this.jobs.get(parsed.id);
    if (!job || event.type === 'delete') return;
    const known = job.nodes.get(parsed.node);
    if (known && known.modRevision >= event.kv.modRevision) return;
    job.nodes.set(parsed.node, {
      record: decodeJson<NodeJobRecord>(event.kv.value),
      modRevision: event.kv.modRevision,
    });
    this.dirty.add(parsed.id);
  }

  private async work(): Promise<void> {
    const liveness = this.livenessDue;
    while (this.dirty.size > 0 && !this.context.signal.aborted) {
      const [id] = this.dirty;
      if (id === undefined) break;
      this.dirty.delete(id);
      const job = this.jobs.get(id);
      if (!job) continue;
      const ok = await this.step(job);
      if (!ok) await this.reload(id);
    }
    if (liveness) this.livenessDue = false;
  }

  /** After a write lost a race: read the job again (and look at it again). */
  private async reload(id: string): Promise<void> {
    const kv = await this.backend.get(keys.job(id));
    if (!kv) {
      this.jobs.delete(id);
      return;
    }
    const record = decodeJson<JobRecord>(kv.value);
    if (FINAL_JOB_STATES.has(record.state)) {
      this.jobs.delete(id);
      return;
    }
    const nodes = await this.backend.range({ key: keys.nodes(id), prefix: true });
    const job: ActiveJob = { record, modRevision: kv.modRevision, nodes: new Map() };
    for (const n of nodes.kvs) {
      const node = decodeJson<NodeJobRecord>(n.value);
      job.nodes.set(node.node, { record: node, modRevision: n.modRevision });
    }
    this.jobs.set(id, job);
    this.dirty.add(id);
  }

  private async upNodes(): Promise<Set<string>> {
    if (this.up === null || this.now() - this.upAt >= 2 * this.tickMs) {
      this.up = await this.options.directory.upNodes();
      this.upAt = this.now();
    }
    return this.up;
  }

  /** One look at a job; false when a write lost a race (reload and look again). */
  private async step(job: ActiveJob): Promise<boolean> {
    if (job.record.state === 'voting') return this.vote(job);
    if (job.record.state !== 'running') return true;
    const { record } = job;
    // One pass over the nodes (a job may have 10,000).
    const inFlight: { record: NodeJobRecord; modRevision: number }[] = [];
    const unassigned: { record: NodeJobRecord; modRevision: number }[] = [];
    let failures = 0;
    for (const n of job.nodes.values()) {
      if (FINAL_NODE_STATES.has(n.record.state)) {
        if (FAILURES.has(n.record.state)) failures++;
      } else if (n.record.assignedAt === undefined) unassigned.push(n);
      else inFlight.push(n);
    }

    if (record.abortRequested) {
      const ok = await this.endNodes(job, inFlight, 'aborted', 'the job was aborted', true);
      const ok2 = await this.endNodes(
        job,
        unassigned,
        'aborted',
        'the job was aborted before this node started',
        false,
      );
      if (!ok || !ok2) return false;
      return this.finish(job, 'aborted', 'aborted on request');
    }
    const started = record.startedAt ? Date.parse(record.startedAt) : this.now();
    if (this.now() >= started + record.timeoutMs) {
      const ok = await this.endNodes(job, inFlight, 'timed_out', 'the job timed out', true);
      const ok2 = await this.endNodes(
        job,
        unassigned,
        'timed_out',
        'the job timed out before this node started',
        false,
      );
      if (!ok || !ok2) return false;
      return this.finish(job, 'timed_out', `timed out after ${Math.round(record.timeoutMs / 1000)}s`);
    }
    if (inFlight.length > 0 && this.livenessDue) {
      const up = await this.upNodes();
      const gone = inFlight.filter((n) => !up.has(n.record.node));
      if (gone.length > 0) {
        const reason = 'the node went down (its agent stopped renewing its session) while the job ran on it';
        if (!(await this.endNodes(job, gone, 'unreachable', reason, true))) return false;
        return this.step(job);
      }
    }
    const tolerated = toleratedOf(record.failureThreshold, record.nodes.length);
    if (failures > tolerated && unassigned.length > 0) {
      const reason = `not started: ${failures} nodes failed, more than the failure threshold (${describeAmount(record.failureThreshold)})`;
      if (!(await this.endNodes(job, unassigned, 'aborted', reason, false))) return false;
      return this.step(job);
    }
    const slots = record.concurrency === 0 ? unassigned.length : Math.max(0, record.concurrency - inFlight.length);
    if (slots > 0 && unassigned.length > 0) {
      const up = await this.upNodes();
      const next = unassigned.slice(0, slots);
      const down = next.filter((n) => !up.has(n.record.node));
      const ready = next.filter((n) => up.has(n.record.node));
      if (down.length > 0) {
        if (!(await this.endNodes(job, down, 'unreachable', 'the node was down when its turn came', false)))
          return false;
      }
      if (ready.length > 0 && !(await this.assign(job, ready))) return false;
      if (down.length > 0) return this.step(job);
      return true;
    }
    if (inFlight.length === 0 && unassigned.length === 0) {
      const total = job.nodes.size;
      if (failures > tolerated) {
        return this.finish(
          job,
          'failed',
          `${failures} of ${total} nodes failed, more than the failure threshold (${describeAmount(record.failureThreshold)})`,
        );
      }
      return this.finish(
        job,
        'complete',
        failures > 0 ? `${failures} of ${total} nodes failed, within the threshold` : undefined,
      );
    }
    return true;
  }

  /** Voting: which matched nodes are up (and allow the command); quorum; start the first ones. */
  private async vote(job: ActiveJob): Promise<boolean> {
    const { record } = job;
    let matched;
    try {
      matched = await this.options.directory.match(record.query);
      if (record.only !== undefined) {
        const only = new Set(record.only);
        matched = matched.filter((n) => only.has(n.name));
      }
    } catch (error) {
      return this.finish(job, 'quorum_failed', `the query cannot be used: ${(error as Error).message}`);
    }
    const available = matched.filter((n) => n.up && allowsCommand(n, record.command)).map((n) => n.name);
    const needed = Math.max(1, amountOf(record.quorum, matched.length));
    if (available.length < needed) {
      const why =
        matched.length === 0
          ? `no registered node matches ${JSON.stringify(record.query)}`
          : `${available.length} of ${matched.length} matched nodes are up and allow ${record.command}; the quorum (${describeAmount(record.quorum)}) needs ${needed}`;
      return this.finish(job, 'quorum_failed', why, { matched: matched.length, nodes: [] });
    }
    const first = record.concurrency === 0 ? available.length : Math.min(record.concurrency, available.length);
    const at = this.iso();
    const ops: TxnOp[] = [];
    const written = new Map<string, NodeJobRecord>();
    const run = encodeJson(this.assignment(record, 'run'));
    available.forEach((node, i) => {
      const state: NodeJobRecord = {
        node,
        state: 'pending',
        seq: -1,
        outputBytes: 0,
        truncated: false,
        ...(i < first ? { assignedAt: at } : {}),
      };
      written.set(node, state);
      ops.push({ type: 'put', key: keys.node(record.id, node), value: encodeJson(state) });
      if (i < first) ops.push({ type: 'put', key: keys.assignment(node, record.id), value: run });
    });
    const revisions = await this.writeOps(ops, []);
    if (revisions === null) return false;
    let i = 0;
    for (const [node, state] of written) remember(this.backend, job, node, state, revisions[i++] ?? 0);
    const next: JobRecord = { ...record, state: 'running', nodes: available, matched: matched.length, startedAt: at };
    if (!(await this.putJob(job, next))) return false;
    this.dirty.add(record.id);
    return true;
  }

  private assignment(record: JobRecord, state: Assignment['state']): Assignment {
    return {
      jobId: record.id,
      command: record.command,
      args: record.args,
      timeoutMs: record.timeoutMs,
      graceMs: record.graceMs,
      state,
    };
  }

  /** Ask these nodes to run the command. */
  private async assign(job: ActiveJob, nodes: { record: NodeJobRecord; modRevision: number }[]): Promise<boolean> {
    const at = this.iso();
    const ops: TxnOp[] = [];
    const compares: Compare[] = [];
    for (const n of nodes) {
      const next: NodeJobRecord = { ...n.record, assignedAt: at };
      ops.push({ type: 'put', key: keys.node(job.record.id, n.record.node), value: encodeJson(next) });
      ops.push({
        type: 'put',
        key: keys.assignment(n.record.node, job.record.id),
        value: encodeJson(this.assignment(job.record, 'run')),
      });
      compares.push({
        key: keys.node(job.record.id, n.record.node),
        target: 'modRevision',
        op: '=',
        value: n.modRevision,
      });
    }
    return this.writeNodes(job, nodes, ops, compares, (n) => ({ ...n.record, assignedAt: at }));
  }

  /** End these nodes' part in `state`; those that may be running get an abort assignment. */
  private async endNodes(
    job: ActiveJob,
    nodes: { record: NodeJobRecord; modRevision: number }[],
    state: NodeState,
    reason: string,
    stop: boolean,
  ): Promise<boolean> {
    if (nodes.length === 0) return true;
    const at = this.iso();
    const ops: TxnOp[] = [];
    const compares: Compare[] = [];
    const make = (n: { record: NodeJobRecord }): NodeJobRecord => ({ ...n.record, state, reason, finishedAt: at });
    for (const n of nodes) {
      ops.push({ type: 'put', key: keys.node(job.record.id, n.record.node), value: encodeJson(make(n)) });
      if (stop) {
        ops.push({
          type: 'put',
          key: keys.assignment(n.record.node, job.record.id),
          value: encodeJson(this.assignment(job.record, 'abort')),
        });
      }
      compares.push({
        key: keys.node(job.record.id, n.record.node),
        target: 'modRevision',
        op: '=',
        value: n.modRevision,
      });
    }
    return this.writeNodes(job, nodes, ops, compares, make);
  }

  /**
   * Write node changes in txns of at most OPS_PER_TXN ops, each comparing the
   * revisions of the nodes it changes; updates the in-memory view as they land.
   */
  private async writeNodes(
    job: ActiveJob,
    nodes: { record: NodeJobRecord; modRevision: number }[],
    ops: TxnOp[],
    compares: Compare[],
    make: (n: { record: NodeJobRecord }) => NodeJobRecord,
  ): Promise<boolean> {
    const perNode = ops.length / nodes.length;
    const nodesPerTxn = Math.max(1, Math.floor(OPS_PER_TXN / Math.max(perNode, 1) / 2));
    const starts: number[] = [];
    for (let i = 0; i < nodes.length; i += nodesPerTxn) starts.push(i);
    // The txns are independent (each compares its own nodes): in flight together, the
    // store makes them durable together instead of one disk flush each.
    const results = await inFlightTogether(
      starts,
      async (i) => {
        const slice = nodes.slice(i, i + nodesPerTxn);
        const result = await this.backend.txn({
          compare: [this.context.fence, ...compares.slice(i, i + nodesPerTxn)],
          success: ops.slice(i * perNode, (i + slice.length) * perNode),
          failure: [],
        });
        if (result.succeeded)
          for (const n of slice) remember(this.backend, job, n.record.node, make(n), result.revision);
        return result.succeeded;
      },
      Boolean,
    );
    return results !== null;
  }

  /** Fenced writes in txns of at most OPS_PER_TXN; the revision each op landed at, or null if leadership was lost. */
  private async writeOps(ops: TxnOp[], compares: Compare[]): Promise<number[] | null> {
    const starts: number[] = [];
    for (let i = 0; i < ops.length; i += OPS_PER_TXN) starts.push(i);
    // In flight together: one disk flush for many txns (10,000 nodes are 170 txns).
    const results = await inFlightTogether(
      starts,
      async (i) => {
        const slice = ops.slice(i, i + OPS_PER_TXN);
        const result = await this.backend.txn({
          compare: [this.context.fence, ...compares],
          success: slice,
          failure: [],
        });
        return result.succeeded
          ? slice.flatMap((op) => (op.type === 'put' && op.key.startsWith(JOBS_PREFIX) ? [result.revision] : []))
          : null;
      },
      (r) => r !== null,
    );
    return results === null ? null : results.flatMap((r) => r ?? []);
  }

  private async putJob(job: ActiveJob, next: JobRecord): Promise<boolean> {
    const key = keys.job(next.id);
    const result = await this.backend.txn({
      compare: [this.context.fence, { key, target: 'modRevision', op: '=', value: job.modRevision }],
      success: [{ type: 'put', key, value: encodeJson(next) }],
      failure: [],
    });
    if (!result.succeeded) return false;
    job.record = next;
    job.modRevision = result.revision;
    if (FINAL_JOB_STATES.has(next.state)) this.jobs.delete(next.id);
    return true;
  }

  private finish(
    job: ActiveJob,
    state: JobRecord['state'],
    reason: string | undefined,
    extra: Partial<JobRecord> = {},
  ): Promise<boolean> {
    const next: JobRecord = {
      ...job.record,
      ...extra,
      state,
      finishedAt: this.iso(),
      counts: countStates([...job.nodes.values()].map((n) => n.record)),
    };
    if (reason !== undefined) next.reason = reason;
    return this.putJob(job, next);
  }
}

/** For tests: a job as stored. */
export type { StoredJob };

/** Txns a scheduler pass keeps in flight at once. */
export const TXNS_IN_FLIGHT = 16;

/**
 * `fn` over `items`, at most TXNS_IN_FLIGHT at a time; the results in the items'
 * order, or null once one was not `ok` (a txn refused: the fence or a compare
 * lost). After the first refusal or error no further item is taken, and it
 * returns (or rethrows the first error) only when every call in flight has
 * settled: nothing of a pass is still being written when the caller (or the
 * duty, restarted) goes on.
 */
export async function inFlightTogether<T, R>(
  items: readonly T[],
  fn: (item: T) => Promise<R>,
  ok: (result: R) => boolean,
): Promise<R[] | null> {
  const results: R[] = new Array<R>(items.length);
  let next = 0;
  let stopped = false;
  const errors: unknown[] = [];
  const worker = async (): Promise<void> => {
    while (!stopped && next < items.length) {
      const index = next++;
      try {
        const result = await fn(items[index] as T);
        results[index] = result;
        if (!ok(result)) stopped = true;
      } catch (error) {
        errors.push(error);
        stopped = true;
      }
    }
  };
  await Promise.allSettled(Array.from({ length: Math.min(TXNS_IN_FLIGHT, items.length) }, worker));
  if (errors.length > 0) throw errors[0];
  return stopped ? null : results;
}
