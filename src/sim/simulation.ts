import { performance } from 'node:perf_hooks';
import type { FetchFunction } from '../client/http-transport.js';
import { seededRandom, virtualRuntime } from '../core/runtime.js';
import { MusterServer } from '../server/muster-server.js';
import type { Faults } from './faults.js';
import { NO_FAULTS } from './faults.js';
import { History } from './history.js';
import type { Exchange } from './inject-fetch.js';
import { injectFetch } from './inject-fetch.js';
import { checkInvariants, seconds } from './invariants.js';
import type { Violation } from './invariants.js';
import type { Scenario } from './scenario.js';
import { assignRoles } from './scenario.js';
import { Scheduler } from './scheduler.js';
import type { SchedulerOutcome } from './scheduler.js';
import type { LockImpl } from './sim-node.js';
import { SIM_NODE_HEADER, SimNode, serverLock } from './sim-node.js';

export interface SimulationOptions {
  /** @default the scenario's `nodes` */
  readonly nodes?: number;
  /** The same seed gives the same run. @default 1 */
  readonly seed?: number;
  /** @default none */
  readonly faults?: Faults;
  /** How the nodes take locks: a test plugs in a broken one to see the checker catch it. @default the server's lock */
  readonly lockImpl?: LockImpl;
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
  readonly finishedNodes: number;
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
  let nodes: SimNode[] = [];
  try {
    const send: FetchFunction = injectFetch(server.app, {
      sent: (exchange) => observeSent(history, exchange),
      answered: (exchange) => observeAnswer(history, exchange),
    });
    const takers = scenario.steps.map(
      (step) => roles.filter((r) => step.roles === null || step.roles.includes(r)).length,
    );
    const env = {
      scenario,
      faults,
      clock,
      now,
      scheduler,
      history,
      send,
      lockImpl: options.lockImpl ?? serverLock,
      takers,
    };
    // Each node draws from its own generator, so one node's choices do not shift another's.
    const seeds = seededRandom(seed);
    const perRole = new Map<string, number>();
    nodes = roles.map((role, index) => {
      const n = (perRole.get(role) ?? 0) + 1;
      perRole.set(role, n);
      return new SimNode(index, `${role}-${n}`, role, seededRandom(Math.floor(seeds() * 2 ** 32)), env);
    });
    const lives = nodes.map((node) => node.live());
    const outcome = await scheduler.run(() => nodes.every((n) => n.state === 'finished'), EPOCH + scenario.limitMs);
    const end = now();
    if (outcome !== 'done') {
      const unfinished = nodes.filter((n) => n.state !== 'finished');
      const listed = unfinished
        .slice(0, 5)
        .map((n) => `${n.name} (${n.state === 'down' ? 'down' : n.describeStep()})`)
        .join(', ');
      history.problem(
        outcome === 'limit' ? 'limit' : 'finished',
        `${outcome === 'limit' ? `the limit (${seconds(scenario.limitMs)}) passed` : 'nothing more could happen'} with ${unfinished.length} of ${nodes.length} nodes unfinished: ${listed}${unfinished.length > 5 ? ', ...' : ''}`,
      );
    }
    for (const node of nodes) node.stop();
    await Promise.all(lives);
    addLeaseEnds(history, end);
    const violations = checkInvariants(history, end);
    const summary: SimulationSummary = {
      scenario: scenario.name,
      nodes: nodes.length,
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
      finishedNodes: nodes.filter((n) => n.state === 'finished').length,
    };
    const timeline = history.events
      .map((event, order) => ({ event, order }))
      .sort((a, b) => a.event.at - b.event.at || a.order - b.order)
      .map(({ event }) => event);
    return { summary, timeline, violations };
  } finally {
    for (const node of nodes) node.stop();
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
