/**
 * The plan runner, a duty (one server runs it at a time; a new leader picks the
 * plans up where the keyspace says they are). Each tick it moves every running
 * plan on: a step starts once the steps it comes after are complete; it sets its
 * group's desired state, then goes through its batches (a canary, then the rest,
 * with a pause between): poke the batch's nodes with a job, wait until they report
 * the desired state, hold at the health gate, then the next batch. A batch that
 * fails stops the plan, or rolls the groups back to their previous desired state.
 * Time is the injected clock's; every write is fenced by the duty's leadership.
 */
import type { Compare } from '../core/backend.js';
import { sleep } from '../core/clock.js';
import { InvalidArgumentError, MusterError } from '../core/errors.js';
import type { DutyContext } from '../server/duties/duty-runner.js';
import { JobStore } from '../jobs/job-store.js';
import type { NodeDirectory } from '../jobs/node-directory.js';
import { upAndDown } from '../jobs/node-directory.js';
import { FleetState, converged } from './fleet-state.js';
import type { BatchRecord, DesiredValue, PlanRecord, StepRecord } from './plan-model.js';
import { FINAL_PLAN_STATES, PLANS_PREFIX, decodeJson, encodeJson, planKeys } from './plan-model.js';
import type { PlanSpec, PlanStepSpec } from './plan-spec.js';
import { batchesOf, parsePlan } from './plan-spec.js';

const FAILED_JOB_STATES = new Set(['failed', 'quorum_failed', 'timed_out', 'aborted']);
const FLAGS = ['pauseRequested', 'resumeRequested', 'abortRequested'] as const;

export interface PlanRunnerOptions {
  readonly directory: NodeDirectory;
  /** How often running plans are looked at, ms. @default 1000 */
  readonly tickMs?: number;
}

export class PlanRunner {
  private readonly fleet: FleetState;
  private readonly jobs: JobStore;
  private readonly specs = new Map<string, PlanSpec>();

  constructor(
    private readonly context: DutyContext,
    private readonly options: PlanRunnerOptions,
  ) {
    this.fleet = new FleetState(context.backend, context.runtime.clock, options.directory);
    this.jobs = new JobStore(context.backend, context.runtime);
  }

  async run(): Promise<void> {
    const { signal, runtime } = this.context;
    while (!signal.aborted) {
      await this.tick();
      await sleep(runtime.clock, this.options.tickMs ?? 1000, signal).catch(() => undefined);
    }
  }

  /** Move every unfinished plan on by what can be done now. */
  async tick(): Promise<void> {
    const range = await this.context.backend.range({ key: PLANS_PREFIX, prefix: true });
    for (const kv of range.kvs) {
      if (this.context.signal.aborted) return;
      const record = decodeJson<PlanRecord>(kv.value);
      if (FINAL_PLAN_STATES.has(record.state)) {
        this.specs.delete(record.id);
        continue;
      }
      let next: PlanRecord;
      try {
        next = await this.advance(structuredClone(record));
      } catch (error) {
        // One plan the store refuses to move on (a bad group query, say) must not hold up the others.
        if (!(error instanceof MusterError) || this.context.signal.aborted) throw error;
        next = await this.end(structuredClone(record), 'failed', `the plan cannot go on: ${error.message}`);
      }
      if (JSON.stringify(next) !== new TextDecoder().decode(kv.value)) await this.save(record, next, kv.modRevision);
    }
  }

  private get fence(): Compare {
    return this.context.fence;
  }

  private now(): number {
    return this.context.runtime.clock.now();
  }

  private iso(): string {
    return new Date(this.now()).toISOString();
  }

  private specOf(plan: PlanRecord): PlanSpec {
    let spec = this.specs.get(plan.id);
    if (!spec) {
      spec = parsePlan(plan.source, plan.name);
      this.specs.set(plan.id, spec);
    }
    return spec;
  }

