/**
 * A plan file: steps that move groups of nodes to a desired state, in the order
 * their `after` lists give, optionally rolling (a canary, then batches, with a
 * pause between) and gated on health. YAML or JSON (docs/plans.md); every mistake
 * is reported with the line it is on.
 *
 *     name: release-v42
 *     on_failure: stop            # or rollback
 *     steps:
 *       - id: db
 *         group: db
 *         desired: { state: migrated, version: v42 }
 *         run: chef-client
 *         until: converged
 *         timeout: 15m
 *       - id: web
 *         after: [db]
 *         group: web
 *         desired: { state: converged, version: v42 }
 *         run: chef-client
 *         rolling: { canary: 1, batch: 25%, pause: 30s }
 *         health: { key: "/health/{node}", equals: ok, timeout: 5m }
 */
import { LineCounter, isMap, isSeq, parseDocument } from 'yaml';
import type { Node as YamlNode, YAMLMap } from 'yaml';
import { parseDuration } from '../core/duration.js';
import { InvalidArgumentError } from '../core/errors.js';
import { validateKey } from '../core/key-path.js';

/** A count of nodes, or a share of the group. */
export type Amount = { readonly count: number } | { readonly percent: number };

export interface PlanStepSpec {
  readonly id: string;
  readonly group: string;
  readonly after: readonly string[];
  /** The group's desired state for this step (null: the step only runs a command). */
  readonly desired: {
    readonly state: string;
    readonly version: string | null;
    readonly params: Record<string, string>;
  } | null;
  /** An allowlisted command to poke the nodes with (a job per batch), and its arguments. */
  readonly run: { readonly command: string; readonly args: readonly string[] } | null;
  /** The state the nodes must report before the batch counts as done (default: desired.state). */
  readonly until: string | null;
  readonly timeoutMs: number;
  readonly rolling: { readonly canary: number; readonly batch: Amount; readonly pauseMs: number } | null;
  readonly health: { readonly key: string; readonly equals: string; readonly timeoutMs: number } | null;
  /** Where the step is in the file, for messages. */
  readonly line: number;
}

export interface PlanSpec {
  readonly name: string;
  readonly onFailure: 'stop' | 'rollback';
  /** In an order where every step comes after the steps it follows. */
  readonly steps: readonly PlanStepSpec[];
}

/** A plan file's mistake; the message names the file and line. */
export class PlanError extends InvalidArgumentError {
  constructor(message: string) {
    super(message, 'invalid_plan');
  }
}

const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;
const COMMAND = /^[A-Za-z0-9][A-Za-z0-9._:-]*$/;
const TOP_FIELDS = ['name', 'description', 'on_failure', 'steps'];
const STEP_FIELDS = ['id', 'group', 'after', 'desired', 'run', 'args', 'until', 'timeout', 'rolling', 'health'];
export const MAX_STEPS = 200;

