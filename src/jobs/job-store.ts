/**
 * Jobs in the keyspace: create, read, list, abort, take a node's report, read
 * its output, prune. Used by the routes (on any server) and by the scheduler
 * (on the one that leads the duties); every read-modify-write is a txn that
 * compares the revision it read, so the two never overwrite each other.
 */
import type { JobReport } from '../api/agent-protocol.js';
import type { Backend, Compare, KeyValue, TxnOp } from '../core/backend.js';
import { InvalidArgumentError, MusterError } from '../core/errors.js';
import type { ErrorCode } from '../core/error-catalogue.js';
import { perStore } from '../core/per-store.js';
import { FencedOutError, holds } from '../server/duties/duty-runner.js';
import type { Runtime } from '../core/runtime.js';
import type { JobRecord, JobRequest, JobView, NodeJobRecord, NodeState, OutputChunk } from './job-model.js';
import {
  DEFAULT_JOB_OUTPUT_LIMIT,
  FINAL_JOB_STATES,
  FINAL_NODE_STATES,
  JOBS_PREFIX,
  JOB_INDEX_BUILT,
  JOB_INDEX_PREFIX,
  checkJobRequest,
  countStates,
  decodeJson,
  encodeJson,
  keys,
  newJobId,
  parseJobKey,
} from './job-model.js';

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** No job has this id, or the node has no part in it. */
export class JobNotFoundError extends MusterError {
  readonly code: ErrorCode = 'job_not_found';
  constructor(
    readonly id: string,
    readonly node?: string,
  ) {
    super(node === undefined ? `no job has the id ${JSON.stringify(id)}` : `node ${node} has no part in job ${id}`);
  }
}

/** A report that cannot be taken in the node's present state (a report before the node was asked to run). */
export class JobConflictError extends MusterError {
  readonly code: ErrorCode = 'job_conflict';
  constructor(message: string) {
    super(message);
  }
}

/** Ops per txn: the stores take 128 (etcd's default --max-txn-ops). */
export const OPS_PER_TXN = 120;

export interface StoredJob {
  readonly record: JobRecord;
  readonly modRevision: number;
}

export interface StoredNode {
  readonly record: NodeJobRecord;
  readonly modRevision: number;
}

export interface JobStoreOptions {
  /** Output kept per node per job, bytes. @default 1 MiB */
  readonly outputLimit?: number;
}

/** Node states remembered from this process's own writes, per store. */
const RECENT_NODES = 20_000;
const recentByBackend = perStore(() => new Map<string, StoredNode>());

/**
 * The node states this process wrote last to `backend` (the routes' reports and
 * the scheduler's assignments), oldest first: the next report of a node usually
 * finds its state here and spares a read. Only a hint: every write compares the
 * revision, and a miss or a stale entry reads the store.
 */
export function recentNodes(backend: Backend): Map<string, StoredNode> {
  return recentByBackend(backend);
}

/** Remember a node state this process wrote (see recentNodes). */
export function rememberNode(backend: Backend, key: string, node: StoredNode): void {
  const recent = recentNodes(backend);
  // Writes answered out of order (txns in flight together) must not put an older state back.
  const known = recent.get(key);
  if (known && known.modRevision > node.modRevision) return;
  recent.delete(key);
  recent.set(key, node);
  if (recent.size > RECENT_NODES) {
    const oldest = recent.keys().next().value;
    if (oldest !== undefined) recent.delete(oldest);
  }
}

export class JobStore {
  readonly outputLimit: number;
  private readonly recent: Map<string, StoredNode>;

  constructor(
    readonly backend: Backend,
    private readonly runtime: Runtime,
    options: JobStoreOptions = {},
  ) {
    this.outputLimit = options.outputLimit ?? DEFAULT_JOB_OUTPUT_LIMIT;
    this.recent = recentNodes(backend);
  }

  private iso(): string {
    return new Date(this.runtime.clock.now()).toISOString();
  }

