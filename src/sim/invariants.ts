import { converged } from '../plans/fleet-state.js';
import type { History, Holding, PlanSeen } from './history.js';
import { describeValue, seconds } from './history.js';

/** A broken invariant: which, when (virtual ms since the start), and what happened. */
export interface Violation {
  readonly invariant: string;
  readonly at: number;
  readonly message: string;
}

/**
 * Check the recorded history. What a node believed is not evidence: a holding
 * (leadership, lock, once run) lasts from the moment the server told the node
 * it held it until it let go or its lease ended on the server (revoked, or a
 * TTL after the last keepalive the server answered), whichever came first.
 * `end` is when the run stopped (holdings still open end there).
 */
export function checkInvariants(history: History, end: number): Violation[] {
  const violations: Violation[] = [];
  const until = (h: Holding) => Math.min(h.end ?? end, history.leaseEnd(h.lease), end);

  // One leader per election at any time.
  for (const [name, terms] of byName(history.leaderships)) {
    for (const [a, b] of overlaps(terms, until))
      violations.push({
        invariant: 'one leader',
        at: b.start,
        message: `election ${name}: ${b.node} was told it leads at ${seconds(b.start)} while ${a.node} led (${seconds(a.start)} to ${seconds(until(a))})`,
      });
  }
  // A leader acts only while it leads.
  for (const action of history.leaderActions) {
    const leads = history.leaderships.some(
      (t) => t.name === action.name && t.lease === action.lease && t.start <= action.at && action.at < until(t),
    );
    if (!leads)
      violations.push({
        invariant: 'one leader',
        at: action.at,
        message: `election ${action.name}: ${action.node} acted as leader (${action.what}) without leading`,
      });
  }
  // A lock never held by two live sessions.
  for (const [name, holds] of byName(history.lockHolds)) {
    for (const [a, b] of overlaps(holds, until))
      violations.push({
        invariant: 'one lock holder',
        at: b.start,
        message: `lock ${name}: ${b.node} got it at ${seconds(b.start)} while ${a.node} held it (${seconds(a.start)} to ${seconds(until(a))})`,
      });
  }
  // A once command: runs never overlap, and exactly one run succeeds, whose result everyone sees.
  for (const [name, runs] of byName(history.onceRuns)) {
    for (const [a, b] of overlaps(runs, until))
      violations.push({
        invariant: 'once',
        at: b.start,
        message: `once ${name}: ${b.node} started a run at ${seconds(b.start)} while ${a.node}'s run was live`,
      });
    const completed = runs.filter((r) => r.completed);
    for (const extra of completed.slice(1))
      violations.push({
        invariant: 'once',
        at: extra.end ?? extra.start,
        message: `once ${name}: completed again by ${extra.node} (first by ${completed[0]?.node})`,
      });
  }
  const onceNames = new Set([...history.onceRuns.map((r) => r.name), ...history.onceSeen.map((s) => s.name)]);
  for (const name of onceNames) {
    const success = history.onceRuns.find((r) => r.name === name && r.completed);
    for (const seen of history.onceSeen.filter((s) => s.name === name)) {
      if (!success || seen.token !== success.token)
        violations.push({
          invariant: 'once',
          at: seen.at,
          message: `once ${name}: ${seen.node} was given the result of run ${seen.token}, but ${success ? `run ${success.token} (${success.node}) is the one that succeeded` : 'no run succeeded'}`,
        });
    }
  }
  // A barrier opens only when enough distinct participants with live sessions have arrived.
  const firstRelease = new Map<string, { at: number; count: number; node: string }>();
  for (const release of history.releases) {
    const known = firstRelease.get(release.name);
    if (!known || release.at < known.at) firstRelease.set(release.name, release);
  }
  for (const [name, release] of firstRelease) {
    const present = new Set(
      history.arrivals
        .filter((a) => a.name === name && a.at <= release.at && history.leaseEnd(a.lease) >= release.at)
        .map((a) => a.id),
    );
    if (present.size < release.count)
      violations.push({
        invariant: 'barrier',
        at: release.at,
        message: `barrier ${name}: released to ${release.node} at ${seconds(release.at)} with ${present.size} of ${release.count} participants present`,
      });
  }
  checkPlans(history, end, violations);
  for (const problem of history.problems) violations.push(problem);
  return violations.sort((a, b) => a.at - b.at);
}

type StepSeen = PlanSeen['steps'][number];

/**
 * The plan invariants, from what the server recorded (the plan's record, the
 * state reports it took, the assignments it handed out) and the nodes' end
 * states read from it:
 *
 * - desired state: every node up at the end reports its group's desired state
 *   for it (the effective one: a rolling step that stopped half-way leaves the
 *   nodes it did not release in the previous one);
 * - rolling batch: no batch of a rolling step has more nodes than its canary or
 *   batch size allows, no batch's job reaches more, and at no moment have more
 *   nodes of the group moved to the step's desired state than the batches
 *   started by then allow;
 * - step order: a step starts (its record, its first job reaching a node, the
 *   first node moving to its desired state) only after every step it comes
 *   after has completed.
 */
function checkPlans(history: History, end: number, violations: Violation[]): void {
  for (const e of history.endStates) {
    if (!e.up || e.desired === null) continue;
    if (e.actual !== null && converged(e.actual, e.desired)) continue;
    violations.push({
      invariant: 'desired state',
      at: end,
      message: `${e.node} is up at the end and is to be ${describeValue(e.desired)} in group ${e.group}, but reports ${e.actual === null ? 'nothing' : describeValue(e.actual)}`,
    });
  }
  for (const plan of history.plans) {
    for (const step of plan.steps) {
      if (step.rolling) checkRolling(history, plan, step, step.rolling, end, violations);
      checkOrder(history, plan, step, violations);
    }
  }
}

