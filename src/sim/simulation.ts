import { performance } from 'node:perf_hooks';
import type { FetchFunction } from '../client/http-transport.js';
import { seededRandom, virtualRuntime } from '../core/runtime.js';
import { MusterServer } from '../server/muster-server.js';
import type { Faults } from './faults.js';
import { NO_FAULTS } from './faults.js';
import { History, describeValue, seconds } from './history.js';
import type { Exchange } from './inject-fetch.js';
import { injectFetch } from './inject-fetch.js';
import { checkInvariants } from './invariants.js';
import type { Violation } from './invariants.js';
import type { Scenario } from './scenario.js';
import { assignRoles } from './scenario.js';
import { Scheduler } from './scheduler.js';
import type { SchedulerOutcome } from './scheduler.js';
import type { LockImpl } from './sim-node.js';
import { SimNode, serverLock } from './sim-node.js';
import type { PeerEnv, SimPeer } from './sim-peer.js';
import { SIM_ENDPOINT, SIM_NODE_HEADER, message } from './sim-peer.js';
import type { RecipeImpl } from './sim-agent.js';
import { AgentNode, effectiveRecipe } from './sim-agent.js';
import { MusterClient } from '../client/muster-client.js';
import type { PlanRecord } from '../client/plan-types.js';
import { FINAL_PLAN_STATES, effectiveDesired } from '../plans/plan-model.js';
import { sleep } from '../core/clock.js';
import type { PlanSeen } from './history.js';
import type { Release } from './scenario.js';
import type { PlanSpec } from '../plans/plan-spec.js';

export interface SimulationOptions {
  /** @default the scenario's `nodes` */
  readonly nodes?: number;
  /** The same seed gives the same run. @default 1 */
  readonly seed?: number;
  /** @default none */
  readonly faults?: Faults;
  /** How the nodes take locks: a test plugs in a broken one to see the checker catch it. @default the server's lock */
  readonly lockImpl?: LockImpl;
  /** What a release scenario's chef-client converges to: a test plugs in a wrong one. @default the effective desired state */
  readonly recipe?: RecipeImpl;
}

export interface SimulationSummary {
  readonly scenario: string;
  readonly nodes: number;
  readonly seed: number;
  readonly faults: Faults;
  /** Virtual ms from the start to the end of the run. */
  readonly virtualMs: number;
  /** Wall-clock ms the run took (not part of what a seed reproduces). */
  readonly wallMs: number;
  readonly outcome: SchedulerOutcome;
  readonly crashes: number;
  readonly partitions: number;
  readonly leadersElected: number;
  readonly lockAcquisitions: number;
  readonly onceRuns: number;
  readonly barrierReleases: number;
  readonly requests: number;
  readonly maxWaitMs: number;
  /** Nodes finished (a scenario of steps), or settled: down or idle (a release scenario). */
  readonly finishedNodes: number;
  /** A release scenario (a plan carried out by agents), not a scenario of steps. */
  readonly release: boolean;
  /** A release scenario's plan as it ended (null: no plan, or it was never applied). */
  readonly plan: {
    readonly id: string;
    readonly name: string;
    readonly state: string;
    readonly reason: string | null;
  } | null;
  /** A release scenario: jobs the nodes were handed, and nodes down at the end. */
  readonly jobAssignments: number;
  readonly downAtEnd: number;
}

export interface SimulationResult {
  readonly summary: SimulationSummary;
  readonly timeline: readonly { readonly at: number; readonly node: string; readonly what: string }[];
  readonly violations: readonly Violation[];
}

/** Where virtual time starts (any fixed instant: the run must not depend on the real date). */
const EPOCH = Date.UTC(2030, 0, 1);

/**
 * Run `scenario` on simulated nodes against a real muster server in this
 * process (in-memory store, virtual clock, seeded randomness), then check the
 * invariants. See docs/simulate.md.
 */
