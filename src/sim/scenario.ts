/**
 * A simulator scenario: what every simulated node does, in order, with the
 * coordination primitives. Written in YAML or JSON (docs/simulate.md); the
 * built-in scenarios (src/sim/builtin/) are in the same format.
 *
 *     name: kubeadm
 *     nodes: 100            # default node count (--nodes overrides)
 *     start: 0-5s           # each node starts after a random delay in this range
 *     ttl: 10s              # each node's session TTL
 *     limit: 30m            # virtual time by which every node must have finished
 *     steps:
 *       - elect: k8s.master
 *       - when: leader
 *         put: { key: /clusters/k8s/join-token, value: "{random}" }
 *       - when: follower
 *         wait: { key: /clusters/k8s/join-token }
 *
 * `roles` gives nodes fixed parts (`{ mysql: 1, django: rest }`: the first node is
 * mysql-1, the others django-1, django-2, ...), and a step with `role: django` is
 * taken by those nodes only. Keys and values may name `{node}`, `{role}` and
 * `{random}` (a random hex token, new at each use).
 */
import { LineCounter, parseDocument, isMap, isSeq } from 'yaml';
import type { Node as YamlNode } from 'yaml';
import { parseDuration } from '../core/duration.js';
import { InvalidArgumentError } from '../core/errors.js';
import { validateKey } from '../core/key-path.js';
import { nodeMatcher } from '../nodes/query.js';
import type { PlanSpec } from '../plans/plan-spec.js';
import { parsePlan } from '../plans/plan-spec.js';

/** A duration picked at random in [min, max] ms for each use. */
export interface DurationRange {
  readonly min: number;
  readonly max: number;
}

export type Role = 'leader' | 'follower';

export type Step = (
  | { readonly kind: 'sleep'; readonly duration: DurationRange }
  | { readonly kind: 'put'; readonly key: string; readonly value: string }
  | { readonly kind: 'wait'; readonly key: string; readonly equals: string | null }
  | { readonly kind: 'lock'; readonly name: string; readonly hold: DurationRange }
  | { readonly kind: 'elect'; readonly name: string }
  | {
      readonly kind: 'once';
      readonly name: string;
      readonly run: DurationRange;
      readonly put: { readonly key: string; readonly value: string } | null;
    }
  | { readonly kind: 'barrier'; readonly name: string; readonly count: number | 'all' }
) & {
  /** Only nodes in this role (set by the last `elect`) take the step. */
  readonly when: Role | null;
  /** Only nodes of these roles (of the scenario's `roles`) take the step; null: every node. */
  readonly roles: readonly string[] | null;
  /** Where the step is in the file, for messages: `steps[2]` (line 14). */
  readonly where: string;
};

/** A fixed part some nodes play: `count` of them, or every node left (`rest`). */
export interface RoleSpec {
  readonly name: string;
  readonly count: number | 'rest';
}

/**
 * A release scenario (`plan:` instead of `steps:`): the nodes are agents that
 * run a simulated configuration-management command (chef-client), which
 * converges each of the node's groups to what the node is to be in now and
 * reports it; an operator makes the groups, sets their desired states, then
 * applies the plan, which the server's plan runner carries out.
 */
export interface Release {
  /** The groups the operator makes first: name and node query (a node has the attribute `role`). */
  readonly groups: readonly { readonly name: string; readonly query: string }[];
  /** The desired states set before the nodes boot. */
  readonly desired: readonly { readonly group: string; readonly state: string; readonly version: string | null }[];
  readonly agent: {
    /** The command the agents allow (the plan's `run`). */
    readonly command: string;
    /** How long a run takes. */
    readonly converge: DurationRange;
    /** After converging, the node writes `key` = `value` (bound to its session) `after` later: its health check. */
    readonly health: { readonly key: string; readonly value: string; readonly after: DurationRange } | null;
  };
  /** When the operator applies the plan, virtual ms since the start. */
  readonly applyMs: number;
  /** The plan file's text as sent to the server, and what it says. */
  readonly planSource: string;
  readonly plan: PlanSpec;
}

