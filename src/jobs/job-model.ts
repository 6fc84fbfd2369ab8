/**
 * Push jobs: what a job and a node's part in it look like, and where they live
 * in the keyspace. Everything a job is lives under `/muster/jobs/<id>` (the
 * record) and `/muster/jobs/<id>/…` (per-node state and output), and what a node
 * is asked to run under `/muster/assign/<node>/<id>`, so a restarted server (or
 * another server in front of the same etcd) picks the bookkeeping up where it was.
 */
import Type from 'typebox';
import type { Static } from 'typebox';
import { InvalidArgumentError } from '../core/errors.js';
import { parseDurationWithin } from '../core/duration.js';

export const JOBS_PREFIX = '/muster/jobs/';
/** One empty key per job, so listing jobs reads as many keys as there are jobs (not their nodes and output). */
export const JOB_INDEX_PREFIX = '/muster/job-index/';
export const ASSIGN_PREFIX = '/muster/assign/';
/**
 * Written once every job stored before the job index existed has its index key
 * (JobStore.backfillIndex): a server that finds it reads the index only.
 */
export const JOB_INDEX_BUILT = '/muster/meta/job-index';

export const JOB_STATES = ['voting', 'running', 'complete', 'failed', 'quorum_failed', 'aborted', 'timed_out'] as const;
export type JobState = (typeof JOB_STATES)[number];
/** The states a job ends in. */
export const FINAL_JOB_STATES: ReadonlySet<JobState> = new Set([
  'complete',
  'failed',
  'quorum_failed',
  'aborted',
  'timed_out',
]);

export const NODE_STATES = [
  'pending',
  'running',
  'succeeded',
  'failed',
  'timed_out',
  'rejected',
  'unreachable',
  'aborted',
] as const;
export type NodeState = (typeof NODE_STATES)[number];
/** A node's part is over in these states (nothing more will run). */
export const FINAL_NODE_STATES: ReadonlySet<NodeState> = new Set([
  'succeeded',
  'failed',
  'timed_out',
  'rejected',
  'unreachable',
  'aborted',
]);

/** A job id: sortable by time (base-36 milliseconds, fixed width) then random. */
const JOB_ID = /^[0-9a-z]{9}-[0-9a-f]{6}$/;
/** A node name: as the registry takes it. */
const NODE_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

/** @default 1 hour */
export const DEFAULT_JOB_TIMEOUT_MS = 3_600_000;
export const MAX_JOB_TIMEOUT_MS = 7 * 86_400_000;
/** After SIGTERM (abort, timeout) the agent waits this long before SIGKILL. @default 10 s */
export const DEFAULT_GRACE_MS = 10_000;
/** The output kept per node per job, the oldest dropped first. @default 1 MiB */
export const DEFAULT_JOB_OUTPUT_LIMIT = 1024 * 1024;
/** How long finished jobs are kept. @default 7 days */
export const DEFAULT_JOB_RETENTION_MS = 7 * 86_400_000;

const countOrPercent = Type.Union([
  Type.Integer({ minimum: 0, maximum: 1_000_000 }),
  Type.String({ pattern: '^[0-9]{1,7}(\\.[0-9]+)?%?$', maxLength: 16 }),
]);

/** `POST /v1/jobs`. */
export const JobRequest = Type.Object(
  {
    /** The node query (docs/queries.md), such as `role:web AND env:prod`. */
    query: Type.String({ minLength: 1, maxLength: 4096 }),
    /** The allowlisted command's name. */
    command: Type.String({ minLength: 1, maxLength: 128, pattern: '^[A-Za-z0-9][A-Za-z0-9._:-]*$' }),
    args: Type.Optional(Type.Array(Type.String({ maxLength: 4096 }), { maxItems: 64 })),
    /** How many matched nodes must be up: a count (3) or a percentage ("80%"). @default "100%" */
    quorum: Type.Optional(countOrPercent),
    /** How many nodes run at once; 0: all. @default 0 */
    concurrency: Type.Optional(Type.Integer({ minimum: 0, maximum: 1_000_000 })),
    /** How many failed nodes are tolerated (count or "10%"); more stops the rollout. @default 0 */
    failureThreshold: Type.Optional(countOrPercent),
    /** A duration ("30m") or seconds. @default 1h */
    timeout: Type.Optional(Type.Union([Type.String({ maxLength: 32 }), Type.Number({ minimum: 0 })])),
    /** After SIGTERM, how long before SIGKILL. @default 10s */
    grace: Type.Optional(Type.Union([Type.String({ maxLength: 32 }), Type.Number({ minimum: 0 })])),
    /** Only these of the nodes the query matches (a plan's batch). @default all of them */
    only: Type.Optional(Type.Array(Type.String({ minLength: 1, maxLength: 128 }), { maxItems: 100_000 })),
  },
  { additionalProperties: false },
);
export type JobRequest = Static<typeof JobRequest>;