export async function simulate(scenario: Scenario, options: SimulationOptions = {}): Promise<SimulationResult> {
  const started = performance.now();
  const seed = options.seed ?? 1;
  const faults = options.faults ?? NO_FAULTS;
  const count = options.nodes ?? scenario.nodes;
  const roles = assignRoles(scenario, count);
  const runtime = virtualRuntime(seed, EPOCH);
  const { clock } = runtime;
  const now = () => clock.now() - EPOCH;
  const history = new History(now);
  const serverRandom = seededRandom(seed ^ 0x5eed);
  const server = await MusterServer.start({
    store: {
      kind: 'sqlite',
      dataDir: ':memory:',
      randomBytes: (size) => Uint8Array.from({ length: size }, () => Math.floor(serverRandom() * 256)),
    },
    port: 0,
    runtime,
    auth: 'off',
    logger: false,
    serverId: 'sim',
  });
  const scheduler = new Scheduler(clock);
  let peers: SimPeer<PeerEnv>[] = [];
  try {
    const send: FetchFunction = injectFetch(server.app, {
      sent: (exchange) => observeSent(history, exchange),
      answered: (exchange) => observeAnswer(history, exchange),
    });
    const takers = scenario.steps.map(
      (step) => roles.filter((r) => step.roles === null || step.roles.includes(r)).length,
    );
    const peerEnv: PeerEnv = { scenario, faults, clock, now, scheduler, history, send };
    // Each node draws from its own generator, so one node's choices do not shift another's.
    const seeds = seededRandom(seed);
    const perRole = new Map<string, number>();
    const names = roles.map((role) => {
      const n = (perRole.get(role) ?? 0) + 1;
      perRole.set(role, n);
      return `${role}-${n}`;
    });
    const release = scenario.release;
    let agents: AgentNode[] = [];
    let operator: Operator | null = null;
    if (release) {
      const agentEnv = { ...peerEnv, release, recipe: options.recipe ?? effectiveRecipe };
      agents = roles.map(
        (role, index) =>
          new AgentNode(index, names[index] as string, role, seededRandom(Math.floor(seeds() * 2 ** 32)), agentEnv),
      );
      peers = agents;
      operator = new Operator(
        release,
        roles.length,
        seededRandom(Math.floor(seeds() * 2 ** 32)),
        peerEnv,
        `${scenario.name}.plan`,
      );
    } else {
      const env = { ...peerEnv, lockImpl: options.lockImpl ?? serverLock, takers };
      peers = roles.map(
        (role, index) =>
          new SimNode(index, names[index] as string, role, seededRandom(Math.floor(seeds() * 2 ** 32)), env),
      );
    }
    const lives = peers.map((peer) => peer.live());
    const operated = operator?.run();
    const settled = () => peers.every((peer) => peer.settled);
    // A release ends when the operator gave up, or when its plan ended and nothing is under way any more.
    const done = operator
      ? () => operator.failed || (operator.ended !== null && scheduler.waiting === 0 && settled())
      : settled;
    const outcome = await scheduler.run(done, EPOCH + scenario.limitMs);
    const end = now();
    const finishedNodes = peers.filter((peer) => peer.settled).length;
    const downAtEnd = agents.filter((a) => a.state === 'down').length;
    if (outcome !== 'done') {
      const unfinished = peers
        .filter((peer) => !peer.settled)
        .map((peer) => `${peer.name} (${peer.describeUnsettled()})`);
      const planNote =
        operator?.ended === null && !operator.failed ? `the plan had not ended (${operator.describe()}); ` : '';
      history.problem(
        outcome === 'limit' ? 'limit' : 'finished',
        `${outcome === 'limit' ? `the limit (${seconds(scenario.limitMs)}) passed` : 'nothing more could happen'} with ${planNote}${unfinished.length} of ${roles.length} nodes unfinished: ${unfinished.slice(0, 5).join(', ')}${unfinished.length > 5 ? ', ...' : ''}`,
      );
    }
    if (operator) await readEnd(server.app, operator, agents, history, EPOCH);
    operator?.stop();
    for (const peer of peers) peer.stop();
    await operated;
    await Promise.all(lives);
    const plan = history.plans[0] ?? null;
    addLeaseEnds(history, end);
    const violations = checkInvariants(history, end);
    const summary: SimulationSummary = {
      scenario: scenario.name,
      nodes: roles.length,
      seed,
      faults,
      virtualMs: end,
      wallMs: Math.round(performance.now() - started),
      outcome,
      crashes: history.crashes,
      partitions: history.partitions,
      leadersElected: history.leaderships.length,
      lockAcquisitions: history.lockHolds.length,
      onceRuns: history.onceRuns.length,
      barrierReleases: history.releases.length,
      requests: history.requests,
      maxWaitMs: history.maxWaitMs,
      finishedNodes,
      release: release !== null,
      plan: plan ? { id: plan.id, name: plan.name, state: plan.state, reason: plan.reason } : null,
      jobAssignments: history.jobsSeen.length,
      downAtEnd,
    };
    const timeline = history.events
      .map((event, order) => ({ event, order }))
      .sort((a, b) => a.event.at - b.event.at || a.order - b.order)
      .map(({ event }) => event);
    return { summary, timeline, violations };
  } finally {
    for (const peer of peers) peer.stop();
    await server.stop();
  }
}