  /**
   * Record a new job (state voting); the scheduler takes it from there. A duty
   * (a trigger, a plan) passes its `fence`: the job is created only while it still
   * leads, else FencedOutError, so on etcd two servers never both start one. With
   * `once` (a key, such as `/muster/plan-jobs/<plan>/<step>/<batch>`), at most one
   * job is ever created for it: a caller that asks again (after a restart lost its
   * own record of the first answer) gets that job back.
   */
  async create(request: JobRequest, createdBy: string, fence?: Compare, once?: string): Promise<JobRecord> {
    const spec = checkJobRequest(request);
    for (;;) {
      if (once !== undefined) {
        const earlier = await this.backend.get(once);
        if (earlier) return (await this.require(decoder.decode(earlier.value))).record;
      }
      const id = newJobId(this.runtime.clock.now(), this.runtime.random);
      const record: JobRecord = {
        id,
        ...spec,
        state: 'voting',
        nodes: [],
        matched: 0,
        createdAt: this.iso(),
        createdBy,
      };
      const key = keys.job(id);
      const result = await this.backend.txn({
        compare: [
          ...(fence ? [fence] : []),
          { key, target: 'version', op: '=', value: 0 },
          ...(once !== undefined ? [{ key: once, target: 'version' as const, op: '=' as const, value: 0 }] : []),
        ],
        success: [
          { type: 'put', key, value: encodeJson(record) },
          { type: 'put', key: keys.index(id), value: new Uint8Array() },
          ...(once !== undefined ? [{ type: 'put' as const, key: once, value: encoder.encode(id) }] : []),
        ],
        failure: [],
      });
      if (result.succeeded) return record;
      if (fence && !(await holds(this.backend, fence))) {
        throw new FencedOutError(`${createdBy}: the job was not started`);
      }
      // An id taken already, or `once` created meanwhile: look again.
    }
  }

  async get(id: string): Promise<StoredJob | null> {
    const kv = await this.backend.get(keys.job(id));
    return kv ? { record: decodeJson<JobRecord>(kv.value), modRevision: kv.modRevision } : null;
  }

  async require(id: string): Promise<StoredJob> {
    const job = await this.get(id);
    if (!job) throw new JobNotFoundError(id);
    return job;
  }

  async nodeStates(id: string, revision?: number): Promise<StoredNode[]> {
    const range = await this.backend.range({ key: keys.nodes(id), prefix: true, ...(revision ? { revision } : {}) });
    return range.kvs.map((kv) => ({ record: decodeJson<NodeJobRecord>(kv.value), modRevision: kv.modRevision }));
  }

  async view(id: string, withNodes: boolean): Promise<JobView> {
    const job = await this.require(id);
    const nodes = (await this.nodeStates(id)).map((n) => n.record);
    return { ...job.record, counts: countStates(nodes), ...(withNodes ? { nodeStates: nodes } : {}) };
  }

