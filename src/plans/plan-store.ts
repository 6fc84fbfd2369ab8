/** Plans in the keyspace (`/muster/plans/<id>`): create, read, list, and the requests the API makes. */
import type { Backend } from '../core/backend.js';
import type { ErrorCode } from '../core/error-catalogue.js';
import { MusterError } from '../core/errors.js';
import type { Runtime } from '../core/runtime.js';
import { newJobId } from '../jobs/job-model.js';
import type { NodeDirectory } from '../jobs/node-directory.js';
import { upAndDown } from '../jobs/node-directory.js';
import type { FleetState } from './fleet-state.js';
import type { PlanPreview, PlanRecord } from './plan-model.js';
import { FINAL_PLAN_STATES, PLANS_PREFIX, decodeJson, encodeJson, planKeys } from './plan-model.js';
import { batchesOf, parsePlan } from './plan-spec.js';

export class PlanNotFoundError extends MusterError {
  readonly code: ErrorCode = 'plan_not_found';
  constructor(readonly id: string) {
    super(`no plan has the id ${JSON.stringify(id)}`);
  }
}

export class PlanConflictError extends MusterError {
  readonly code: ErrorCode = 'plan_conflict';
  constructor(message: string) {
    super(message);
  }
}

const PLAN_ID = /^[0-9a-z]{9}-[0-9a-f]{6}$/;

export function validatePlanId(id: string): string {
  if (!PLAN_ID.test(id)) throw new PlanNotFoundError(id);
  return id;
}

export interface StoredPlan {
  readonly record: PlanRecord;
  readonly modRevision: number;
}

export class PlanStore {
  constructor(
    private readonly backend: Backend,
    private readonly runtime: Runtime,
  ) {}

  /** What applying `source` would do now: the order, the batches, the nodes in each (nothing is written). */
  async preview(source: string, filename: string, fleet: FleetState, directory: NodeDirectory): Promise<PlanPreview> {
    const spec = parsePlan(source, filename);
    const steps = [];
    for (const step of spec.steps) {
      const group = await fleet.requireGroup(step.group);
      const { up, down } = await upAndDown(directory, group.query);
      steps.push({
        id: step.id,
        group: step.group,
        after: [...step.after],
        desired: step.desired
          ? { state: step.desired.state, version: step.desired.version, params: step.desired.params }
          : null,
        run: step.run ? [step.run.command, ...step.run.args].join(' ') : null,
        batches: batchesOf(up, step.rolling),
        skipped: down,
      });
    }
    return { name: spec.name, onFailure: spec.onFailure, steps };
  }

  /** Store a new plan (running); the runner takes it from there. Groups must exist. */
  async create(source: string, filename: string, createdBy: string, fleet: FleetState): Promise<PlanRecord> {
    const spec = parsePlan(source, filename);
    for (const step of spec.steps) await fleet.requireGroup(step.group);
    for (;;) {
      const id = newJobId(this.runtime.clock.now(), this.runtime.random);
      const record: PlanRecord = {
        id,
        name: spec.name,
        source,
        onFailure: spec.onFailure,
        state: 'running',
        steps: spec.steps.map((s) => ({
          id: s.id,
          group: s.group,
          after: [...s.after],
          state: 'pending',
          batches: [],
          skipped: [],
          setDesired: false,
        })),
        createdAt: new Date(this.runtime.clock.now()).toISOString(),
        createdBy,
      };
      const key = planKeys.plan(id);
      const result = await this.backend.txn({
        compare: [{ key, target: 'version', op: '=', value: 0 }],
        success: [{ type: 'put', key, value: encodeJson(record) }],
        failure: [],
      });
      if (result.succeeded) return record;
    }
  }

  async get(id: string): Promise<StoredPlan | null> {
    const kv = await this.backend.get(planKeys.plan(validatePlanId(id)));
    return kv ? { record: decodeJson<PlanRecord>(kv.value), modRevision: kv.modRevision } : null;
  }

  async require(id: string): Promise<StoredPlan> {
    const plan = await this.get(id);
    if (!plan) throw new PlanNotFoundError(id);
    return plan;
  }

  /** Newest first. */
  async list(limit = 100): Promise<PlanRecord[]> {
    const range = await this.backend.range({ key: PLANS_PREFIX, prefix: true });
    return range.kvs
      .map((kv) => decodeJson<PlanRecord>(kv.value))
      .sort((a, b) => b.id.localeCompare(a.id))
      .slice(0, limit);
  }

  /** Ask the runner to pause, resume or abort; refused (plan_conflict) when the plan's state does not allow it. */
  async request(id: string, what: 'pause' | 'resume' | 'abort'): Promise<PlanRecord> {
    for (;;) {
      const { record, modRevision } = await this.require(id);
      if (FINAL_PLAN_STATES.has(record.state)) throw new PlanConflictError(`plan ${id} has ended (${record.state})`);
      let next: PlanRecord;
      if (what === 'pause') {
        if (record.state === 'paused' || record.pauseRequested) return record;
        next = { ...record, pauseRequested: true, resumeRequested: false };
      } else if (what === 'resume') {
        if (record.state !== 'paused' && !record.pauseRequested)
          throw new PlanConflictError(`plan ${id} is not paused (${record.state})`);
        next = { ...record, pauseRequested: false, resumeRequested: true };
      } else {
        if (record.abortRequested) return record;
        next = { ...record, abortRequested: true };
      }
      const key = planKeys.plan(id);
      const result = await this.backend.txn({
        compare: [{ key, target: 'modRevision', op: '=', value: modRevision }],
        success: [{ type: 'put', key, value: encodeJson(next) }],
        failure: [],
      });
      if (result.succeeded) return next;
    }
  }
}
