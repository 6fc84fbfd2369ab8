/**
 * The locks issue's performance target: lock handoffs per second with 50 contenders
 * on one lock, each with a session (lease) and an HTTP connection of its own. Each
 * contender loops acquire (blocking until it holds the lock), release at once, and
 * again. muster on its file store, then a single-member etcd through its JSON
 * gateway (v3lock: `/v3/lock/lock`, `/v3/lock/unlock`), one after another.
 */
import type { Agent } from 'node:http';
import { join } from 'node:path';
import { startEtcd } from '../test/support/etcd-server.js';
import { keepAliveAgent, percentile, sendJson, sleep } from './http-client.js';
import { startMuster } from './muster-process.js';
import { findPid, machineBusyPercent, processCpuPercent, sampleCpu } from './process-stats.js';
import type { BenchSettings, Measurement, Scenario, ScenarioResult } from './scenario.js';
import { ETCD_REQUIREMENT, musterThenEtcd, ratio } from './scenario.js';

const CONTENDERS = 50;
const LOCK_NAME = 'bench-lock';
/** Lease TTL beyond the whole run, so that no session needs a keepalive while it is measured. */
const LEASE_MARGIN_SECONDS = 60;
/** After the measured window, how long the contenders get to finish their cycle before their connections are cut. */
const DRAIN_MS = 5_000;
const SYSTEM = { muster: 'muster (file)', etcd: 'etcd' } as const;

/** The lock as one contender holds it. */
interface Held {
  /** muster's fencing token; null for etcd, whose lock answer carries none. */
  readonly token: number | null;
  release(): Promise<void>;
}

/** One contender's session: its lease, on its own connection. */
interface Contender {
  /** Block until this contender holds the lock. */
  acquire(): Promise<Held>;
}

/** A system under test while it runs. */
interface Running {
  readonly pid: number | null;
  /** Grant a lease of `ttl` seconds, and return a contender on `agent` that uses it. */
  contender(agent: Agent, ttl: number): Promise<Contender>;
  stop(): Promise<void>;
}

interface System {
  readonly label: string;
  start(): Promise<Running>;
}

/** One completed acquire: when its answer arrived and when its release was sent (performance.now()). */
interface Cycle {
  readonly contender: number;
  readonly token: number | null;
  readonly acquiredAt: number;
  releaseSentAt: number;
}

export const lockHandoff: Scenario = {
  name: 'locks',
  title: 'lock handoffs: 50 contenders on one lock, each with its own session; muster (file) vs etcd',
  requires: [ETCD_REQUIREMENT],
  run: runLockHandoff,
};

function runLockHandoff(settings: BenchSettings, log: (line: string) => void): Promise<ScenarioResult> {
  return musterThenEtcd({
    load:
      `${settings.seconds} s per system after ${settings.warmupSeconds} s of warm-up, ${CONTENDERS} contenders on one lock, ` +
      "one connection and session each; latency is the handoff: from a holder sending its release to the next holder's acquire answer",
    systems: (scratch) => [musterSystem(join(scratch, 'muster-data')), etcdSystem()],
    measure: (system, notes) => measureSystem(system, settings, log, notes),
    ratio: (muster, etcd) =>
      ratio('muster handoffs/s / etcd handoffs/s', muster.reqPerSec / etcd.reqPerSec, 2.0, 'at-least'),
  });
}