/** Parse and check a plan from YAML or JSON text; `source` names it in errors (a file name). */
export function parsePlan(text: string, source = 'plan'): PlanSpec {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true });
  const first = doc.errors[0];
  if (first) throw new PlanError(`${source}:${lines.linePos(first.pos[0]).line}: ${first.message.split('\n')[0]}`);
  const lineOf = (node: unknown, fallback = 1): number => {
    const range = (node as YamlNode | null | undefined)?.range;
    return range ? lines.linePos(range[0]).line : fallback;
  };
  const fail = (node: unknown, message: string, fallback = 1): never => {
    throw new PlanError(`${source}:${lineOf(node, fallback)}: ${message}`);
  };
  const root = doc.contents;
  if (!isMap(root)) return fail(root, 'a plan is a mapping with name and steps');
  const get = (map: YAMLMap, key: string): YamlNode | undefined => map.get(key, true) as YamlNode | undefined;
  const json = (node: YamlNode | undefined): unknown => (node as { toJSON?: () => unknown } | undefined)?.toJSON?.();
  checkFields(root, TOP_FIELDS, 'plan', fail);

  const nameNode = get(root, 'name');
  const name = json(nameNode);
  if (typeof name !== 'string' || !NAME.test(name))
    fail(nameNode ?? root, 'name is required: letters, digits, ".", "_" or "-" (at most 128)');
  const onFailureNode = get(root, 'on_failure');
  const onFailure = json(onFailureNode) ?? 'stop';
  if (onFailure !== 'stop' && onFailure !== 'rollback') fail(onFailureNode, 'on_failure must be stop or rollback');

  const stepsNode = get(root, 'steps');
  if (!isSeq(stepsNode) || stepsNode.items.length === 0)
    return fail(stepsNode ?? root, 'steps must be a non-empty list');
  if (stepsNode.items.length > MAX_STEPS) fail(stepsNode, `a plan has at most ${MAX_STEPS} steps`);
  const steps: PlanStepSpec[] = [];
  const ids = new Map<string, number>();
  for (const item of stepsNode.items) {
    const line = lineOf(item);
    if (!isMap(item)) fail(item, 'a step is a mapping with id and group');
    const step = item as YAMLMap;
    checkFields(step, STEP_FIELDS, 'step', fail);
    const field = (key: string) => get(step, key);
    const id = json(field('id'));
    if (typeof id !== 'string' || !NAME.test(id))
      fail(field('id') ?? step, 'a step needs an id: letters, digits, ".", "_" or "-"');
    if (ids.has(id as string))
      fail(field('id'), `the id "${String(id)}" is used twice (first on line ${ids.get(id as string)})`);
    ids.set(id as string, line);
    const group = json(field('group'));
    if (typeof group !== 'string' || !NAME.test(group))
      fail(field('group') ?? step, `step ${String(id)}: group is required (a group name)`);
    const afterRaw = json(field('after')) ?? [];
    const after = typeof afterRaw === 'string' ? [afterRaw] : afterRaw;
    if (!Array.isArray(after) || after.some((a) => typeof a !== 'string'))
      fail(field('after'), `step ${String(id)}: after is a list of step ids`);

    let desired: PlanStepSpec['desired'] = null;
    const desiredNode = field('desired');
    if (desiredNode !== undefined) {
      const raw = json(desiredNode);
      if (typeof raw === 'string') desired = { state: raw, version: null, params: {} };
      else if (typeof raw === 'object' && raw !== null && !Array.isArray(raw)) {
        const d = raw as Record<string, unknown>;
        for (const key of Object.keys(d))
          if (!['state', 'version', 'params'].includes(key))
            fail(desiredNode, `step ${String(id)}: desired: unknown field "${key}" (known: state, version, params)`);
        if (typeof d.state !== 'string' || !NAME.test(d.state))
          fail(desiredNode, `step ${String(id)}: desired.state is required (a word such as converged)`);
        if (d.version !== undefined && typeof d.version !== 'string' && typeof d.version !== 'number')
          fail(desiredNode, `step ${String(id)}: desired.version is text`);
        const params: Record<string, string> = {};
        if (d.params !== undefined) {
          if (typeof d.params !== 'object' || d.params === null || Array.isArray(d.params))
            fail(desiredNode, `step ${String(id)}: desired.params is a mapping of names to values`);
          for (const [k, v] of Object.entries(d.params as Record<string, unknown>)) params[k] = String(v);
        }
        desired = { state: d.state as string, version: d.version === undefined ? null : String(d.version), params };
      } else fail(desiredNode, `step ${String(id)}: desired is a state, or { state, version, params }`);
    }

    let run: PlanStepSpec['run'] = null;
    const runNode = field('run');
    if (runNode !== undefined) {
      const raw = json(runNode);
      const argsRaw = json(field('args')) ?? [];
      if (typeof raw !== 'string' || !COMMAND.test(raw))
        fail(runNode, `step ${String(id)}: run is an allowlisted command's name`);
      if (!Array.isArray(argsRaw) || argsRaw.some((a) => typeof a !== 'string' && typeof a !== 'number'))
        fail(field('args'), `step ${String(id)}: args is a list of arguments`);
      run = { command: raw as string, args: (argsRaw as unknown[]).map(String) };
    } else if (field('args') !== undefined) fail(field('args'), `step ${String(id)}: args needs run`);

    const untilNode = field('until');
    const until = json(untilNode) ?? null;
    if (until !== null && (typeof until !== 'string' || !NAME.test(until)))
      fail(untilNode, `step ${String(id)}: until is a state name`);
    if (desired === null && run === null) fail(step, `step ${String(id)}: give desired, run, or both`);

    const timeoutMs = durationOf(json(field('timeout')) ?? '30m', () =>
      fail(field('timeout'), `step ${String(id)}: timeout is a duration such as 15m`),
    );
    // A step's job gets the same timeout, and jobs take more than 0 and at most 7 days.
    if (timeoutMs <= 0 || timeoutMs > MAX_STEP_TIMEOUT_MS)
      fail(field('timeout'), `step ${String(id)}: timeout must be more than 0 and at most 7d`);

    let rolling: PlanStepSpec['rolling'] = null;
    const rollingNode = field('rolling');
    if (rollingNode !== undefined) {
      const raw = json(rollingNode);
      if (typeof raw !== 'object' || raw === null || Array.isArray(raw))
        return fail(rollingNode, `step ${String(id)}: rolling is { canary, batch, pause }`);
      const r = raw as Record<string, unknown>;
      for (const key of Object.keys(r))
        if (!['canary', 'batch', 'pause'].includes(key))
          fail(rollingNode, `step ${String(id)}: rolling: unknown field "${key}" (known: canary, batch, pause)`);
      const canary = r.canary ?? 0;
      if (!Number.isInteger(canary) || (canary as number) < 0)
        fail(rollingNode, `step ${String(id)}: rolling.canary is a whole number of nodes (0 or more)`);
      const batch = amountOf(r.batch ?? '100%');
      if (batch === null)
        return fail(rollingNode, `step ${String(id)}: rolling.batch is a number of nodes (5) or a share ("25%")`);
      const pauseMs = durationOf(r.pause ?? '0s', () =>
        fail(rollingNode, `step ${String(id)}: rolling.pause is a duration such as 30s`),
      );
      rolling = { canary: canary as number, batch, pauseMs };
    }

    let health: PlanStepSpec['health'] = null;
    const healthNode = field('health');
    if (healthNode !== undefined) {
      const raw = json(healthNode);
      if (typeof raw !== 'object' || raw === null || Array.isArray(raw))
        return fail(healthNode, `step ${String(id)}: health is { key, equals, timeout }`);
      const h = raw as Record<string, unknown>;
      for (const k of Object.keys(h))
        if (!['key', 'equals', 'timeout'].includes(k))
          fail(healthNode, `step ${String(id)}: health: unknown field "${k}" (known: key, equals, timeout)`);
      if (typeof h.key !== 'string' || !h.key.includes('{node}'))
        fail(healthNode, `step ${String(id)}: health.key is a key with {node} in it, such as /health/{node}`);
      try {
        validateKey((h.key as string).replaceAll('{node}', 'node'));
      } catch (error) {
        fail(healthNode, `step ${String(id)}: health.key: ${(error as Error).message}`);
      }
      if (h.equals === undefined)
        fail(healthNode, `step ${String(id)}: health.equals is the value a healthy node's key holds`);
      const healthTimeout = durationOf(h.timeout ?? '5m', () =>
        fail(healthNode, `step ${String(id)}: health.timeout is a duration such as 5m`),
      );
      health = { key: h.key as string, equals: String(h.equals), timeoutMs: healthTimeout };
    }

    steps.push({
      id: id as string,
      group: group as string,
      after: after as string[],
      desired,
      run,
      until: (until as string | null) ?? desired?.state ?? null,
      timeoutMs,
      rolling,
      health,
      line,
    });
  }
  for (const step of steps)
    for (const a of step.after) {
      if (!ids.has(a))
        throw new PlanError(
          `${source}:${step.line}: step ${step.id}: after names "${a}", which is no step of this plan`,
        );
      if (a === step.id) throw new PlanError(`${source}:${step.line}: step ${step.id} cannot come after itself`);
    }
  return { name: name as string, onFailure: onFailure as 'stop' | 'rollback', steps: ordered(steps, source) };
}