/** A barrier arrival counts from the moment the server gets it. */
function observeSent(history: History, exchange: Exchange): void {
  const enter = /^\/v1\/barriers\/([^/?]+)\/enter/.exec(exchange.path);
  if (!enter || exchange.method !== 'POST' || exchange.body === null) return;
  const body = JSON.parse(exchange.body) as { id?: string; lease?: string };
  history.arrivals.push({
    name: decodeURIComponent(enter[1] ?? ''),
    id: body.id ?? body.lease ?? '',
    lease: body.lease ?? '',
    at: history.time,
  });
}

/** The leases' lives, as the server answered their grants, keepalives and revocations. */
function observeAnswer(history: History, exchange: Exchange): void {
  if (exchange.status !== 200 || !exchange.path.startsWith('/v1/leases')) return;
  const node = exchange.headers[SIM_NODE_HEADER] ?? 'unknown';
  if (exchange.method === 'POST' && exchange.path === '/v1/leases') {
    const grant = JSON.parse(exchange.payload ?? '{}') as { id: string; ttl: number };
    history.leaseGranted(grant.id, grant.ttl, node);
    return;
  }
  const keepalive = /^\/v1\/leases\/([^/?]+)\/keepalive$/.exec(exchange.path);
  if (keepalive && exchange.method === 'POST') history.leaseRenewed(decodeURIComponent(keepalive[1] ?? ''));
  const revoke = /^\/v1\/leases\/([^/?]+)$/.exec(exchange.path);
  if (revoke && exchange.method === 'DELETE') history.leaseRevoked(decodeURIComponent(revoke[1] ?? ''));
}

/** The timeline shows when each lease that was not revoked expired on the server. */
function addLeaseEnds(history: History, end: number): void {
  for (const lease of history.leases.values()) {
    const expiry = lease.lastRenewal + lease.ttlMs;
    if (lease.revokedAt === null && expiry <= end)
      history.events.push({ at: expiry, node: lease.node, what: `lease ${lease.id} expired on the server` });
  }
}

type OperatorEnv = Pick<PeerEnv, 'clock' | 'now' | 'scheduler' | 'history' | 'send'>;

/** How often the operator looks at the plan (its changes go into the timeline). */
const PLAN_POLL_MS = 5000;

/**
 * The release scenario's operator: makes the groups, sets their first desired
 * states, applies the plan when it is time, and follows it until it ends. Its
 * requests take their turns after every node's.
 */
class Operator {
  /** The plan as it ended (null while it runs, or before it is applied). */
  ended: PlanRecord | null = null;
  /** The operator gave up (a request of its failed: a problem is recorded, the run ends). */
  failed = false;
  private plan: PlanRecord | null = null;
  private readonly over = new AbortController();
  private readonly client: MusterClient;

  constructor(
    readonly release: Release,
    private readonly index: number,
    random: () => number,
    private readonly env: OperatorEnv,
    private readonly filename: string,
  ) {
    const { scheduler, send } = env;
    const fetch: FetchFunction = async (input, init) => {
      await scheduler.turn(index, this.over.signal);
      env.history.requests++;
      const headers = { ...(init.headers as Record<string, string> | undefined), [SIM_NODE_HEADER]: 'operator' };
      return send(input, { ...init, headers, signal: null });
    };
    this.client = new MusterClient({
      endpoints: SIM_ENDPOINT,
      fetch,
      // Time is virtual: no request has a wall-clock timeout (blocking calls carry their own).
      requestTimeoutMs: 0,
      runtime: { clock: env.clock, random },
    });
  }

  async run(): Promise<void> {
    const { history, clock, now } = this.env;
    const signal = this.over.signal;
    try {
      for (const group of this.release.groups) await this.client.putGroup(group.name, group.query, { signal });
      for (const d of this.release.desired)
        await this.client.setDesired(d.group, { state: d.state, version: d.version }, { signal });
      history.record(
        'operator',
        `groups ${this.release.groups.map((g) => `${g.name} (${g.query})`).join(', ')}; desired ${this.release.desired.map((d) => `${d.group} ${describeValue(d)}`).join(', ')}`,
      );
      if (this.release.applyMs > now()) await sleep(clock, this.release.applyMs - now(), signal);
      let plan = await this.client.applyPlan(this.release.planSource, this.filename, { signal });
      history.record('operator', `plan ${plan.name} applied: ${plan.id}`);
      for (;;) {
        this.note(plan);
        this.plan = plan;
        if (FINAL_PLAN_STATES.has(plan.state)) break;
        await sleep(clock, PLAN_POLL_MS, signal);
        plan = await this.client.getPlan(plan.id, { signal });
      }
      this.ended = plan;
    } catch (error) {
      if (signal.aborted) return;
      this.failed = true;
      history.problem('operator', `the operator failed: ${message(error)}`);
    }
  }

