/**
 * The wait issue's performance target: the time from one write to 1,000 waiters
 * released. muster: 1,000 `GET /v1/wait/<key>?equals=<value>` requests; etcd: 1,000
 * watches of the same key through its JSON gateway (`POST /v3/watch`, a stream of
 * JSON lines). Each waiter has an HTTP connection of its own on both systems. Once
 * all are in place, one write of the key releases them; a waiter's latency is the
 * time from just before that write was sent to its release arriving. Several rounds,
 * a new key and fresh waiters each, latencies pooled. muster on its file store, then
 * a single-member etcd, one after another.
 */
import { request, type Agent } from 'node:http';
import { join } from 'node:path';
import { startEtcd } from '../test/support/etcd-server.js';
import { keepAliveAgent, percentile, send, sendJson, sleep } from './http-client.js';
import { startMuster } from './muster-process.js';
import type { CpuSample } from './process-stats.js';
import { findPid, machineBusyPercent, processCpuPercent, sampleCpu } from './process-stats.js';
import type { BenchSettings, Measurement, Scenario, ScenarioResult } from './scenario.js';
import { ETCD_REQUIREMENT, musterThenEtcd, ratio } from './scenario.js';

const WAITERS = 1000;
const ROUNDS = 5;
/** Waiters are opened this many at a time (each batch in place before the next), to stay within the listen backlog. */
const OPEN_BATCH = 100;
/** How long a round may take, from the write, before its missing waiters count as not released. */
const RELEASE_TIMEOUT_MS = 15_000;
/** Settling before the write: the server counts as done with the waiters once it used ≤ 1 CPU tick per window. */
const SETTLE_WINDOW_MS = 200;
const SETTLE_MAX_MS = 10_000;
const SYSTEM = { muster: 'muster (file)', etcd: 'etcd' } as const;

/** One waiter, from the client's side. Neither promise rejects. */
interface Waiter {
  /** True once it is in place as far as the client can see (muster: request sent; etcd: "created"); false if it failed. */
  readonly ready: Promise<boolean>;
  /** When its release arrived (performance.now()), or why it failed. */
  readonly released: Promise<number | string>;
}

/** A system under test while it runs. */
interface Running {
  readonly pid: number | null;
  /** Start one waiter on `key` for `value`, on a connection of `agent`. */
  wait(agent: Agent, key: string, value: string): Waiter;
  /** Write `value` to `key`; resolves once the write is answered. */
  write(key: string, value: string): Promise<void>;
  stop(): Promise<void>;
}

interface System {
  readonly label: string;
  start(): Promise<Running>;
}

/** What one round measured. */
interface Round {
  /** Latency of each released waiter, ms. */
  readonly latencies: number[];
  /** Waiters that failed or were not released within RELEASE_TIMEOUT_MS. */
  readonly missing: number;
  readonly firstFailure: string | null;
  /** CPU counters at the write and at the last release. */
  readonly cpu: readonly [CpuSample, CpuSample];
}

export const waiters: Scenario = {
  name: 'wait',
  title: 'wait: one write releasing 1,000 waiters; muster (file) wait over HTTP vs 1,000 etcd gateway watchers',
  requires: [ETCD_REQUIREMENT],
  run: runWaiters,
};

