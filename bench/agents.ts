/**
 * Push jobs at fleet scale (issue 10): N simulated agents (bench/sim-agents.ts: the
 * real agent protocol over HTTP, many in this process) register their nodes, each
 * bound to a lease of its own, and hold their assignment streams on one `muster
 * server` (file store, tokens on); then one trivial job runs on all of them. For
 * each N: the server's RSS with the agents connected (and its peak during the job),
 * the time from `POST /v1/jobs` until every node is running (every agent's
 * `started` report taken) and until the job is complete. N = 1,000 and 10,000
 * (BENCH_AGENTS=1000,5000 to choose).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { MusterClient } from '../src/client/muster-client.js';
import { SimFleet } from './sim-agents.js';
import { keepAliveAgent, percentile, sendJson, sleep } from './http-client.js';
import { startMuster } from './muster-process.js';
import { machineBusyPercent, processCpuPercent, sampleCpu } from './process-stats.js';
import type { BenchSettings, Measurement, Ratio, Scenario, ScenarioResult } from './scenario.js';
import { oneAfterAnother, ratio } from './scenario.js';

const TARGETS = { startedMs: 3000, completeMs: 6000, rssMiB: 1536 };
/** Leases outlive the run, so the agents need no keepalives while it is measured. */
const LEASE_TTL = 600;
const REGISTER_PARALLEL = 64;

function rssMiB(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
  return kb / 1024;
}

function fleetSizes(env: Readonly<Record<string, string | undefined>>): number[] {
  const text = env.BENCH_AGENTS;
  if (!text) return [1000, 10_000];
  const sizes = text.split(',').map((s) => Number(s.trim()));
  if (sizes.some((n) => !Number.isInteger(n) || n < 1 || n > 15_000)) {
    throw new Error(`BENCH_AGENTS must be whole numbers from 1 to 15000, comma-separated, got ${JSON.stringify(text)}`);
  }
  return sizes;
}

interface Outcome {
  readonly measurement: Measurement;
  readonly startedMs: number;
  readonly completeMs: number;
  readonly rssConnected: number;
  readonly rssPeak: number;
  readonly state: string;
}

async function runFleet(n: number, scratch: string, log: (line: string) => void): Promise<Outcome> {
  const server = await startMuster(join(scratch, `agents-${n}`), ['--max-watches', String(n + 100)]);
  const pool = keepAliveAgent(64);
  const fleet = new SimFleet(server.url, { sockets: 64 });
  try {
    const names = Array.from({ length: n }, (_, i) => `bench-${String(i).padStart(5, '0')}`);
    const headers = server.headers;
    const registerStart = performance.now();
    // Registration as the agent does it: the node's alive key bound to its agent's lease.
    for (let i = 0; i < names.length; i += REGISTER_PARALLEL) {
      await Promise.all(
        names.slice(i, i + REGISTER_PARALLEL).map(async (name) => {
          const lease = (await sendJson(pool, 'POST', `${server.url}/v1/leases`, { ttl: LEASE_TTL }, headers)) as {
            id: string;
          };
          // PUT /v1/nodes/<name>, as `muster agent` registers at every connect.
          const registration = { lease: lease.id, tags: ['bench'], attrs: { role: 'bench' }, facts: {} };
          const res = await fetch(`${server.url}/v1/nodes/${name}`, {
            method: 'PUT',
            headers: { ...headers, 'content-type': 'application/json' },
            body: JSON.stringify(registration),
          });
          if (res.status !== 200) throw new Error(`registering ${name}: HTTP ${res.status}: ${await res.text()}`);
        }),
      );
    }
    for (const name of names) fleet.add(name, { noop: {} }, server.token ?? undefined);
    await fleet.connectAll(200);
    log(`  ${n} agents registered and connected in ${((performance.now() - registerStart) / 1000).toFixed(1)} s`);
    await sleep(1000);
    const rssConnected = rssMiB(server.pid);
    let rssPeak = rssConnected;
    const sampler = setInterval(() => {
      try {
        rssPeak = Math.max(rssPeak, rssMiB(server.pid));
      } catch {
        // The server is gone: the run fails below.
      }
    }, 100);
    // The job's record is followed with a watch of its one key, not polled: a record
    // that lists 10,000 nodes read 50 times a second would cost the server what it measures.
    const client = new MusterClient({ endpoints: server.url, ...(server.token ? { token: server.token } : {}) });
    const fromRevision = (await client.listWire('/muster/jobs/', { limit: 1, keysOnly: true })).revision + 1;
    const before = sampleCpu(server.pid);
    const t0 = performance.now();
    const job = (await sendJson(
      pool,
      'POST',
      `${server.url}/v1/jobs`,
      { query: 'role:bench', command: 'noop', timeout: '2m' },
      headers,
    )) as { id: string };
    let state = 'voting';
    let completeAt = 0;
    const decoder = new TextDecoder();
    for await (const event of client.watch(`/muster/jobs/${job.id}`, {
      prefix: false,
      fromRevision,
      signal: AbortSignal.timeout(120_000),
    })) {
      if (event.type !== 'put') continue;
      state = (JSON.parse(decoder.decode(event.kv.value)) as { state: string }).state;
      if (!['voting', 'running'].includes(state)) {
        completeAt = performance.now();
        break;
      }
    }
    clearInterval(sampler);
    const after = sampleCpu(server.pid);
    const startedAt = fleet.agents.map((a) => a.acked.get(`${job.id}:started`) ?? Infinity);
    const started = startedAt.filter(Number.isFinite).sort((a, b) => a - b);
    const allStartedMs = Math.max(...startedAt) - t0;
    const completeMs = completeAt > 0 ? completeAt - t0 : Infinity;
    const latencies = started.map((at) => at - t0);
    log(
      `  job ${state}: all ${n} running after ${allStartedMs.toFixed(0)} ms, complete after ${completeMs.toFixed(0)} ms; RSS ${rssConnected.toFixed(0)} MiB connected, ${rssPeak.toFixed(0)} MiB peak`,
    );
    return {
      measurement: {
        system: `muster (file), ${n.toLocaleString('en-US')} agents`,
        operation: 'job: started on node',
        requests: started.length,
        seconds: completeMs / 1000,
        reqPerSec: started.length / (completeMs / 1000),
        p50Ms: percentile(latencies, 0.5),
        p99Ms: percentile(latencies, 0.99),
        maxMs: allStartedMs,
        errors: n - started.length,
        serverCpuPercent: processCpuPercent(before, after),
        machineBusyPercent: machineBusyPercent(before, after),
      },
      startedMs: allStartedMs,
      completeMs,
      rssConnected,
      rssPeak,
      state,
    };
  } finally {
    fleet.close();
    pool.destroy();
    await server.stop();
  }
}