  stop(): void {
    this.over.abort(new Error('the simulation ended'));
  }

  /** The plan as last seen, for messages. */
  describe(): string {
    const plan = this.plan;
    if (!plan) return 'not applied';
    const running = plan.steps
      .filter((s) => s.state !== 'complete' && s.state !== 'pending')
      .map((s) => `${s.id} ${s.state}`);
    return `${plan.state}${running.length > 0 ? `: ${running.join(', ')}` : ''}`;
  }

  /** The plan's changes since the last look, into the timeline. */
  private note(plan: PlanRecord): void {
    const before = this.plan;
    const { history } = this.env;
    for (const step of plan.steps) {
      const old = before?.steps.find((s) => s.id === step.id);
      if (old?.state !== step.state)
        history.record(
          'plan',
          `step ${step.id} (${step.group}): ${step.state}${step.state === 'running' && step.batches.length > 0 ? ` in ${step.batches.length} batches${step.skipped.length > 0 ? `, ${step.skipped.length} down and skipped` : ''}` : ''}${step.reason ? `: ${step.reason}` : ''}`,
        );
      step.batches.forEach((batch, i) => {
        const was = old?.batches[i];
        if (was?.state !== batch.state)
          history.record(
            'plan',
            `step ${step.id} batch ${i + 1}/${step.batches.length} (${describeNodes(batch.nodes)}): ${batch.state}${batch.reason ? `: ${batch.reason}` : ''}`,
          );
      });
    }
    if (before?.state !== plan.state)
      history.record('plan', `plan ${plan.name}: ${plan.state}${plan.reason ? `: ${plan.reason}` : ''}`);
  }
}

function describeNodes(nodes: readonly string[]): string {
  return nodes.length <= 3 ? nodes.join(', ') : `${nodes.length} nodes: ${nodes[0]} to ${nodes.at(-1)}`;
}

/**
 * What the checker needs from the server at the end of a release run: the
 * plan's record, and each node's effective desired state and report per group.
 * Read straight from the server (no turns: nothing else runs any more).
 */
async function readEnd(
  app: Parameters<typeof injectFetch>[0],
  operator: Operator,
  agents: readonly AgentNode[],
  history: History,
  epoch: number,
): Promise<void> {
  const client = new MusterClient({ endpoints: SIM_ENDPOINT, fetch: injectFetch(app), requestTimeoutMs: 0 });
  const plan = operator.ended ?? (await client.listPlans()).at(0) ?? null;
  const { release } = operator;
  if (plan) history.plans.push(planSeen(await client.getPlan(plan.id), release.plan, epoch));
  for (const group of release.groups) {
    const status = await client.groupStatus(group.name);
    for (const agent of agents) {
      if (!agent.groups.includes(group.name)) continue;
      const row = status.nodes.find((n) => n.node === agent.name);
      const effective = effectiveDesired(status.desired, agent.name);
      history.endStates.push({
        node: agent.name,
        group: group.name,
        up: agent.state === 'up' && row?.up === true,
        desired: effective ? { state: effective.state, version: effective.version } : null,
        actual: row && row.state !== null ? { state: row.state, version: row.version } : null,
      });
    }
  }
}

/** The plan record, with what its file (`spec`) says, in the checker's terms (virtual ms since the start). */
function planSeen(plan: PlanRecord, spec: PlanSpec, epoch: number): PlanSeen {
  const ms = (iso: string | undefined) => (iso === undefined ? null : Date.parse(iso) - epoch);
  return {
    id: plan.id,
    name: plan.name,
    state: plan.state,
    reason: plan.reason ?? null,
    steps: plan.steps.map((step) => {
      const stepSpec = spec.steps.find((s) => s.id === step.id);
      const rolling = stepSpec?.rolling ?? null;
      return {
        id: step.id,
        group: step.group,
        after: step.after,
        state: step.state,
        startedAt: ms(step.startedAt),
        finishedAt: ms(step.finishedAt),
        desired: stepSpec?.desired ? { state: stepSpec.desired.state, version: stepSpec.desired.version } : null,
        previous: step.previousDesired
          ? { state: step.previousDesired.state, version: step.previousDesired.version }
          : null,
        rolling: rolling ? { canary: rolling.canary, batch: rolling.batch } : null,
        skipped: step.skipped.length,
        batches: step.batches.map((b) => ({ nodes: b.nodes, jobId: b.jobId ?? null, startedAt: ms(b.startedAt) })),
      };
    }),
  };
}