export interface Scenario {
  readonly name: string;
  readonly description: string;
  readonly nodes: number;
  /** The nodes' parts, in the order nodes are given them; empty: every node is a "node". */
  readonly roles: readonly RoleSpec[];
  readonly start: DurationRange;
  readonly ttlSeconds: number;
  readonly limitMs: number;
  /** Empty for a release scenario. */
  readonly steps: readonly Step[];
  /** A release scenario's plan and agents (null: a scenario of steps). */
  readonly release: Release | null;
}

export const MAX_NODES = 10_000;
const STEP_KINDS = ['sleep', 'put', 'wait', 'lock', 'elect', 'once', 'barrier'] as const;
const TOP_FIELDS = [
  'name',
  'description',
  'nodes',
  'roles',
  'start',
  'ttl',
  'limit',
  'steps',
  'plan',
  'groups',
  'desired',
  'agent',
  'apply',
];
const RELEASE_FIELDS = ['plan', 'groups', 'desired', 'agent', 'apply'];
const STEP_FILTERS = ['when', 'role'];
const PLACEHOLDERS = ['node', 'role', 'random'];
const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

/** A scenario file's mistake, naming where it is. */
export class ScenarioError extends InvalidArgumentError {
  constructor(message: string) {
    super(message, 'invalid_scenario');
  }
}

/** Parse and check a scenario from YAML or JSON text (JSON is YAML). `source` names it in errors. */
export function parseScenario(text: string, source: string): Scenario {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false });
  const first = doc.errors[0];
  if (first) {
    const at = lines.linePos(first.pos[0]);
    throw new ScenarioError(`${source}:${at.line}: ${first.message.split('\n')[0]}`);
  }
  const at = (node: unknown): string => {
    const range = (node as YamlNode | undefined)?.range;
    return range ? `${source}:${lines.linePos(range[0]).line}` : source;
  };
  const root = doc.contents;
  if (!isMap(root)) throw new ScenarioError(`${at(root)}: a scenario is a mapping with name and steps`);
  const field = (key: string) => root.get(key, true) as YamlNode | undefined;
  for (const pair of root.items) {
    const key = String((pair.key as { value?: unknown } | null)?.value ?? pair.key);
    if (!TOP_FIELDS.includes(key))
      throw new ScenarioError(`${at(pair.key)}: unknown field "${key}" (known: ${TOP_FIELDS.join(', ')})`);
  }
  const value = (key: string): unknown => (field(key) as { toJSON?: () => unknown } | undefined)?.toJSON?.();

  const name = value('name');
  if (typeof name !== 'string' || !NAME.test(name))
    throw new ScenarioError(`${at(field('name') ?? root)}: name must be letters, digits, ".", "_" or "-"`);
  const description = value('description') ?? '';
  if (typeof description !== 'string') throw new ScenarioError(`${at(field('description'))}: description is text`);
  const nodes = value('nodes') ?? 10;
  if (!Number.isInteger(nodes) || (nodes as number) < 1 || (nodes as number) > MAX_NODES)
    throw new ScenarioError(`${at(field('nodes'))}: nodes must be a whole number from 1 to ${MAX_NODES}`);
  const start = range(value('start') ?? '0s', `${at(field('start'))}: start`);
  const ttl = duration(value('ttl') ?? '10s', `${at(field('ttl'))}: ttl`);
  if (ttl < 1000 || ttl % 1000 !== 0)
    throw new ScenarioError(`${at(field('ttl'))}: ttl must be whole seconds, 1s or more`);
  const limitMs = duration(value('limit') ?? '1h', `${at(field('limit'))}: limit`);
  if (limitMs <= 0) throw new ScenarioError(`${at(field('limit'))}: limit must be more than 0`);

  const roles = parseRoles(value('roles') ?? {}, `${at(field('roles'))}: roles`);
  const roleNames = roles.map((r) => r.name);

  let steps: Step[] = [];
  let release: Release | null = null;
  if (field('plan') !== undefined) {
    if (field('steps') !== undefined)
      throw new ScenarioError(`${at(field('steps'))}: a scenario has steps or a plan, not both`);
    release = parseRelease(value, field, at, (node) => sourceOf(text, lines, node, source));
  } else {
    for (const extra of RELEASE_FIELDS)
      if (field(extra) !== undefined)
        throw new ScenarioError(`${at(field(extra))}: ${extra} belongs to a scenario with a plan (add plan:)`);
    steps = parseSteps(field, root, at, roleNames);
  }
  checkNodeCount(nodes as number, roles, `${at(field('nodes') ?? root)}: nodes`);
  return {
    name,
    description,
    nodes: nodes as number,
    roles,
    start,
    ttlSeconds: ttl / 1000,
    limitMs,
    steps,
    release,
  };
}