export const agents: Scenario = {
  name: 'agents',
  title: 'Push jobs: N simulated agents on one server, one trivial job on all of them (issue 10)',
  requires: [],
  async run(_settings: BenchSettings, log: (line: string) => void): Promise<ScenarioResult> {
    const sizes = fleetSizes(process.env);
    const outcomes: Outcome[] = [];
    const { notes } = await oneAfterAnother(
      (scratch) => sizes.map((n) => ({ n, scratch })),
      async ({ n, scratch }) => {
        const outcome = await runFleet(n, scratch, log);
        outcomes.push(outcome);
        return [outcome.measurement];
      },
    );
    const ratios: Ratio[] = [];
    for (const o of outcomes) {
      const n = o.measurement.system.replace(/^muster \(file\), /, '');
      notes.push(
        `${n}: job ${o.state}; every node running after ${o.startedMs.toFixed(0)} ms, complete after ${o.completeMs.toFixed(0)} ms; server RSS ${o.rssConnected.toFixed(0)} MiB with the agents connected, ${o.rssPeak.toFixed(0)} MiB at its peak during the job`,
      );
      if (o.measurement.requests >= 10_000) {
        ratios.push(ratio(`${n}: ms until all running`, o.startedMs, TARGETS.startedMs, 'at-most'));
        ratios.push(ratio(`${n}: ms until complete`, o.completeMs, TARGETS.completeMs, 'at-most'));
        ratios.push(ratio(`${n}: server RSS MiB (peak)`, o.rssPeak, TARGETS.rssMiB, 'at-most'));
      }
    }
    notes.push(
      'p50/p99/max ms: from POST /v1/jobs until each agent’s "started" report was taken; req/s: nodes started per second of the whole job',
    );
    notes.push(
      'nodes registered as the agent does (PUT /v1/nodes/<name>, its alive key bound to its own lease); the agents send no keepalives during the run (leases of 600 s)',
    );
    return {
      load: `${sizes.join(' and ')} agents, each with its own assignment stream (SSE); reports over a pool of 64 connections`,
      measurements: outcomes.map((o) => o.measurement),
      ratios,
      notes,
    };
  },
};