/** A count, or a share of a total. */
export interface Amount {
  readonly count?: number;
  readonly percent?: number;
}

export const AmountSchema = Type.Object({
  count: Type.Optional(Type.Integer()),
  percent: Type.Optional(Type.Number()),
});

/** `/muster/jobs/<id>`: the job as `GET /v1/jobs/<id>` shows it (with its nodes' states). */
export const JobRecord = Type.Object({
  id: Type.String(),
  query: Type.String(),
  command: Type.String(),
  args: Type.Array(Type.String()),
  quorum: AmountSchema,
  concurrency: Type.Integer(),
  failureThreshold: AmountSchema,
  timeoutMs: Type.Integer(),
  graceMs: Type.Integer(),
  state: Type.Enum([...JOB_STATES]),
  /** Why it ended, when not complete: "quorum: 2 of 3 nodes up, 3 needed", … */
  reason: Type.Optional(Type.String()),
  /** The nodes the job runs on (matched and up when it started). */
  nodes: Type.Array(Type.String()),
  /** How many registered nodes the query matched (up or not). */
  matched: Type.Integer(),
  /** Only these of the matched nodes (a plan's batch). */
  only: Type.Optional(Type.Array(Type.String())),
  createdAt: Type.String(),
  startedAt: Type.Optional(Type.String()),
  finishedAt: Type.Optional(Type.String()),
  /** The token that started it ("trigger:<name>" for a trigger). */
  createdBy: Type.String(),
  /** Set by `DELETE /v1/jobs/<id>`; the scheduler carries the abort out. */
  abortRequested: Type.Optional(Type.Boolean()),
  /** How many nodes ended in each state, written when the job ends. */
  counts: Type.Optional(Type.Record(Type.String(), Type.Integer())),
});
export type JobRecord = Static<typeof JobRecord>;

/** `/muster/jobs/<id>/nodes/<node>`: one node's part. */
export const NodeJobRecord = Type.Object({
  node: Type.String(),
  state: Type.Enum([...NODE_STATES]),
  /** Set once the assignment was written (the node counts toward the concurrency until it ends). */
  assignedAt: Type.Optional(Type.String()),
  startedAt: Type.Optional(Type.String()),
  finishedAt: Type.Optional(Type.String()),
  pid: Type.Optional(Type.Integer()),
  exitCode: Type.Optional(Type.Union([Type.Integer(), Type.Null()])),
  signal: Type.Optional(Type.Union([Type.String(), Type.Null()])),
  reason: Type.Optional(Type.String()),
  /** The highest report seq taken (-1: none yet). */
  seq: Type.Integer(),
  /** Output bytes kept now, and whether older output was dropped to keep within the limit. */
  outputBytes: Type.Integer(),
  truncated: Type.Boolean(),
});
export type NodeJobRecord = Static<typeof NodeJobRecord>;

/** `/muster/jobs/<id>/out/<node>/<seq>`: one chunk of a node's output. */
export const OutputChunk = Type.Object({
  node: Type.String(),
  seq: Type.Integer(),
  stream: Type.Enum(['stdout', 'stderr']),
  data: Type.String(),
  encoding: Type.Optional(Type.Enum(['base64'])),
  at: Type.String(),
});
export type OutputChunk = Static<typeof OutputChunk>;

/** A job as the API shows it. */
export const JobView = Type.Object({
  ...JobRecord.properties,
  counts: Type.Record(Type.String(), Type.Integer()),
  nodeStates: Type.Optional(Type.Array(NodeJobRecord)),
});
export type JobView = Static<typeof JobView>;

export const keys = {
  job: (id: string) => `${JOBS_PREFIX}${id}`,
  index: (id: string) => `${JOB_INDEX_PREFIX}${id}`,
  /** Everything under a job but its record. */
  jobChildren: (id: string) => `${JOBS_PREFIX}${id}/`,
  nodes: (id: string) => `${JOBS_PREFIX}${id}/nodes/`,
  node: (id: string, node: string) => `${JOBS_PREFIX}${id}/nodes/${node}`,
  output: (id: string, node: string) => `${JOBS_PREFIX}${id}/out/${node}/`,
  chunk: (id: string, node: string, seq: number) => `${JOBS_PREFIX}${id}/out/${node}/${String(seq).padStart(10, '0')}`,
  assignments: (node: string) => `${ASSIGN_PREFIX}${node}/`,
  assignment: (node: string, id: string) => `${ASSIGN_PREFIX}${node}/${id}`,
};

/** What a key under `/muster/jobs/` is. */
export type JobKey =
  | { readonly kind: 'job'; readonly id: string }
  | { readonly kind: 'node'; readonly id: string; readonly node: string }
  | { readonly kind: 'output'; readonly id: string; readonly node: string; readonly seq: number };

