/**
 * Groups, desired and actual state, and plans, as stored in the keyspace and
 * answered by the API (TypeBox: the schemas are the source, types derive from them).
 *
 * - `/muster/groups/<group>`: a named node query.
 * - `/muster/desired/<group>`: the group's desired state, with the one before it
 *   (what a rollback restores).
 * - `/nodes/<node>/state/<group>`: what a node reports it is (under the node's own
 *   prefix: a node token may write there and nowhere else).
 * - `/muster/plans/<id>`: a plan's record, steps and batches included; the runner
 *   (a duty) advances it, the API sets its pause/abort requests.
 */
import Type from 'typebox';
import type { Static } from 'typebox';

export const GROUPS_PREFIX = '/muster/groups/';
export const DESIRED_PREFIX = '/muster/desired/';
export const PLANS_PREFIX = '/muster/plans/';

export const planKeys = {
  group: (name: string) => `${GROUPS_PREFIX}${name}`,
  desired: (group: string) => `${DESIRED_PREFIX}${group}`,
  actual: (node: string, group: string) => `/nodes/${node}/state/${group}`,
  plan: (id: string) => `${PLANS_PREFIX}${id}`,
  /** The id of the job a plan started for one batch of a step (so it starts one only). */
  batchJob: (plan: string, step: string, batch: number) => `/muster/plan-jobs/${plan}/${step}/${batch}`,
};

export const Group = Type.Object({
  name: Type.String(),
  query: Type.String({ description: 'A node query (docs/queries.md)' }),
  createdAt: Type.String(),
});
export type Group = Static<typeof Group>;

export const DesiredSpec = Type.Object(
  {
    state: Type.String({ minLength: 1, maxLength: 128, pattern: '^[A-Za-z0-9][A-Za-z0-9._-]*$' }),
    version: Type.Optional(Type.Union([Type.String({ maxLength: 256 }), Type.Null()])),
    params: Type.Optional(Type.Record(Type.String({ minLength: 1, maxLength: 128 }), Type.String({ maxLength: 4096 }))),
  },
  { additionalProperties: false },
);
export type DesiredSpec = Static<typeof DesiredSpec>;

export const DesiredValue = Type.Object({
  state: Type.String(),
  version: Type.Union([Type.String(), Type.Null()]),
  params: Type.Record(Type.String(), Type.String()),
});
export type DesiredValue = Static<typeof DesiredValue>;

/**
 * While a rolling step moves a group batch by batch: the nodes released so far
 * are to be in the new desired state, the others stay in `previous` until the
 * step is over (see effectiveDesired).
 */
export const Rollout = Type.Object({
  plan: Type.String(),
  step: Type.String(),
  released: Type.Array(Type.String()),
});
export type Rollout = Static<typeof Rollout>;

export const Desired = Type.Object({
  group: Type.String(),
  ...DesiredValue.properties,
  setAt: Type.String(),
  /** A token id, or "plan:<id>". */
  setBy: Type.String(),
  /** What it was before (a rollback restores it); null when it was never set. */
  previous: Type.Union([DesiredValue, Type.Null()]),
  /** Set while a plan's rolling step has not released every node yet. */
  rollout: Type.Optional(Type.Union([Rollout, Type.Null()])),
});
export type Desired = Static<typeof Desired>;

/**
 * What `node` is to be in now: the group's desired state, or, while a rolling
 * step has not released the node yet, the one before it (null: none).
 */
export function effectiveDesired(desired: Desired | null, node: string): DesiredValue | null {
  if (!desired) return null;
  const value: DesiredValue = { state: desired.state, version: desired.version, params: desired.params };
  if (!desired.rollout || desired.rollout.released.includes(node)) return value;
  return desired.previous;
}

export const ActualState = Type.Object({
  node: Type.String(),
  group: Type.String(),
  state: Type.String(),
  version: Type.Union([Type.String(), Type.Null()]),
  at: Type.String(),
});
export type ActualState = Static<typeof ActualState>;