  /**
   * Write the plan back, only while leading. The API may have set a request flag
   * meanwhile (pause, resume, abort): those are taken from the newer record and the
   * write tried again, so neither side loses the other's change.
   */
  private async save(original: PlanRecord, next: PlanRecord, modRevision: number): Promise<void> {
    const key = planKeys.plan(next.id);
    let revision = modRevision;
    for (let attempt = 0; attempt < 5; attempt++) {
      const result = await this.context.backend.txn({
        compare: [{ key, target: 'modRevision', op: '=', value: revision }, this.fence],
        success: [{ type: 'put', key, value: encodeJson(next) }],
        failure: [{ type: 'get', key }],
      });
      if (result.succeeded) return;
      const got = result.results[0];
      const kv = got?.type === 'get' ? got.kvs[0] : undefined;
      if (!kv) return; // The plan was removed, or leadership is gone: nothing to write.
      const fresh = decodeJson<PlanRecord>(kv.value);
      for (const flag of FLAGS) if (fresh[flag] !== original[flag]) next = { ...next, [flag]: fresh[flag] };
      original = fresh;
      revision = kv.modRevision;
    }
  }

  /** The plan after what can be done now (side effects: desired states, jobs). */
  async advance(plan: PlanRecord): Promise<PlanRecord> {
    let spec: PlanSpec;
    try {
      spec = this.specOf(plan);
    } catch (error) {
      // Stored by a server whose checks were looser: it would be refused on every tick.
      if (!(error instanceof InvalidArgumentError)) throw error;
      return this.end(plan, 'failed', `the plan is not valid (any more): ${error.message}`);
    }
    const now = this.now();
    if (plan.abortRequested) return this.end(plan, 'aborted', 'aborted on request');
    if (plan.pauseRequested && plan.state === 'running') {
      plan.state = 'paused';
      plan.pausedAt = now;
      plan.pauseRequested = false;
      return plan;
    }
    if (plan.resumeRequested && plan.state === 'paused') {
      // A batch's clock stands still while the plan is paused.
      const paused = now - (plan.pausedAt ?? now);
      for (const step of plan.steps) {
        if (step.nextAt !== undefined) step.nextAt += paused;
        for (const batch of step.batches) {
          if (batch.startedAt && !batch.finishedAt) batch.startedAt = shift(batch.startedAt, paused);
          if (batch.convergedAt && !batch.finishedAt) batch.convergedAt = shift(batch.convergedAt, paused);
        }
      }
      plan.state = 'running';
      plan.resumeRequested = false;
      delete plan.pausedAt;
    }
    if (plan.state !== 'running') return plan;

    for (const stepSpec of spec.steps) {
      const step = plan.steps.find((s) => s.id === stepSpec.id);
      if (!step) continue;
      if (step.state === 'pending') {
        const ready = step.after.every((a) => plan.steps.find((s) => s.id === a)?.state === 'complete');
        if (ready) await this.startStep(plan, step, stepSpec);
      } else if (step.state === 'running' || step.state === 'waiting') {
        await this.advanceStep(plan, step, stepSpec);
      }
      if (step.state === 'failed') return this.fail(plan, step);
    }
    if (plan.steps.every((s) => s.state === 'complete')) {
      plan.state = 'complete';
      plan.finishedAt = this.iso();
    }
    return plan;
  }

  private async startStep(plan: PlanRecord, step: StepRecord, spec: PlanStepSpec): Promise<void> {
    step.startedAt = this.iso();
    const group = await this.fleet.getGroup(spec.group);
    if (!group) {
      step.state = 'failed';
      step.reason = `the group ${spec.group} does not exist (any more)`;
      return;
    }
    const { up, down } = await upAndDown(this.options.directory, group.query);
    step.skipped = down;
    if (spec.desired) {
      const current = await this.fleet.getDesired(spec.group);
      const setBy = `plan:${plan.id}`;
      if (current?.setBy === setBy && sameDesired(current, spec.desired)) {
        // This step set it already, but the plan's record was not saved after (a
        // restart, a failed write): what it replaced is the one before.
        step.previousDesired = current.previous;
      } else {
        step.previousDesired = current
          ? { state: current.state, version: current.version, params: current.params }
          : null;
        // A rolling step releases its nodes batch by batch: until then they stay in the previous state.
        const rollout = spec.rolling ? { plan: plan.id, step: spec.id, released: [] } : undefined;
        await this.fleet.setDesired(spec.group, spec.desired, setBy, this.fence, rollout);
      }
      step.setDesired = true;
    }
    step.batches = batchesOf(up, spec.rolling).map((nodes) => ({ nodes, state: 'pending' }));
    step.state = 'running';
    if (step.batches.length === 0) {
      await this.completeStep(plan, step, spec);
      step.reason = 'no node of the group was up';
      return;
    }
    // The first batch starts from what was just read: the group's query and who is up.
    await this.startBatch(plan, step, spec, step.batches[0] as BatchRecord, { query: group.query, up: new Set(up) });
  }