  /**
   * Give every job stored before the job index existed (by an older server) its
   * index key, once: without it the scheduler would never load it (a running job
   * never ended), the list would hide it and retention never delete it. Run by
   * the scheduler before it reads the index; every txn is fenced by the duty, and
   * the marker JOB_INDEX_BUILT is written last, so a server that lost the duty
   * midway leaves the work to the next. Returns how many keys it wrote.
   */
  async backfillIndex(fence: Compare): Promise<number> {
    if (await this.backend.get(JOB_INDEX_BUILT)) return 0;
    const range = await this.backend.range({ key: JOBS_PREFIX, prefix: true, keysOnly: true });
    const jobs = range.kvs.filter((kv) => parseJobKey(kv.key)?.kind === 'job');
    let written = 0;
    // A compare per job (its creation): one deleted meanwhile gets no index key left behind.
    for (let i = 0; i < jobs.length;) {
      const batch = jobs.slice(i, i + OPS_PER_TXN);
      const result = await this.backend.txn({
        compare: [
          fence,
          ...batch.map((kv): Compare => ({ key: kv.key, target: 'createRevision', op: '=', value: kv.createRevision })),
        ],
        success: batch.map((kv): TxnOp => {
          const id = kv.key.slice(JOBS_PREFIX.length);
          return { type: 'put', key: keys.index(id), value: new Uint8Array() };
        }),
        failure: [],
      });
      if (result.succeeded) {
        written += batch.length;
        i += batch.length;
        continue;
      }
      if (!(await holds(this.backend, fence))) throw new FencedOutError('indexing the jobs stored before the index');
      // A job of the batch was deleted (or made again): keep those still as they were read.
      const still: KeyValue[] = [];
      for (const kv of batch) {
        const now = await this.backend.get(kv.key);
        if (now?.createRevision === kv.createRevision) still.push(kv);
      }
      jobs.splice(i, batch.length, ...still);
      if (still.length === batch.length) throw new Error('the job index backfill keeps being refused');
    }
    const done = await this.backend.txn({
      compare: [fence],
      success: [{ type: 'put', key: JOB_INDEX_BUILT, value: encoder.encode(this.iso()) }],
      failure: [],
    });
    if (!done.succeeded) throw new FencedOutError('indexing the jobs stored before the index');
    return written;
  }

  /** Every job id, oldest first. */
  async ids(): Promise<string[]> {
    const range = await this.backend.range({ key: JOB_INDEX_PREFIX, prefix: true, keysOnly: true });
    return range.kvs.map((kv) => kv.key.slice(JOB_INDEX_PREFIX.length));
  }

  /** The jobs, newest first, at most `limit`, those `visible` says the caller may see. */
  async list(options: { limit?: number; visible?: (job: JobRecord) => boolean } = {}): Promise<JobView[]> {
    const ids = (await this.ids()).reverse();
    const out: JobView[] = [];
    for (const id of ids) {
      if (options.limit !== undefined && out.length >= options.limit) break;
      const job = await this.get(id);
      if (!job || (options.visible && !options.visible(job.record))) continue;
      // A finished job says how its nodes ended; a running one is counted now.
      let counts = job.record.counts;
      if (counts === undefined) {
        const nodes = await this.backend.range({ key: keys.nodes(id), prefix: true });
        counts = countStates(nodes.kvs.map((kv) => decodeJson<NodeJobRecord>(kv.value)));
      }
      out.push({ ...job.record, counts });
    }
    return out;
  }

  /** Ask for an abort (the scheduler carries it out); a finished job is left as it is. */
  async requestAbort(id: string): Promise<JobRecord> {
    for (;;) {
      const job = await this.require(id);
      if (FINAL_JOB_STATES.has(job.record.state) || job.record.abortRequested) return job.record;
      const record: JobRecord = { ...job.record, abortRequested: true };
      const key = keys.job(id);
      const result = await this.backend.txn({
        compare: [{ key, target: 'modRevision', op: '=', value: job.modRevision }],
        success: [{ type: 'put', key, value: encodeJson(record) }],
        failure: [],
      });
      if (result.succeeded) return record;
    }
  }