async function measureSystem(
  system: System,
  settings: BenchSettings,
  log: (line: string) => void,
  notes: string[],
): Promise<Measurement> {
  log(`${system.label}: starting`);
  const running = await system.start();
  const agents = Array.from({ length: CONTENDERS }, () => keepAliveAgent(1));
  try {
    const ttl = settings.warmupSeconds + settings.seconds + LEASE_MARGIN_SECONDS;
    const contenders = await Promise.all(agents.map((agent) => running.contender(agent, ttl)));

    // Every completed acquire, in the order the answers arrived. Only one contender
    // holds the lock at a time, so that is the order the lock was granted in.
    const cycles: Cycle[] = [];
    const failures: { at: number; message: string }[] = [];
    let stopping = false;
    const loops = contenders.map(async (contender, index) => {
      while (!stopping) {
        try {
          const held = await contender.acquire();
          const cycle: Cycle = { contender: index, token: held.token, acquiredAt: performance.now(), releaseSentAt: 0 };
          cycles.push(cycle);
          cycle.releaseSentAt = performance.now();
          await held.release();
        } catch (error) {
          failures.push({ at: performance.now(), message: error instanceof Error ? error.message : String(error) });
          if (!stopping) await sleep(10);
        }
      }
    });

    if (settings.warmupSeconds > 0) {
      log(`${system.label}: warm-up, ${settings.warmupSeconds} s (not recorded)`);
      await sleep(settings.warmupSeconds * 1000);
    }
    const before = sampleCpu(running.pid);
    await sleep(settings.seconds * 1000);
    const after = sampleCpu(running.pid);
    stopping = true;
    // Each loop ends after its current cycle; cut the connections of any that hang.
    let timer: NodeJS.Timeout | undefined;
    const drained = await Promise.race([
      Promise.all(loops).then(() => true),
      new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), DRAIN_MS))),
    ]);
    clearTimeout(timer);
    if (!drained) {
      notes.push(`${system.label}: contenders still blocked ${DRAIN_MS} ms after the run; connections cut`);
      for (const agent of agents) agent.destroy();
      await Promise.all(loops);
    }

    const inWindow = (at: number) => at >= before.at && at <= after.at;
    const latencies: number[] = [];
    let handoffs = 0;
    let tokenRegressions = 0;
    let overlaps = 0;
    const perContender = new Array<number>(CONTENDERS).fill(0);
    for (let i = 0; i < cycles.length; i++) {
      const cycle = cycles[i];
      const previous = cycles[i - 1];
      if (cycle === undefined) continue;
      if (previous !== undefined) {
        // Fencing tokens strictly increase from one holder to the next.
        if (cycle.token !== null && previous.token !== null && cycle.token <= previous.token) tokenRegressions++;
        // The next holder can only learn it holds the lock after the previous one let go.
        if (cycle.acquiredAt < previous.releaseSentAt) overlaps++;
      }
      if (!inWindow(cycle.acquiredAt)) continue;
      handoffs++;
      perContender[cycle.contender] = (perContender[cycle.contender] ?? 0) + 1;
      if (previous !== undefined) latencies.push(cycle.acquiredAt - previous.releaseSentAt);
    }
    latencies.sort((a, b) => a - b);
    const errors = failures.filter((f) => inWindow(f.at)).length;

    if (failures.length > 0) {
      const first = failures[0]?.message ?? '';
      notes.push(
        `${system.label}: ${failures.length} failed acquire/release calls (${errors} in the window); first: ${first}`,
      );
    }
    if (tokenRegressions > 0) {
      notes.push(`${system.label}: FENCING TOKENS DID NOT STRICTLY INCREASE ${tokenRegressions} times`);
    } else if (cycles.some((c) => c.token !== null)) {
      notes.push(`${system.label}: fencing tokens strictly increased over all ${cycles.length} acquires`);
    }
    if (overlaps > 0) notes.push(`${system.label}: ${overlaps} acquires answered before the previous holder released`);
    notes.push(
      `${system.label}: handoffs per contender in the window: min ${Math.min(...perContender)}, max ${Math.max(...perContender)}`,
    );

    const seconds = (after.at - before.at) / 1000;
    const measurement: Measurement = {
      system: system.label,
      operation: 'lock handoff',
      requests: handoffs,
      seconds,
      reqPerSec: handoffs / seconds,
      p50Ms: percentile(latencies, 0.5),
      p99Ms: percentile(latencies, 0.99),
      maxMs: latencies[latencies.length - 1] ?? 0,
      errors,
      serverCpuPercent: processCpuPercent(before, after),
      machineBusyPercent: machineBusyPercent(before, after),
    };
    log(`${system.label}: ${Math.round(measurement.reqPerSec)} handoffs/s, p99 ${measurement.p99Ms.toFixed(2)} ms`);
    return measurement;
  } finally {
    for (const agent of agents) agent.destroy();
    await running.stop();
  }
}

function musterSystem(dataDir: string): System {
  return {
    label: SYSTEM.muster,
    async start() {
      const server = await startMuster(dataDir);
      const lock = `${server.url}/v1/locks/${LOCK_NAME}`;
      return {
        pid: server.pid,
        async contender(agent, ttl) {
          const { id } = (await sendJson(agent, 'POST', `${server.url}/v1/leases`, { ttl }, server.headers)) as {
            id: string;
          };
          return {
            async acquire() {
              const handle = (await sendJson(
                agent,
                'POST',
                `${lock}/acquire`,
                { lease: id, timeout: '60s' },
                server.headers,
              )) as {
                key: string;
                token: number;
              };
              return {
                token: handle.token,
                async release() {
                  const answer = (await sendJson(
                    agent,
                    'POST',
                    `${lock}/release`,
                    { key: handle.key, token: handle.token },
                    server.headers,
                  )) as { released?: boolean };
                  if (answer.released !== true) throw new Error(`release answered ${JSON.stringify(answer)}`);
                },
              };
            },
          };
        },
        stop: () => server.stop(),
      };
    },
  };
}

function etcdSystem(): System {
  const name = Buffer.from(LOCK_NAME).toString('base64');
  return {
    label: SYSTEM.etcd,
    async start() {
      const cluster = await startEtcd({ members: 1 });
      const url = cluster.clientUrls[0];
      if (url === undefined) throw new Error('etcd started without a client URL');
      return {
        pid: findPid(`--listen-client-urls=${url}`),
        async contender(agent, ttl) {
          // The gateway writes int64 as a string, and takes it back as one.
          const { ID } = (await sendJson(agent, 'POST', `${url}/v3/lease/grant`, { TTL: ttl })) as { ID: string };
          return {
            async acquire() {
              // Blocks until held; the key (base64) exists while the lock is held.
              const { key } = (await sendJson(agent, 'POST', `${url}/v3/lock/lock`, { name, lease: ID })) as {
                key?: string;
              };
              if (key === undefined) throw new Error('/v3/lock/lock answered without a key');
              return {
                token: null,
                release: async () => {
                  await sendJson(agent, 'POST', `${url}/v3/lock/unlock`, { key });
                },
              };
            },
          };
        },
        stop: () => cluster.stop(),
      };
    },
  };
}