export const GroupStatus = Type.Object({
  group: Type.String(),
  query: Type.String(),
  desired: Type.Union([Desired, Type.Null()]),
  nodes: Type.Array(
    Type.Object({
      node: Type.String(),
      up: Type.Boolean(),
      state: Type.Union([Type.String(), Type.Null()]),
      version: Type.Union([Type.String(), Type.Null()]),
      at: Type.Union([Type.String(), Type.Null()]),
      /** Reports the desired state (and version, when one is set). */
      converged: Type.Boolean(),
    }),
  ),
});
export type GroupStatus = Static<typeof GroupStatus>;

export const PLAN_STATES = ['running', 'paused', 'complete', 'failed', 'aborted', 'rolled_back'] as const;
export type PlanState = (typeof PLAN_STATES)[number];
export const FINAL_PLAN_STATES: ReadonlySet<string> = new Set(['complete', 'failed', 'aborted', 'rolled_back']);

export const STEP_STATES = ['pending', 'running', 'waiting', 'complete', 'failed', 'aborted'] as const;
export const BATCH_STATES = ['pending', 'running', 'converging', 'health', 'complete', 'failed', 'aborted'] as const;

export const BatchRecord = Type.Object({
  nodes: Type.Array(Type.String()),
  state: Type.Enum([...BATCH_STATES]),
  jobId: Type.Optional(Type.String()),
  startedAt: Type.Optional(Type.String()),
  finishedAt: Type.Optional(Type.String()),
  /** When the nodes converged (the health gate's clock starts then). */
  convergedAt: Type.Optional(Type.String()),
  reason: Type.Optional(Type.String()),
});
export type BatchRecord = Static<typeof BatchRecord>;

export const StepRecord = Type.Object({
  id: Type.String(),
  group: Type.String(),
  after: Type.Array(Type.String()),
  state: Type.Enum([...STEP_STATES]),
  batches: Type.Array(BatchRecord),
  /** Matched nodes that were down when the step started: they catch up on return (desired state). */
  skipped: Type.Array(Type.String()),
  startedAt: Type.Optional(Type.String()),
  finishedAt: Type.Optional(Type.String()),
  /** While waiting between batches: when the next one starts (ms since the epoch). */
  nextAt: Type.Optional(Type.Number()),
  reason: Type.Optional(Type.String()),
  /** Whether this step set its group's desired state (a rollback restores those). */
  setDesired: Type.Boolean(),
  previousDesired: Type.Optional(Type.Union([DesiredValue, Type.Null()])),
});
export type StepRecord = Static<typeof StepRecord>;

export const PlanRecord = Type.Object({
  id: Type.String(),
  name: Type.String(),
  /** The plan file as given (the runner parses it again; the steps' settings are in it). */
  source: Type.String(),
  onFailure: Type.Enum(['stop', 'rollback']),
  state: Type.Enum([...PLAN_STATES]),
  reason: Type.Optional(Type.String()),
  steps: Type.Array(StepRecord),
  createdAt: Type.String(),
  createdBy: Type.String(),
  finishedAt: Type.Optional(Type.String()),
  pauseRequested: Type.Optional(Type.Boolean()),
  resumeRequested: Type.Optional(Type.Boolean()),
  abortRequested: Type.Optional(Type.Boolean()),
  /** When it was paused (a batch's clock stands still while paused). */
  pausedAt: Type.Optional(Type.Number()),
});
export type PlanRecord = Static<typeof PlanRecord>;

/** What `--dry-run` prints: the order, the batches and the nodes in each. */
export const PlanPreview = Type.Object({
  name: Type.String(),
  onFailure: Type.Enum(['stop', 'rollback']),
  steps: Type.Array(
    Type.Object({
      id: Type.String(),
      group: Type.String(),
      after: Type.Array(Type.String()),
      desired: Type.Union([DesiredValue, Type.Null()]),
      run: Type.Union([Type.String(), Type.Null()]),
      batches: Type.Array(Type.Array(Type.String())),
      skipped: Type.Array(Type.String()),
    }),
  ),
});
export type PlanPreview = Static<typeof PlanPreview>;

export const encodeJson = (value: unknown): Uint8Array => new TextEncoder().encode(JSON.stringify(value));
export const decodeJson = <T>(bytes: Uint8Array): T => JSON.parse(new TextDecoder().decode(bytes)) as T;