type Field = (key: string) => YamlNode | undefined;
type At = (node: unknown) => string;

function parseSteps(field: Field, root: YamlNode, at: At, roleNames: readonly string[]): Step[] {
  const stepsNode = field('steps');
  if (!isSeq(stepsNode) || stepsNode.items.length === 0)
    throw new ScenarioError(`${at(stepsNode ?? root)}: steps must be a non-empty list`);
  const steps = stepsNode.items.map((item, i) =>
    parseStep((item as { toJSON?: () => unknown }).toJSON?.(), `steps[${i}] (${at(item)})`, roleNames),
  );
  const firstElect = steps.findIndex((step) => step.kind === 'elect');
  steps.forEach((step, i) => {
    if (step.when !== null && (firstElect < 0 || firstElect >= i))
      throw new ScenarioError(`${step.where}: "when: ${step.when}" needs an elect step before it`);
  });
  return steps;
}

/**
 * The plan as it is written in the scenario file (dedented, so that it is a plan
 * file of its own), and how to put its errors' lines back in the scenario's.
 */
interface PlanText {
  readonly text: string;
  readonly locate: (message: string) => string;
}

function sourceOf(text: string, lines: LineCounter, node: YamlNode | undefined, source: string): PlanText | null {
  const range = node?.range;
  if (!range) return null;
  const start = lines.linePos(range[0]);
  const column = start.col - 1;
  const body = ' '.repeat(column) + text.slice(range[0], range[1]);
  const dedented = body
    .split('\n')
    .map((line) => (line.slice(0, column).trim() === '' ? line.slice(column) : line))
    .join('\n');
  return {
    text: dedented.endsWith('\n') ? dedented : dedented + '\n',
    locate: (message) =>
      message.replace(/^plan:(\d+): /, (_, n: string) => `${source}:${start.line + Number(n) - 1}: plan: `),
  };
}