export function parseJobKey(key: string): JobKey | null {
  if (!key.startsWith(JOBS_PREFIX)) return null;
  const parts = key.slice(JOBS_PREFIX.length).split('/');
  const id = parts[0] ?? '';
  if (parts.length === 1) return { kind: 'job', id };
  if (parts.length === 3 && parts[1] === 'nodes') return { kind: 'node', id, node: parts[2] ?? '' };
  if (parts.length === 4 && parts[1] === 'out')
    return { kind: 'output', id, node: parts[2] ?? '', seq: Number(parts[3]) };
  return null;
}

export function newJobId(now: number, random: () => number): string {
  const time = now.toString(36).padStart(9, '0');
  const rand = Math.floor(random() * 0x1000000)
    .toString(16)
    .padStart(6, '0');
  return `${time}-${rand}`;
}

export function validateJobId(id: string): string {
  if (!JOB_ID.test(id)) {
    throw new InvalidArgumentError(
      `invalid job id ${JSON.stringify(id.slice(0, 80))}: a job id looks like 0mhq3x1k2-4f9a0c`,
      'invalid_request',
    );
  }
  return id;
}

export function validateNodeName(node: string): string {
  if (!NODE_NAME.test(node)) {
    throw new InvalidArgumentError(
      `invalid node name ${JSON.stringify(node.slice(0, 80))}: use 1-128 letters, digits, ".", "_" or "-"`,
      'invalid_name',
    );
  }
  return node;
}

/** "80%", "3", 3 → an Amount; `what` names it in the error. */
export function parseAmount(value: string | number, what: string): Amount {
  if (typeof value === 'number') return { count: value };
  const text = value.trim();
  const match = /^([0-9]{1,7}(?:\.[0-9]+)?)(%?)$/.exec(text);
  if (!match) {
    throw new InvalidArgumentError(`invalid ${what} ${JSON.stringify(value)}: use a count (3) or a percentage (80%)`);
  }
  const n = Number(match[1]);
  if (match[2] === '%') {
    if (n > 100) throw new InvalidArgumentError(`invalid ${what} ${JSON.stringify(value)}: at most 100%`);
    return { percent: n };
  }
  if (!Number.isInteger(n)) throw new InvalidArgumentError(`invalid ${what} ${JSON.stringify(value)}: a whole count`);
  return { count: n };
}

/** How many of `total` an amount is (a percentage rounds up: 80% of 3 is 3). */
export function amountOf(amount: Amount, total: number): number {
  if (amount.percent !== undefined) return Math.ceil((amount.percent * total) / 100 - 1e-9);
  return amount.count ?? 0;
}

/** How many failures `amount` tolerates out of `total` (a percentage rounds down: 10% of 5 is 0). */
export function toleratedOf(amount: Amount, total: number): number {
  if (amount.percent !== undefined) return Math.floor((amount.percent * total) / 100 + 1e-9);
  return amount.count ?? 0;
}

export function describeAmount(amount: Amount): string {
  return amount.percent !== undefined ? `${amount.percent}%` : String(amount.count ?? 0);
}

/** A job request checked and given its defaults (InvalidArgumentError naming what is wrong). */
export function checkJobRequest(request: JobRequest): {
  query: string;
  command: string;
  args: string[];
  quorum: Amount;
  concurrency: number;
  failureThreshold: Amount;
  timeoutMs: number;
  graceMs: number;
  only?: string[];
} {
  return {
    ...(request.only !== undefined ? { only: [...new Set(request.only)] } : {}),
    query: request.query,
    command: request.command,
    args: request.args ?? [],
    quorum: parseAmount(request.quorum ?? '100%', 'quorum'),
    concurrency: request.concurrency ?? 0,
    failureThreshold: parseAmount(request.failureThreshold ?? 0, 'failure threshold'),
    timeoutMs:
      request.timeout === undefined
        ? DEFAULT_JOB_TIMEOUT_MS
        : parseDurationWithin(request.timeout, 'timeout', { aboveZero: true, maxMs: MAX_JOB_TIMEOUT_MS, max: '7d' }),
    graceMs:
      request.grace === undefined
        ? DEFAULT_GRACE_MS
        : parseDurationWithin(request.grace, 'grace', { aboveZero: false, maxMs: 3_600_000, max: '1h' }),
  };
}

/** How many nodes are in each state. */
export function countStates(nodes: Iterable<{ state: NodeState }>): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const s of NODE_STATES) counts[s] = 0;
  for (const n of nodes) counts[n.state] = (counts[n.state] ?? 0) + 1;
  return counts;
}

export const encoder = new TextEncoder();
export const decoder = new TextDecoder();

export function encodeJson(value: unknown): Uint8Array {
  return encoder.encode(JSON.stringify(value));
}

export function decodeJson<T>(bytes: Uint8Array): T {
  return JSON.parse(decoder.decode(bytes)) as T;
}