  private async startBatch(
    plan: PlanRecord,
    step: StepRecord,
    spec: PlanStepSpec,
    batch: BatchRecord,
    known?: { readonly query: string; readonly up: ReadonlySet<string> },
  ): Promise<void> {
    batch.state = 'running';
    batch.startedAt = this.iso();
    const groupQuery = known?.query ?? (await this.fleet.getGroup(spec.group))?.query;
    if (groupQuery === undefined) {
      this.failBatch(step, batch, `the group ${spec.group} does not exist (any more)`);
      return;
    }
    // A node that went down (or left the group) since the step started is skipped, as
    // one down at the start is: it catches up from the desired state when it returns.
    // Kept in the batch, its job would miss its quorum and fail the plan.
    const up = known?.up ?? new Set((await upAndDown(this.options.directory, groupQuery)).up);
    const gone = batch.nodes.filter((n) => !up.has(n));
    if (gone.length > 0) {
      batch.nodes = batch.nodes.filter((n) => up.has(n));
      batch.reason = `skipped (down): ${list(gone)}`;
      step.skipped = [...new Set([...step.skipped, ...gone])].sort();
    }
    if (spec.rolling && spec.desired) await this.fleet.updateRollout(spec.group, plan.id, batch.nodes, this.fence);
    if (!spec.run || batch.nodes.length === 0) {
      batch.state = 'converging';
      return;
    }
    try {
      const job = await this.jobs.create(
        {
          query: groupQuery,
          only: batch.nodes,
          command: spec.run.command,
          args: [...spec.run.args],
          timeout: `${spec.timeoutMs}ms`,
        },
        `plan:${plan.id}`,
        this.fence,
        // One job per batch, even when a restart lost the record that this one was started.
        planKeys.batchJob(plan.id, step.id, step.batches.indexOf(batch)),
      );
      batch.jobId = job.id;
    } catch (error) {
      // A job the server refuses (a timeout beyond its limit, say) fails the batch, visibly.
      if (!(error instanceof MusterError)) throw error;
      this.failBatch(step, batch, `its job could not start: ${error.message}`);
    }
  }

  private async advanceStep(plan: PlanRecord, step: StepRecord, spec: PlanStepSpec): Promise<void> {
    const now = this.now();
    const index = step.batches.findIndex((b) => b.state !== 'complete');
    if (index < 0) {
      await this.completeStep(plan, step, spec);
      return;
    }
    const batch = step.batches[index] as BatchRecord;
    if (step.state === 'waiting') {
      if (now < (step.nextAt ?? 0)) return;
      step.state = 'running';
      delete step.nextAt;
      await this.startBatch(plan, step, spec, batch);
      return;
    }
    const elapsed = now - Date.parse(batch.startedAt ?? this.iso());
    if (batch.state === 'running' && batch.jobId) {
      const job = (await this.jobs.get(batch.jobId))?.record;
      if (!job) return this.failBatch(step, batch, `its job ${batch.jobId} is gone`);
      if (FAILED_JOB_STATES.has(job.state)) {
        return this.failBatch(step, batch, `job ${job.id} ${job.state}${job.reason ? `: ${job.reason}` : ''}`);
      }
      if (job.state !== 'complete') return;
      batch.state = 'converging';
    }
    if (batch.state === 'converging') {
      if (spec.until !== null) {
        const desired: Pick<DesiredValue, 'state' | 'version'> = spec.desired
          ? { state: spec.desired.state, version: spec.desired.version }
          : { state: spec.until, version: null };
        const waiting: string[] = [];
        for (const node of batch.nodes) {
          const actual = await this.fleet.actual(spec.group, node);
          if (actual?.state === 'failed') return this.failBatch(step, batch, `node ${node} reports failed`);
          if (!converged(actual, desired, spec.until)) waiting.push(node);
        }
        if (waiting.length > 0) {
          if (elapsed > spec.timeoutMs) {
            this.failBatch(step, batch, `not ${spec.until} within ${spec.timeoutMs / 1000} s: ${list(waiting)}`);
          }
          return;
        }
      }
      batch.state = 'health';
      batch.convergedAt = this.iso();
    }
    if (batch.state === 'health') {
      if (spec.health) {
        const failing: string[] = [];
        for (const node of batch.nodes) {
          const kv = await this.context.backend.get(spec.health.key.replaceAll('{node}', node));
          if (!kv || new TextDecoder().decode(kv.value) !== spec.health.equals) failing.push(node);
        }
        if (failing.length > 0) {
          const since = now - Date.parse(batch.convergedAt ?? this.iso());
          if (since > spec.health.timeoutMs) {
            this.failBatch(
              step,
              batch,
              `health gate: ${list(failing)} not ${spec.health.equals} within ${spec.health.timeoutMs / 1000} s`,
            );
          }
          return;
        }
      }
      batch.state = 'complete';
      batch.finishedAt = this.iso();
      const next = step.batches[index + 1];
      if (!next) {
        await this.completeStep(plan, step, spec);
      } else if ((spec.rolling?.pauseMs ?? 0) > 0) {
        step.state = 'waiting';
        step.nextAt = now + (spec.rolling?.pauseMs ?? 0);
      } else {
        await this.startBatch(plan, step, spec, next);
      }
    }
  }