function runWaiters(settings: BenchSettings, log: (line: string) => void): Promise<ScenarioResult> {
  return musterThenEtcd({
    load:
      `${ROUNDS} rounds of ${WAITERS} waiters per system, each on its own connection; latency is from sending the write to a waiter's release; ` +
      'req/s is waiters released per second of release time (write to last release)',
    systems: (scratch) => [musterSystem(join(scratch, 'muster-data')), etcdSystem()],
    measure: (system, notes) => measureSystem(system, settings, log, notes),
    ratio: (muster, etcd) =>
      ratio('muster p99 / etcd p99, release of 1,000 waiters', muster.p99Ms / etcd.p99Ms, 1.0, 'at-most'),
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
  try {
    if (settings.warmupSeconds > 0) {
      log(`${system.label}: warm-up round (not recorded)`);
      await runRound(running, 'warmup');
    }
    const rounds: Round[] = [];
    for (let i = 0; i < ROUNDS; i++) {
      const round = await runRound(running, `round-${i}`);
      const last = round.latencies[round.latencies.length - 1] ?? 0;
      log(`${system.label} round ${i}: ${round.latencies.length} released, last after ${last.toFixed(1)} ms`);
      rounds.push(round);
    }

    const latencies = rounds.flatMap((r) => r.latencies).sort((a, b) => a - b);
    const missing = rounds.reduce((sum, r) => sum + r.missing, 0);
    if (missing > 0) {
      const first = rounds.find((r) => r.firstFailure !== null)?.firstFailure ?? 'not released in time';
      notes.push(`${system.label}: ${missing} of ${ROUNDS * WAITERS} waiters not released; first: ${first}`);
    } else {
      notes.push(`${system.label}: all ${ROUNDS * WAITERS} waiters released with the written value`);
    }
    // Release time of a round: from the write to its last release.
    const seconds = rounds.reduce((sum, r) => sum + (r.latencies[r.latencies.length - 1] ?? 0), 0) / 1000;
    const [before, after] = pooledCpu(rounds.map((r) => r.cpu));
    const measurement: Measurement = {
      system: system.label,
      operation: `release ${WAITERS} waiters`,
      requests: latencies.length,
      seconds,
      reqPerSec: seconds > 0 ? latencies.length / seconds : 0,
      p50Ms: percentile(latencies, 0.5),
      p99Ms: percentile(latencies, 0.99),
      maxMs: latencies[latencies.length - 1] ?? 0,
      errors: missing,
      serverCpuPercent: processCpuPercent(before, after),
      machineBusyPercent: machineBusyPercent(before, after),
    };
    log(`${system.label}: p50 ${measurement.p50Ms.toFixed(2)} ms, p99 ${measurement.p99Ms.toFixed(2)} ms`);
    return measurement;
  } finally {
    await running.stop();
  }
}

/** Open WAITERS waiters on a new key, let the server settle, write the key, and collect the releases. */
async function runRound(running: Running, name: string): Promise<Round> {
  const key = `/bench/wait/flag-${name}`;
  const value = `go-${name}`;
  // Fresh connections every round, all closed at its end.
  const agent = keepAliveAgent(WAITERS);
  try {
    const opened: Waiter[] = [];
    let failedToOpen = 0;
    for (let i = 0; i < WAITERS; i += OPEN_BATCH) {
      const batch = Array.from({ length: Math.min(OPEN_BATCH, WAITERS - i) }, () => running.wait(agent, key, value));
      failedToOpen += (await Promise.all(batch.map((w) => w.ready))).filter((ok) => !ok).length;
      opened.push(...batch);
    }
    await settle(running.pid);

    const start = sampleCpu(running.pid);
    await running.write(key, value);
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<string>((resolve) => {
      timer = setTimeout(() => resolve('not released within the timeout'), RELEASE_TIMEOUT_MS);
    });
    const outcomes = await Promise.all(opened.map((w) => Promise.race([w.released, timeout])));
    const end = sampleCpu(running.pid);
    clearTimeout(timer);
    const latencies = outcomes.filter((o): o is number => typeof o === 'number').map((at) => at - start.at);
    latencies.sort((a, b) => a - b);
    const firstFailure = outcomes.find((o): o is string => typeof o === 'string') ?? null;
    return {
      latencies,
      missing: WAITERS - latencies.length,
      firstFailure: firstFailure ?? (failedToOpen > 0 ? `${failedToOpen} failed to open` : null),
      cpu: [start, end],
    };
  } finally {
    agent.destroy();
  }
}

/**
 * Wait until the server has taken in the waiters: a muster waiter is in place once
 * the server has read its request and started its watch, and nothing tells the client
 * when that is, so wait for the server's CPU to go quiet (≤ 1 tick in a window),
 * then one window more. Done for both systems, so both get the same quiet start.
 */
async function settle(pid: number | null): Promise<void> {
  if (pid === null) {
    await sleep(1000);
    return;
  }
  const deadline = performance.now() + SETTLE_MAX_MS;
  let previous = sampleCpu(pid);
  while (performance.now() < deadline) {
    await sleep(SETTLE_WINDOW_MS);
    const now = sampleCpu(pid);
    const ticks = (now.processTicks ?? 0) - (previous.processTicks ?? 0);
    previous = now;
    if (ticks <= 1) break;
  }
  await sleep(SETTLE_WINDOW_MS);
}

/** The release windows of every round as one: counters summed, durations summed. */
function pooledCpu(windows: readonly (readonly [CpuSample, CpuSample])[]): [CpuSample, CpuSample] {
  const sum = (pick: (s: CpuSample) => number) =>
    windows.reduce((total, [from, to]) => total + pick(to) - pick(from), 0);
  const known = windows.every(([from, to]) => from.processTicks !== null && to.processTicks !== null);
  const zero: CpuSample = { at: 0, processTicks: 0, machineBusy: 0, machineTotal: 0 };
  return [
    zero,
    {
      at: sum((s) => s.at),
      processTicks: known ? sum((s) => s.processTicks ?? 0) : null,
      machineBusy: sum((s) => s.machineBusy),
      machineTotal: sum((s) => s.machineTotal),
    },
  ];
}

/** A Waiter whose outcome the caller settles through the returned functions; later calls are ignored. */
function settleable(): {
  waiter: Waiter;
  ready: (ok: boolean) => void;
  released: (outcome: number | string) => void;
} {
  let ready: (ok: boolean) => void = () => {};
  let released: (outcome: number | string) => void = () => {};
  const waiter: Waiter = {
    ready: new Promise((resolve) => (ready = resolve)),
    released: new Promise((resolve) => (released = resolve)),
  };
  return {
    waiter,
    ready,
    released: (outcome) => {
      // A waiter that fails before it is in place is no longer waited for.
      if (typeof outcome === 'string') ready(false);
      released(outcome);
    },
  };
}

function musterSystem(dataDir: string): System {
  return {
    label: SYSTEM.muster,
    async start() {
      const server = await startMuster(dataDir);
      const writer = keepAliveAgent(1);
      const write = async (key: string, value: string) => {
        const answer = await send(
          writer,
          'PUT',
          `${server.url}/v1/kv${key}`,
          Buffer.from(value),
          undefined,
          server.headers,
        );
        if (answer.status !== 200) throw new Error(`PUT /v1/kv${key} answered ${answer.status}: ${answer.body}`);
      };
      // The writer's connection is open before the first measured write.
      await write('/bench/wait/ready', 'yes');
      return {
        pid: server.pid,
        wait(agent, key, value) {
          const { waiter, ready, released } = settleable();
          const path = `/v1/wait${key}?equals=${encodeURIComponent(value)}&timeout=60s`;
          const req = request(`${server.url}${path}`, { agent, headers: server.headers });
          req.on('error', (error) => released(`GET ${path}: ${error.message}`));
          req.once('finish', () => ready(true));
          req.once('response', (res) => {
            const chunks: Buffer[] = [];
            res.on('data', (chunk: Buffer) => chunks.push(chunk));
            res.on('error', (error) => released(`GET ${path}: ${error.message}`));
            res.once('end', () => {
              const at = performance.now();
              const body = Buffer.concat(chunks).toString('utf8');
              if (res.statusCode !== 200) {
                released(`GET ${path} answered ${res.statusCode}: ${body.slice(0, 200)}`);
                return;
              }
              const answer = JSON.parse(body) as { satisfied?: boolean; kv?: { value?: string } | null };
              if (answer.satisfied === true && answer.kv?.value === value) released(at);
              else released(`GET ${path} answered ${body.slice(0, 200)}`);
            });
          });
          req.end();
          return waiter;
        },
        write,
        async stop() {
          writer.destroy();
          await server.stop();
        },
      };
    },
  };
}

function etcdSystem(): System {
  const b64 = (text: string) => Buffer.from(text).toString('base64');
  return {
    label: SYSTEM.etcd,
    async start() {
      const cluster = await startEtcd({ members: 1 });
      const url = cluster.clientUrls[0];
      if (url === undefined) throw new Error('etcd started without a client URL');
      const writer = keepAliveAgent(1);
      const write = async (key: string, value: string) => {
        await sendJson(writer, 'POST', `${url}/v3/kv/put`, { key: b64(key), value: b64(value) });
      };
      await write('/bench/wait/ready', 'yes');
      return {
        pid: findPid(`--listen-client-urls=${url}`),
        wait(agent, key, value) {
          const { waiter, ready, released } = settleable();
          const req = request(`${url}/v3/watch`, {
            method: 'POST',
            agent,
            headers: { 'content-type': 'application/json' },
          });
          const fail = (why: string) => {
            released(`watch ${key}: ${why}`);
            req.destroy();
          };
          req.on('error', (error) => released(`watch ${key}: ${error.message}`));
          req.once('response', (res) => {
            if (res.statusCode !== 200) {
              fail(`answered ${res.statusCode}`);
              return;
            }
            // A stream of JSON objects, one per line: {"result": {...}} or {"error": {...}}.
            let buffered = '';
            res.setEncoding('utf8');
            res.on('data', (chunk: string) => {
              buffered += chunk;
              let newline: number;
              while ((newline = buffered.indexOf('\n')) >= 0) {
                const line = buffered.slice(0, newline).trim();
                buffered = buffered.slice(newline + 1);
                if (line === '') continue;
                const message = JSON.parse(line) as {
                  result?: { created?: boolean; events?: { kv?: { value?: string } }[] };
                  error?: unknown;
                };
                if (message.error !== undefined || message.result === undefined) {
                  fail(`stream said ${line.slice(0, 200)}`);
                  return;
                }
                if (message.result.created === true) ready(true);
                const event = message.result.events?.[0];
                if (event !== undefined) {
                  const at = performance.now();
                  if (event.kv?.value === b64(value)) released(at);
                  else released(`watch ${key}: event ${line.slice(0, 200)}`);
                  // Done with this watcher: close its stream and connection.
                  req.destroy();
                  return;
                }
              }
            });
            res.on('error', () => released(`watch ${key}: the stream broke`));
            res.once('end', () => released(`watch ${key}: the stream ended without an event`));
          });
          req.end(JSON.stringify({ create_request: { key: b64(key) } }));
          return waiter;
        },
        write,
        async stop() {
          writer.destroy();
          await cluster.stop();
        },
      };
    },
  };
}