  /**
   * Take one report of `node` about job `id`. A seq at or below the last one
   * taken is a duplicate (an agent resending what it was not sure arrived):
   * answered, not applied.
   */
  async report(id: string, node: string, report: JobReport): Promise<{ accepted: boolean; state: NodeState }> {
    const key = keys.node(id, node);
    // A node's reports come one after another: the state this server wrote last
    // is most likely still the state (the txn's compare says when it is not). It
    // is only a hint: a report is never refused on it, the store is read first.
    let remembered = this.recent.get(key);
    for (let attempt = 0; ; attempt++) {
      let stored = remembered;
      remembered = undefined;
      const cached = stored !== undefined;
      if (!stored) {
        const kv = await this.backend.get(key);
        if (!kv) {
          if (!(await this.get(id))) throw new JobNotFoundError(id);
          throw new JobNotFoundError(id, node);
        }
        stored = { record: decodeJson<NodeJobRecord>(kv.value), modRevision: kv.modRevision };
      }
      this.recent.delete(key);
      const current = stored.record;
      const refusal = refusalOf(current, report);
      if (refusal !== null) {
        // What this process remembers may be older than the store (the assignment's
        // txn answered after the agent, told by the watch, already reported).
        if (cached) continue;
        if (refusal === 'duplicate') return { accepted: false, state: current.state };
        throw new JobConflictError(`node ${node} was not asked to run job ${id} yet: a report is not expected`);
      }
      const { next, ops } = await this.apply(id, current, report);
      const compare: Compare[] = [{ key, target: 'modRevision', op: '=', value: stored.modRevision }];
      if (FINAL_NODE_STATES.has(current.state) && next.state !== current.state) {
        // A node the server gave up on tells how it ended after all: the job's record changes with it.
        const job = await this.jobWithNode(id, node, next);
        if (job) {
          compare.push({ key: keys.job(id), target: 'modRevision', op: '=', value: job.modRevision });
          ops.push({ type: 'put', key: keys.job(id), value: encodeJson(job.record) });
        }
      }
      const result = await this.backend.txn({
        compare,
        success: [...ops, { type: 'put', key, value: encodeJson(next) }],
        failure: [],
      });
      if (result.succeeded) {
        if (!FINAL_NODE_STATES.has(next.state))
          rememberNode(this.backend, key, { record: next, modRevision: result.revision });
        return { accepted: true, state: next.state };
      }
      if (attempt > 50) throw new JobConflictError(`node ${node}'s state in job ${id} keeps changing; report again`);
    }
  }

  /**
   * The job's record as it is to be written with `node` now in `next`: a job that
   * ended says how its nodes ended (`counts`), so they are counted again. A job
   * not ended yet is written unchanged: its new revision refuses a scheduler's end
   * of it counted before this change (the scheduler reads the job again).
   */
  private async jobWithNode(id: string, node: string, next: NodeJobRecord): Promise<StoredJob | null> {
    const job = await this.get(id);
    if (!job || job.record.counts === undefined) return job;
    const nodes = (await this.nodeStates(id)).map((n) => (n.record.node === node ? next : n.record));
    return { ...job, record: { ...job.record, counts: countStates(nodes) } };
  }

  private async apply(
    id: string,
    current: NodeJobRecord,
    report: JobReport,
  ): Promise<{ next: NodeJobRecord; ops: TxnOp[] }> {
    const next: NodeJobRecord = { ...current, seq: report.seq };
    const ops: TxnOp[] = [];
    const final = FINAL_NODE_STATES.has(current.state);
    // A node the server gave up on may still tell what happened, unless it was stopped for it.
    const mayEnd = !final || (current.state === 'unreachable' && !(report.type === 'exit' && report.reason));
    switch (report.type) {
      case 'started':
        if (!final) {
          next.state = 'running';
          next.startedAt = this.iso();
        }
        next.pid = report.pid;
        break;
      case 'output': {
        const bytes =
          report.encoding === 'base64' ? Buffer.from(report.data, 'base64').length : Buffer.byteLength(report.data);
        if (bytes > 65_536)
          throw new InvalidArgumentError('an output report carries at most 64 KiB', 'invalid_request');
        const chunk: OutputChunk = {
          node: current.node,
          seq: report.seq,
          stream: report.stream,
          data: report.data,
          ...(report.encoding ? { encoding: report.encoding } : {}),
          at: this.iso(),
        };
        ops.push({ type: 'put', key: keys.chunk(id, current.node, report.seq), value: encodeJson(chunk) });
        next.outputBytes = current.outputBytes + bytes;
        if (next.outputBytes > this.outputLimit) {
          const trimmed = await this.trim(id, current.node, next.outputBytes - this.outputLimit);
          ops.push(...trimmed.ops);
          next.outputBytes -= trimmed.bytes;
          next.truncated = true;
        }
        break;
      }
      case 'exit':
        if (mayEnd) {
          next.state =
            report.reason === 'timed_out'
              ? 'timed_out'
              : report.reason === 'aborted'
                ? 'aborted'
                : report.exitCode === 0
                  ? 'succeeded'
                  : 'failed';
          next.finishedAt = this.iso();
        }
        next.exitCode = report.exitCode;
        next.signal = report.signal;
        ops.push({ type: 'delete', key: keys.assignment(current.node, id) });
        break;
      case 'rejected':
        if (mayEnd) {
          next.state = 'rejected';
          next.finishedAt = this.iso();
        }
        next.reason = report.reason;
        ops.push({ type: 'delete', key: keys.assignment(current.node, id) });
        break;
    }
    return { next, ops };
  }