function parseRelease(
  value: (key: string) => unknown,
  field: Field,
  at: At,
  planText: (node: YamlNode | undefined) => PlanText | null,
): Release {
  const where = (key: string) => `${at(field(key))}: ${key}`;
  const groupsRaw = value('groups');
  if (typeof groupsRaw !== 'object' || groupsRaw === null || Array.isArray(groupsRaw))
    throw new ScenarioError(`${where('groups')} is a mapping of group name to node query, such as { web: 'role:web' }`);
  const groups = Object.entries(groupsRaw).map(([name, query]) => {
    if (!NAME.test(name)) throw new ScenarioError(`${where('groups')}: "${name}" is not a group name`);
    const q = text(query, `${where('groups')}.${name}`);
    try {
      nodeMatcher(q);
    } catch (error) {
      throw new ScenarioError(`${where('groups')}.${name}: ${(error as Error).message}`);
    }
    return { name, query: q };
  });
  const desiredRaw = value('desired') ?? {};
  if (typeof desiredRaw !== 'object' || desiredRaw === null || Array.isArray(desiredRaw))
    throw new ScenarioError(`${where('desired')} is a mapping of group to { state, version }`);
  const desired = Object.entries(desiredRaw).map(([group, raw]) => {
    const what = `${where('desired')}.${group}`;
    if (!groups.some((g) => g.name === group)) throw new ScenarioError(`${what}: no such group in groups`);
    const o = object(raw, what, ['state', 'version']);
    return {
      group,
      state: text(o.state, `${what}.state`),
      version: o.version === undefined ? null : text(o.version, `${what}.version`),
    };
  });
  const agent = object(value('agent') ?? {}, where('agent'), ['command', 'converge', 'health']);
  let health: Release['agent']['health'] = null;
  if (agent.health !== undefined) {
    const h = object(agent.health, `${where('agent')}.health`, ['key', 'value', 'after']);
    health = {
      key: keyTemplate(h.key, `${where('agent')}.health.key`),
      value: valueTemplate(h.value ?? 'ok', `${where('agent')}.health.value`),
      after: range(h.after ?? '0s', `${where('agent')}.health.after`),
    };
  }
  const command = text(agent.command ?? 'chef-client', `${where('agent')}.command`);
  const applyMs = duration(value('apply') ?? '0s', where('apply'));
  const planRaw = value('plan');
  // A plan written as a block of text is sent as it is; a mapping, as it is written in the file.
  const written = typeof planRaw === 'string' ? null : planText(field('plan'));
  const planSource = typeof planRaw === 'string' ? planRaw : (written?.text ?? JSON.stringify(planRaw, null, 2));
  let plan: PlanSpec;
  try {
    plan = parsePlan(planSource, 'plan');
  } catch (error) {
    const text = (error as Error).message;
    const located = written?.locate(text);
    throw new ScenarioError(located !== undefined && located !== text ? located : `${where('plan')}: ${text}`);
  }
  for (const step of plan.steps)
    if (!groups.some((g) => g.name === step.group))
      throw new ScenarioError(
        `${where('plan')}: step ${step.id} names the group ${step.group}, which is not in groups`,
      );
  return {
    groups,
    desired,
    agent: { command, converge: range(agent.converge ?? '10s', `${where('agent')}.converge`), health },
    applyMs,
    planSource,
    plan,
  };
}

function parseStep(raw: unknown, where: string, roleNames: readonly string[]): Step {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw))
    throw new ScenarioError(`${where}: a step is a mapping such as { sleep: 1s }`);
  const fields = raw as Record<string, unknown>;
  const kinds = STEP_KINDS.filter((k) => k in fields);
  if (kinds.length !== 1)
    throw new ScenarioError(`${where}: a step has exactly one of ${STEP_KINDS.join(', ')}` + describeFound(kinds));
  for (const key of Object.keys(fields))
    if (!STEP_FILTERS.includes(key) && key !== kinds[0])
      throw new ScenarioError(`${where}: unknown field "${key}" (a step has one kind and may have when, role)`);
  const when = fields.when ?? null;
  if (when !== null && when !== 'leader' && when !== 'follower')
    throw new ScenarioError(`${where}: when must be leader or follower`);
  const roles = stepRoles(fields.role, `${where}: role`, roleNames);
  const kind = kinds[0] as (typeof STEP_KINDS)[number];
  const body = fields[kind];
  const common = { when, roles, where } as const;
  const what = `${where}: ${kind}`;
  switch (kind) {
    case 'sleep':
      return { kind, duration: range(body, what), ...common };
    case 'elect':
      return { kind, name: primitiveName(body, what), ...common };
    case 'put': {
      const o = object(body, what, ['key', 'value']);
      return {
        kind,
        key: keyTemplate(o.key, `${what}.key`),
        value: valueTemplate(o.value, `${what}.value`),
        ...common,
      };
    }
    case 'wait': {
      const o = object(body, what, ['key', 'equals']);
      const equals = o.equals === undefined ? null : valueTemplate(o.equals, `${what}.equals`);
      return { kind, key: keyTemplate(o.key, `${what}.key`), equals, ...common };
    }
    case 'lock': {
      const o = object(body, what, ['name', 'hold']);
      return {
        kind,
        name: primitiveName(o.name, `${what}.name`),
        hold: range(o.hold ?? '0s', `${what}.hold`),
        ...common,
      };
    }
    case 'once': {
      const o = object(body, what, ['name', 'run', 'put']);
      let put: { key: string; value: string } | null = null;
      if (o.put !== undefined) {
        const p = object(o.put, `${what}.put`, ['key', 'value']);
        put = { key: keyTemplate(p.key, `${what}.put.key`), value: valueTemplate(p.value, `${what}.put.value`) };
      }
      return {
        kind,
        name: primitiveName(o.name, `${what}.name`),
        run: range(o.run ?? '0s', `${what}.run`),
        put,
        ...common,
      };
    }
    case 'barrier': {
      const o = object(body, what, ['name', 'count']);
      const count = o.count ?? 'all';
      if (count !== 'all' && (!Number.isInteger(count) || (count as number) < 1))
        throw new ScenarioError(`${what}.count must be a whole number above 0 or "all"`);
      return { kind, name: primitiveName(o.name, `${what}.name`), count: count as number | 'all', ...common };
    }
  }
}