  /** The step is over: a rolling one's desired state now holds for every node (those that join later too). */
  private async completeStep(plan: PlanRecord, step: StepRecord, spec: PlanStepSpec): Promise<void> {
    if (spec.rolling && spec.desired) await this.fleet.updateRollout(spec.group, plan.id, null, this.fence);
    step.state = 'complete';
    step.finishedAt = this.iso();
  }

  private failBatch(step: StepRecord, batch: BatchRecord, reason: string): void {
    batch.state = 'failed';
    batch.reason = reason;
    batch.finishedAt = this.iso();
    step.state = 'failed';
    step.reason = `batch ${step.batches.indexOf(batch) + 1} of ${step.batches.length}: ${reason}`;
    step.finishedAt = this.iso();
  }

  /** A step failed: stop (the default), or put back the desired states the plan changed. */
  private async fail(plan: PlanRecord, failed: StepRecord): Promise<PlanRecord> {
    const reason = `step ${failed.id} failed: ${failed.reason ?? 'unknown'}`;
    if (plan.onFailure !== 'rollback') return this.end(plan, 'failed', reason);
    await this.end(plan, 'rolled_back', reason);
    for (const step of [...plan.steps].reverse()) {
      if (!step.setDesired || step.previousDesired === undefined) continue;
      await this.fleet.restoreDesired(step.group, step.previousDesired, `plan:${plan.id} (rollback)`, this.fence);
    }
    return plan;
  }

  /** End the plan: stop the jobs it has running; steps not finished are aborted. */
  private async end(plan: PlanRecord, state: PlanRecord['state'], reason: string): Promise<PlanRecord> {
    for (const step of plan.steps) {
      for (const batch of step.batches) {
        if (batch.state === 'complete' || batch.state === 'failed' || batch.state === 'aborted') continue;
        if (batch.state === 'pending') continue;
        if (batch.jobId) await this.jobs.requestAbort(batch.jobId).catch(() => undefined);
        batch.state = 'aborted';
        batch.finishedAt = this.iso();
      }
      if (step.state === 'running' || step.state === 'waiting') {
        step.state = 'aborted';
        step.finishedAt = this.iso();
      }
    }
    plan.state = state;
    plan.reason = reason;
    plan.finishedAt = this.iso();
    plan.abortRequested = false;
    plan.pauseRequested = false;
    return plan;
  }
}

/** Is `current` the desired state `wanted` (state, version and params)? */
function sameDesired(current: DesiredValue, wanted: DesiredValue): boolean {
  return (
    current.state === wanted.state &&
    current.version === wanted.version &&
    JSON.stringify(current.params) === JSON.stringify(wanted.params)
  );
}

function shift(iso: string, ms: number): string {
  return new Date(Date.parse(iso) + ms).toISOString();
}

function list(nodes: readonly string[]): string {
  return nodes.length <= 5 ? nodes.join(', ') : `${nodes.slice(0, 5).join(', ')} and ${nodes.length - 5} more`;
}