  /** Deletes of the oldest chunks holding at least `excess` bytes (at most a txn's worth). */
  private async trim(id: string, node: string, excess: number): Promise<{ ops: TxnOp[]; bytes: number }> {
    const range = await this.backend.range({ key: keys.output(id, node), prefix: true, limit: OPS_PER_TXN - 2 });
    const ops: TxnOp[] = [];
    let bytes = 0;
    for (const kv of range.kvs) {
      if (bytes >= excess) break;
      ops.push({ type: 'delete', key: kv.key });
      bytes += chunkBytes(decodeJson<OutputChunk>(kv.value));
    }
    return { ops, bytes };
  }

  /** A node's output chunks, oldest first. */
  async output(id: string, node: string): Promise<{ chunks: OutputChunk[]; truncated: boolean }> {
    const stored = await this.backend.get(keys.node(id, node));
    if (!stored) {
      await this.require(id);
      throw new JobNotFoundError(id, node);
    }
    const state = decodeJson<NodeJobRecord>(stored.value);
    const range = await this.backend.range({ key: keys.output(id, node), prefix: true });
    return { chunks: range.kvs.map((kv) => decodeJson<OutputChunk>(kv.value)), truncated: state.truncated };
  }

  /** Delete a job and everything under it, and its nodes' assignments (fenced by `fence` when given). */
  async remove(job: JobRecord, fence?: Compare): Promise<void> {
    const compare = fence ? [fence] : [];
    const assignments: TxnOp[] = job.nodes.map((node) => ({ type: 'delete', key: keys.assignment(node, job.id) }));
    for (let i = 0; i < assignments.length; i += OPS_PER_TXN) {
      await this.backend.txn({ compare, success: assignments.slice(i, i + OPS_PER_TXN), failure: [] });
    }
    await this.backend.txn({
      compare,
      success: [
        { type: 'delete', key: keys.jobChildren(job.id), prefix: true },
        { type: 'delete', key: keys.job(job.id) },
        { type: 'delete', key: keys.index(job.id) },
      ],
      failure: [],
    });
  }
}

/** Why a report is not taken in the node's state: a duplicate (answered, not applied), or not expected yet. */
function refusalOf(current: NodeJobRecord, report: JobReport): 'duplicate' | 'unexpected' | null {
  if (report.seq <= current.seq) return 'duplicate';
  if (current.assignedAt === undefined) return 'unexpected';
  return null;
}

export function chunkBytes(chunk: OutputChunk): number {
  return chunk.encoding === 'base64' ? Buffer.from(chunk.data, 'base64').length : Buffer.byteLength(chunk.data);
}

export function decodeNode(kv: KeyValue): NodeJobRecord {
  return decodeJson<NodeJobRecord>(kv.value);
}

/** A duty that lost its leadership starts no job (FencedOutError, as every fenced write of a duty). */
export { FencedOutError };