function parseRoles(raw: unknown, what: string): RoleSpec[] {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw))
    throw new ScenarioError(
      `${what} is a mapping of role name to a count or "rest", such as { mysql: 1, django: rest }`,
    );
  const roles: RoleSpec[] = [];
  for (const [name, count] of Object.entries(raw)) {
    if (!NAME.test(name)) throw new ScenarioError(`${what}: role "${name}" must be letters, digits, ".", "_" or "-"`);
    if (count !== 'rest' && (!Number.isInteger(count) || (count as number) < 0 || (count as number) > MAX_NODES))
      throw new ScenarioError(`${what}.${name} must be a whole number from 0 to ${MAX_NODES} or "rest"`);
    roles.push({ name, count: count as number | 'rest' });
  }
  if (roles.filter((r) => r.count === 'rest').length > 1)
    throw new ScenarioError(`${what}: only one role may take the rest of the nodes`);
  return roles;
}

function checkNodeCount(nodes: number, roles: readonly RoleSpec[], what: string): void {
  const fixed = roles.reduce((sum, r) => sum + (r.count === 'rest' ? 0 : r.count), 0);
  const rest = roles.some((r) => r.count === 'rest');
  if (roles.length > 0 && (rest ? nodes < fixed : nodes !== fixed))
    throw new ScenarioError(
      `${what}: ${nodes} nodes do not fit the roles (${rest ? 'at least' : 'exactly'} ${fixed} needed)`,
    );
}

/** Each node's role, in node order, for `nodes` nodes (ScenarioError when they do not fit). */
export function assignRoles(scenario: Scenario, nodes: number): string[] {
  checkNodeCount(nodes, scenario.roles, `--nodes ${nodes}`);
  if (scenario.roles.length === 0) return Array.from({ length: nodes }, () => 'node');
  const fixed = scenario.roles.reduce((sum, r) => sum + (r.count === 'rest' ? 0 : r.count), 0);
  return scenario.roles.flatMap((r) =>
    Array.from({ length: r.count === 'rest' ? nodes - fixed : r.count }, () => r.name),
  );
}

function stepRoles(raw: unknown, what: string, roleNames: readonly string[]): string[] | null {
  if (raw === undefined) return null;
  const list = Array.isArray(raw) ? (raw as unknown[]) : [raw];
  if (list.length === 0) throw new ScenarioError(`${what} names at least one role`);
  for (const role of list)
    if (typeof role !== 'string' || !roleNames.includes(role))
      throw new ScenarioError(
        `${what}: "${String(role)}" is not one of the scenario's roles` +
          (roleNames.length > 0 ? ` (${roleNames.join(', ')})` : ' (it has no roles: add roles: { NAME: COUNT })'),
      );
  return list as string[];
}

