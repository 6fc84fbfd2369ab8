/**
 * The contract between a node's agent (src/agent/) and the server's jobs
 * (src/jobs/): what the server asks a node to run, and what the node reports
 * back. The agent holds one outbound stream of assignments
 * (`GET /v1/nodes/<node>/assignments`, SSE, resumable from a revision) and
 * reports with `POST /v1/jobs/<id>/nodes/<node>/report`; a node token can use
 * both for its own node only. Assignments live in the keyspace, so they survive
 * a server restart and a reconnecting agent replays what it missed.
 */
import Type from 'typebox';
import type { Static } from 'typebox';

/** One command for one node in one job. `state: "abort"` asks the node to stop it. */
export const Assignment = Type.Object(
  {
    jobId: Type.String({ minLength: 1, maxLength: 64 }),
    /** The allowlisted command's name (the agent maps it to an argument vector). */
    command: Type.String({ minLength: 1, maxLength: 128 }),
    /** Extra arguments; the allowlist entry's `args` pattern must accept them. */
    args: Type.Array(Type.String({ maxLength: 4096 }), { maxItems: 64 }),
    /** The job's timeout for this node, ms (the allowlist's own may be shorter). */
    timeoutMs: Type.Integer({ minimum: 1 }),
    /** After SIGTERM (abort, timeout, agent stop), how long before SIGKILL, ms. */
    graceMs: Type.Integer({ minimum: 0 }),
    state: Type.Enum(['run', 'abort']),
  },
  { additionalProperties: false },
);
export type Assignment = Static<typeof Assignment>;

/** One event of the assignment stream: the assignment at the revision it was written. */
export const AssignmentEvent = Type.Object(
  {
    revision: Type.Integer({ minimum: 0 }),
    assignment: Assignment,
  },
  { additionalProperties: false },
);
export type AssignmentEvent = Static<typeof AssignmentEvent>;

/**
 * What a node reports about one job. `seq` orders a node's reports for a job
 * (from 0, +1 per report); the server ignores a report whose seq it has seen,
 * so an agent that reconnects may send again what it is not sure arrived.
 */
export const JobReport = Type.Union([
  Type.Object(
    { seq: Type.Integer({ minimum: 0 }), type: Type.Literal('started'), pid: Type.Integer() },
    { additionalProperties: false },
  ),
  Type.Object(
    {
      seq: Type.Integer({ minimum: 0 }),
      type: Type.Literal('output'),
      stream: Type.Enum(['stdout', 'stderr']),
      /** Text as UTF-8, or base64 with `encoding`. At most 64 KiB per report. */
      data: Type.String({ maxLength: 90_000 }),
      encoding: Type.Optional(Type.Enum(['base64'])),
    },
    { additionalProperties: false },
  ),
  Type.Object(
    {
      seq: Type.Integer({ minimum: 0 }),
      type: Type.Literal('exit'),
      /** The exit code, or null when a signal ended it. */
      exitCode: Type.Union([Type.Integer(), Type.Null()]),
      signal: Type.Union([Type.String(), Type.Null()]),
      /** Why it ended when not on its own: the job timed out, or was aborted. */
      reason: Type.Optional(Type.Enum(['timed_out', 'aborted'])),
    },
    { additionalProperties: false },
  ),
  Type.Object(
    {
      seq: Type.Integer({ minimum: 0 }),
      type: Type.Literal('rejected'),
      /** Why the agent refused: not allowlisted, arguments the pattern refuses, … */
      reason: Type.String({ maxLength: 1024 }),
    },
    { additionalProperties: false },
  ),
]);
export type JobReport = Static<typeof JobReport>;

/** A report without its seq (the agent numbers them). */
export type ReportBody = JobReport extends infer R ? (R extends { seq: number } ? Omit<R, 'seq'> : never) : never;

/**
 * What an agent reports, when it starts again, for a job whose command was
 * running when the agent died: how the command ended is unknown, so the node
 * counts as failed (a job never passes on a node whose command did not finish).
 */
export const LOST_WITH_AGENT: ReportBody = { type: 'exit', exitCode: null, signal: null };

/**
 * Whether the server refused a report for good (the job is gone, it already
 * ended the node's part, or the report is malformed): the agent drops it
 * rather than sending it again.
 */
export function reportRefusedForGood(error: unknown): boolean {
  const code = (error as { code?: string } | null)?.code;
  return code === 'job_not_found' || code === 'job_conflict' || code === 'invalid_request';
}

/**
 * `PUT /v1/nodes/<node>`: an agent registers its node (again after every
 * reconnect). The node is up while `lease` (granted by the same token) is
 * alive; the registry writes nothing per keepalive.
 */
export const NodeRegistration = Type.Object(
  {
    lease: Type.String({ pattern: '^[0-9a-f]{1,16}$' }),
    tags: Type.Array(Type.String({ minLength: 1, maxLength: 128 }), { maxItems: 128 }),
    attrs: Type.Record(Type.String({ minLength: 1, maxLength: 128 }), Type.String({ maxLength: 1024 })),
    /** What the agent detected: hostname, addresses, os, cpus, agentVersion, … */
    facts: Type.Record(Type.String({ minLength: 1, maxLength: 128 }), Type.Unknown()),
  },
  { additionalProperties: false },
);
export type NodeRegistration = Static<typeof NodeRegistration>;

/** What every view of a node shows: who it is, whether it is up, how it was labelled. */
const nodeBasics = {
  name: Type.String(),
  status: Type.Enum(['up', 'down']),
  tags: Type.Array(Type.String()),
  attrs: Type.Record(Type.String(), Type.String()),
  /** ISO time the node was last known up (its last registration, or now while up). */
  lastSeen: Type.String(),
};

/** A node as `GET /v1/nodes` and `GET /v1/nodes/<node>` show it. */
export const NodeInfo = Type.Object(
  {
    ...nodeBasics,
    facts: Type.Record(Type.String(), Type.Unknown()),
    /** ISO time of the first registration under this name. */
    registeredAt: Type.String(),
  },
  { additionalProperties: false },
);
export type NodeInfo = Static<typeof NodeInfo>;

/** A node in `GET /v1/nodes?facts=false`: what a table of nodes shows (no facts, no registeredAt). */
export const NodeSummary = Type.Object(nodeBasics, { additionalProperties: false });
export type NodeSummary = Static<typeof NodeSummary>;

/** A node in `GET /v1/nodes`: a NodeInfo, or with `facts=false` a NodeSummary. */
export const NodeListItem = Type.Object(
  {
    ...nodeBasics,
    facts: Type.Optional(NodeInfo.properties.facts),
    registeredAt: Type.Optional(NodeInfo.properties.registeredAt),
  },
  { additionalProperties: false },
);
export type NodeListItem = Static<typeof NodeListItem>;