function checkRolling(
  history: History,
  plan: PlanSeen,
  step: StepSeen,
  rolling: NonNullable<StepSeen['rolling']>,
  end: number,
  violations: Violation[],
): void {
  // The nodes the step's batches were cut from: those in them now, and at most those skipped (a
  // node down when its batch starts is taken out of it; the record does not say how many were).
  const total = step.batches.reduce((sum, b) => sum + b.nodes.length, 0) + step.skipped;
  const size =
    'count' in rolling.batch ? rolling.batch.count : Math.max(1, Math.ceil((total * rolling.batch.percent) / 100));
  const allowed = (i: number) => (i === 0 && rolling.canary > 0 ? rolling.canary : size);
  const what = (i: number) =>
    `plan ${plan.name} step ${step.id} batch ${i + 1} (${i === 0 && rolling.canary > 0 ? `the canary, ${allowed(i)} allowed` : `${allowed(i)} allowed`})`;
  step.batches.forEach((batch, i) => {
    const at = batch.startedAt ?? step.startedAt ?? 0;
    if (batch.nodes.length > allowed(i))
      violations.push({ invariant: 'rolling batch', at, message: `${what(i)} has ${batch.nodes.length} nodes` });
    if (batch.jobId === null) return;
    const reached = new Set(history.jobsSeen.filter((j) => j.job === batch.jobId).map((j) => j.node));
    const outside = [...reached].filter((n) => !batch.nodes.includes(n));
    if (reached.size > allowed(i) || outside.length > 0)
      violations.push({
        invariant: 'rolling batch',
        at,
        message: `${what(i)}: its job ${batch.jobId} reached ${reached.size} nodes${outside.length > 0 ? `, ${outside.length} of them not in the batch (${outside.slice(0, 3).join(', ')})` : ''}`,
      });
  });
  // Nodes moving to the new state: never more than the batches started so far allow.
  const desired = step.desired;
  if (desired === null || step.startedAt === null || (step.previous !== null && converged(step.previous, desired)))
    return;
  const from = step.startedAt;
  const until = step.finishedAt ?? end;
  const moved = new Set<string>();
  for (const report of byTime(history.stateReports)) {
    if (report.group !== step.group || report.at < from || report.at >= until || !converged(report, desired)) continue;
    moved.add(report.node);
    const started = step.batches
      .map((b, i) => ({ b, i }))
      .filter(({ b }) => b.startedAt !== null && b.startedAt <= report.at);
    const limit = started.reduce((sum, { b, i }) => sum + Math.min(b.nodes.length, allowed(i)), 0);
    if (moved.size > limit) {
      violations.push({
        invariant: 'rolling batch',
        at: report.at,
        message: `plan ${plan.name} step ${step.id}: by ${seconds(report.at)}, ${moved.size} nodes of ${step.group} reported ${describeValue(desired)} (the last ${report.node}), but the ${started.length} batches started by then allow ${limit}`,
      });
      return;
    }
  }
}

function checkOrder(history: History, plan: PlanSeen, step: StepSeen, violations: Violation[]): void {
  if (step.after.length === 0) return;
  // The earliest sign that the step started: its record, a job of its batches reaching a node, a node moving to its state.
  const signs: { at: number; what: string }[] = [];
  if (step.startedAt !== null) signs.push({ at: step.startedAt, what: 'the plan record says it started' });
  const jobs = new Set(step.batches.map((b) => b.jobId).filter((j) => j !== null));
  const job = byTime(history.jobsSeen).find((j) => jobs.has(j.job));
  if (job) signs.push({ at: job.at, what: `its job ${job.job} reached ${job.node}` });
  const desired = step.desired;
  if (desired !== null && (step.previous === null || !converged(step.previous, desired))) {
    const moved = byTime(history.stateReports).find((r) => r.group === step.group && converged(r, desired));
    if (moved) signs.push({ at: moved.at, what: `${moved.node} reported ${describeValue(desired)}` });
  }
  if (signs.length === 0) return;
  const first = signs.reduce((a, b) => (b.at < a.at ? b : a));
  for (const id of step.after) {
    const before = plan.steps.find((s) => s.id === id);
    const done = before?.state === 'complete' && before.finishedAt !== null ? before.finishedAt : Infinity;
    if (first.at < done)
      violations.push({
        invariant: 'step order',
        at: first.at,
        message: `plan ${plan.name}: step ${step.id} started at ${seconds(first.at)} (${first.what}) before step ${id}, which it comes after, ${done === Infinity ? 'completed (it never did)' : `completed (at ${seconds(done)})`}`,
      });
  }
}

function byTime<T extends { readonly at: number }>(items: readonly T[]): T[] {
  return [...items].sort((a, b) => a.at - b.at);
}

function byName<T extends { readonly name: string }>(items: readonly T[]): Map<string, T[]> {
  const map = new Map<string, T[]>();
  for (const item of items) {
    const list = map.get(item.name);
    if (list) list.push(item);
    else map.set(item.name, [item]);
  }
  return map;
}

/**
 * Pairs of holdings of different sessions whose half-open intervals
 * [start, until) overlap: each later holding paired with the one it overlaps.
 */
function overlaps<T extends Holding>(holdings: readonly T[], until: (h: T) => number): [T, T][] {
  const sorted = holdings.filter((h) => until(h) > h.start).sort((a, b) => a.start - b.start);
  const pairs: [T, T][] = [];
  let open: T[] = [];
  for (const h of sorted) {
    open = open.filter((o) => until(o) > h.start);
    const other = open.find((o) => o.lease !== h.lease);
    if (other) pairs.push([other, h]);
    open.push(h);
  }
  return pairs;
}