/** A key, possibly naming placeholders: checked as a key with each placeholder filled in. */
function keyTemplate(raw: unknown, what: string): string {
  const template = text(raw, what);
  checkPlaceholders(template, what);
  try {
    validateKey(fill(template, { node: 'node-1', role: 'node', random: '0123456789abcdef' }));
  } catch (error) {
    throw new ScenarioError(`${what}: ${(error as Error).message}`);
  }
  return template;
}

function valueTemplate(raw: unknown, what: string): string {
  if (raw === undefined || raw === null) return '';
  if (typeof raw !== 'string' && typeof raw !== 'number' && typeof raw !== 'boolean')
    throw new ScenarioError(`${what} must be text`);
  const template = String(raw);
  checkPlaceholders(template, what);
  return template;
}

function checkPlaceholders(template: string, what: string): void {
  for (const match of template.matchAll(/\{([^}]*)\}/g))
    if (!PLACEHOLDERS.includes(match[1] ?? ''))
      throw new ScenarioError(`${what}: unknown placeholder {${match[1]}} (known: {node}, {role}, {random})`);
}

/** Fill `{node}`, `{role}` and `{random}` in a key or value template. */
export function fill(template: string, values: { node: string; role: string; random: string }): string {
  return template.replace(/\{(node|role|random)\}/g, (_, name: 'node' | 'role' | 'random') => values[name]);
}

function describeFound(kinds: readonly string[]): string {
  return kinds.length === 0 ? '' : ` (found ${kinds.join(' and ')})`;
}

function object(raw: unknown, what: string, known: readonly string[]): Record<string, unknown> {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw))
    throw new ScenarioError(`${what} takes a mapping of ${known.join(', ')}`);
  for (const key of Object.keys(raw))
    if (!known.includes(key)) throw new ScenarioError(`${what}: unknown field "${key}" (known: ${known.join(', ')})`);
  return raw as Record<string, unknown>;
}

function text(raw: unknown, what: string): string {
  if (typeof raw === 'number' || typeof raw === 'boolean') return String(raw);
  if (typeof raw !== 'string' || raw.length === 0) throw new ScenarioError(`${what} must be non-empty text`);
  return raw;
}

function primitiveName(raw: unknown, what: string): string {
  if (typeof raw !== 'string' || !NAME.test(raw))
    throw new ScenarioError(`${what} must be a name of letters, digits, ".", "_" or "-"`);
  return raw;
}

function duration(raw: unknown, what: string): number {
  if (typeof raw !== 'string' && typeof raw !== 'number')
    throw new ScenarioError(`${what} must be a duration such as 5s`);
  try {
    return parseDuration(raw, what);
  } catch (error) {
    throw new ScenarioError(`${what}: ${(error as Error).message}`);
  }
}

/** `5s`, or a range `0-3s` / `500ms-2s` / `1s-1m`, picked at random on each use. */
export function range(raw: unknown, what: string): DurationRange {
  if (typeof raw === 'number') {
    const ms = duration(raw, what);
    return { min: ms, max: ms };
  }
  if (typeof raw !== 'string') throw new ScenarioError(`${what} must be a duration such as 5s or a range such as 0-3s`);
  const dash = raw.indexOf('-');
  if (dash < 0) {
    const ms = duration(raw, what);
    return { min: ms, max: ms };
  }
  const low = raw.slice(0, dash).trim();
  const high = raw.slice(dash + 1).trim();
  const max = duration(high, what);
  // "0-3s": a bare low end takes the high end's unit.
  const unit = /^\d+(\.\d+)?$/.test(low) ? (/[a-z]+$/.exec(high)?.[0] ?? 's') : '';
  const min = duration(low + unit, what);
  if (min > max) throw new ScenarioError(`${what}: the range ${raw} runs backwards`);
  return { min, max };
}