/** Steps in an order that keeps every `after`, or a PlanError naming a cycle. */
function ordered(steps: readonly PlanStepSpec[], source: string): PlanStepSpec[] {
  const byId = new Map(steps.map((s) => [s.id, s]));
  const state = new Map<string, 'visiting' | 'done'>();
  const out: PlanStepSpec[] = [];
  const visit = (step: PlanStepSpec, path: string[]): void => {
    const seen = state.get(step.id);
    if (seen === 'done') return;
    if (seen === 'visiting') {
      const cycle = [...path.slice(path.indexOf(step.id)), step.id];
      throw new PlanError(`${source}:${step.line}: the steps' "after" make a cycle: ${cycle.join(' → ')}`);
    }
    state.set(step.id, 'visiting');
    for (const a of step.after) visit(byId.get(a) as PlanStepSpec, [...path, step.id]);
    state.set(step.id, 'done');
    out.push(step);
  };
  for (const step of steps) visit(step, []);
  return out;
}

function checkFields(
  map: YAMLMap,
  known: readonly string[],
  what: string,
  fail: (node: unknown, message: string) => never,
): void {
  for (const pair of map.items) {
    const key = String((pair.key as { value?: unknown } | null)?.value ?? pair.key);
    if (!known.includes(key)) fail(pair.key, `unknown field "${key}" in a ${what} (known: ${known.join(', ')})`);
  }
}

/** A step's timeout is its job's too: jobs take at most 7 days. */
const MAX_STEP_TIMEOUT_MS = 7 * 86_400_000;

function durationOf(value: unknown, onError: () => never): number {
  if (typeof value !== 'string' && typeof value !== 'number') return onError();
  try {
    const ms = parseDuration(value, 'duration');
    if (ms < 0) return onError();
    return ms;
  } catch {
    return onError();
  }
}

/** 5 → 5 nodes; "25%" → a quarter of the group (at least one). */
export function amountOf(value: unknown): Amount | null {
  if (typeof value === 'number') return Number.isInteger(value) && value > 0 ? { count: value } : null;
  if (typeof value !== 'string') return null;
  const percent = /^(\d+(?:\.\d+)?)%$/.exec(value.trim());
  if (percent) {
    const p = Number(percent[1]);
    return p > 0 && p <= 100 ? { percent: p } : null;
  }
  const count = Number(value);
  return Number.isInteger(count) && count > 0 ? { count } : null;
}

/**
 * The batches a rolling step goes through for `nodes` (sorted by name for a stable
 * order): the canary batch first, then batches of `batch` until every node is in one.
 */
export function batchesOf(nodes: readonly string[], rolling: PlanStepSpec['rolling']): string[][] {
  const sorted = [...nodes].sort();
  if (sorted.length === 0) return [];
  if (rolling === null) return [sorted];
  const batches: string[][] = [];
  let at = 0;
  if (rolling.canary > 0) {
    batches.push(sorted.slice(0, rolling.canary));
    at = rolling.canary;
  }
  const size =
    'count' in rolling.batch
      ? rolling.batch.count
      : Math.max(1, Math.ceil((sorted.length * rolling.batch.percent) / 100));
  while (at < sorted.length) {
    batches.push(sorted.slice(at, at + size));
    at += size;
  }
  return batches;
}
