/**
 * The webhooks issue's targets: deliveries per second to a local receiver (one hook,
 * and 100 hooks on one prefix), and the p99 from a write to its delivery at 1,000
 * writes/s. A `muster server` process on its file store delivers (as deployed: the
 * delivery duty runs in the server); the writes and the receiver run in this process,
 * so the server's CPU goes to its own work and the two share the 2-core machine.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MusterClient } from '../src/client/muster-client.js';
import type { Agent } from 'node:http';
import { keepAliveAgent, percentile, send, sleep } from './http-client.js';
import { startMuster } from './muster-process.js';
import { machineBusyPercent, processCpuPercent, sampleCpu } from './process-stats.js';
import type { BenchSettings, Measurement, Scenario, ScenarioResult } from './scenario.js';
import { ratio } from './scenario.js';

const ONE_HOOK_EVENTS = 20_000;
const MANY_HOOKS = 100;
const MANY_HOOKS_EVENTS = 300;
const WRITE_RATE = 1000;
const PUTS_PER_TXN = 100;
const MAX_IN_FLIGHT = 64;

export const hooksBench: Scenario = {
  name: 'hooks',
  title: 'webhook deliveries/s to a local receiver (1 hook, 100 hooks) and write→delivery p99 at 1,000 writes/s',
  requires: [],
  run: runHooks,
};

/** A receiver that counts deliveries and notes when each key arrived. */
async function startReceiver() {
  let count = 0;
  const arrivals = new Map<string, number>();
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      count++;
      if (req.headers['x-muster-hook'] === 'latency') {
        const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { key: string };
        arrivals.set(body.key, performance.now());
      }
      res.writeHead(204);
      res.end();
    });
  });
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/`,
    count: () => count,
    arrivals,
    stop: () => {
      server.closeAllConnections();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

async function runHooks(settings: BenchSettings, log: (line: string) => void): Promise<ScenarioResult> {
  const scratch = await mkdtemp(join(tmpdir(), 'muster-bench-hooks-'));
  const receiver = await startReceiver();
  const server = await startMuster(join(scratch, 'data'), [], { auth: false });
  const client = new MusterClient({ endpoints: server.url });
  const measurements: Measurement[] = [];
  const notes: string[] = [];
  try {
    const value = new TextEncoder().encode('x'.repeat(64));
    /** Write `events` keys under `prefix` in txns of PUTS_PER_TXN. */
    const preload = async (prefix: string, events: number) => {
      for (let i = 0; i < events; i += PUTS_PER_TXN) {
        const ops = Array.from({ length: Math.min(PUTS_PER_TXN, events - i) }, (_, j) => ({
          type: 'put' as const,
          key: `${prefix}${i + j}`,
          value,
        }));
        await client.txn({ success: ops });
      }
    };
    const drain = async (hooks: string[], expected: number): Promise<number> => {
      const base = receiver.count();
      const started = performance.now();
      for (const name of hooks) await client.resumeHook(name);
      while (receiver.count() - base < expected) {
        if (performance.now() - started > 120_000)
          throw new Error(`only ${receiver.count() - base} of ${expected} delivered in 120 s`);
        await sleep(5);
      }
      return (performance.now() - started) / 1000;
    };

    log(`1 hook: ${ONE_HOOK_EVENTS} events written while paused, then resumed`);
    await client.addHook({ name: 'one', prefix: '/one/', url: receiver.url });
    await client.pauseHook('one');
    await sleep(500);
    await preload('/one/', ONE_HOOK_EVENTS);
    const oneSeconds = await drain(['one'], ONE_HOOK_EVENTS);
    measurements.push(row('1 hook', ONE_HOOK_EVENTS, oneSeconds));
    log(`  ${Math.round(ONE_HOOK_EVENTS / oneSeconds)} deliveries/s`);
    await client.removeHook('one');

    log(`${MANY_HOOKS} hooks on one prefix: ${MANY_HOOKS_EVENTS} events each`);
    const names = Array.from({ length: MANY_HOOKS }, (_, i) => `many-${i}`);
    for (const name of names) {
      await client.addHook({ name, prefix: '/many/', url: receiver.url });
      await client.pauseHook(name);
    }
    await sleep(500);
    await preload('/many/', MANY_HOOKS_EVENTS);
    const manySeconds = await drain(names, MANY_HOOKS * MANY_HOOKS_EVENTS);
    measurements.push(row(`${MANY_HOOKS} hooks`, MANY_HOOKS * MANY_HOOKS_EVENTS, manySeconds));
    log(`  ${Math.round((MANY_HOOKS * MANY_HOOKS_EVENTS) / manySeconds)} deliveries/s`);
    for (const name of names) await client.removeHook(name);

    log(`write→delivery: ${WRITE_RATE} writes/s for ${settings.seconds} s through the HTTP API`);
    await client.addHook({ name: 'latency', prefix: '/lat/', url: receiver.url });
    await sleep(500);
    // Writes go through a lean node:http agent, as wrk would send them: the global
    // fetch costs the bench process more CPU per request than the server spends on it.
    const agent = keepAliveAgent(MAX_IN_FLIGHT);
    if (settings.warmupSeconds > 0) {
      log(`  warm-up: ${settings.warmupSeconds} s unrecorded`);
      await writeAtRate(agent, server.url, '/lat/warm-', WRITE_RATE * settings.warmupSeconds);
      await waitFor(() => receiver.arrivals.size >= WRITE_RATE * settings.warmupSeconds, 30_000);
    }
    receiver.arrivals.clear();
    const total = WRITE_RATE * settings.seconds;
    const cpuBefore = sampleCpu(server.pid);
    const { sent, failed, seconds: writeSeconds } = await writeAtRate(agent, server.url, '/lat/', total);
    if (failed > 0) notes.push(`${failed} writes failed`);
    await waitFor(() => receiver.arrivals.size >= sent.size, 30_000);
    const cpuAfter = sampleCpu(server.pid);
    agent.destroy();
    const latencies = [...sent].flatMap(([key, at]) => {
      const arrived = receiver.arrivals.get(key);
      return arrived === undefined ? [] : [arrived - at];
    });
    latencies.sort((a, b) => a - b);
    const missing = sent.size - latencies.length;
    if (missing > 0) notes.push(`${missing} of ${total} writes not delivered within 30 s`);
    measurements.push({
      system: 'muster (file)',
      operation: `write→delivery at ${WRITE_RATE}/s`,
      requests: latencies.length,
      seconds: writeSeconds,
      reqPerSec: latencies.length / writeSeconds,
      p50Ms: percentile(latencies, 0.5),
      p99Ms: percentile(latencies, 0.99),
      maxMs: latencies.at(-1) ?? 0,
      errors: missing,
      serverCpuPercent: processCpuPercent(cpuBefore, cpuAfter),
      machineBusyPercent: machineBusyPercent(cpuBefore, cpuAfter),
    });
    notes.push(
      'the server (with its delivery duty) is its own process; writes and receiver share the bench process; deliveries/s = events / time to drain them',
    );
    const one = measurements[0]!;
    const many = measurements[1]!;
    const lat = measurements[2]!;
    return {
      load: `${ONE_HOOK_EVENTS} events to 1 hook; ${MANY_HOOKS_EVENTS} events to each of ${MANY_HOOKS} hooks; ${WRITE_RATE} writes/s for ${settings.seconds} s`,
      measurements,
      ratios: [
        ratio('deliveries/s, 1 hook', one.reqPerSec, 5000, 'at-least'),
        ratio(`deliveries/s, ${MANY_HOOKS} hooks`, many.reqPerSec, 5000, 'at-least'),
        ratio(`p99 write→delivery at ${WRITE_RATE} writes/s (ms)`, lat.p99Ms, 50, 'at-most'),
      ],
      notes,
    };
  } finally {
    await server.stop();
    await receiver.stop();
    await rm(scratch, { recursive: true, force: true });
  }
}

/**
 * PUT `count` keys `${prefix}0`… at WRITE_RATE per second, at most MAX_IN_FLIGHT at
 * once (a stalled store slows the rate, visibly); when each was sent, by key.
 */
async function writeAtRate(agent: Agent, url: string, prefix: string, count: number) {
  const sent = new Map<string, number>();
  const pending = new Set<Promise<unknown>>();
  let failed = 0;
  const start = performance.now();
  for (let i = 0; i < count; i++) {
    const wait = start + (i * 1000) / WRITE_RATE - performance.now();
    if (wait > 1) await sleep(wait);
    while (pending.size >= MAX_IN_FLIGHT) await Promise.race(pending);
    const key = `${prefix}${i}`;
    sent.set(key, performance.now());
    const put: Promise<unknown> = send(agent, 'PUT', `${url}/v1/kv${key}`, 'v')
      .then((answer) => {
        if (answer.status !== 200) throw new Error(`PUT answered ${answer.status}`);
      })
      .catch(() => {
        failed++;
        sent.delete(key);
      })
      .finally(() => pending.delete(put));
    pending.add(put);
  }
  await Promise.all(pending);
  return { sent, failed, seconds: (performance.now() - start) / 1000 };
}

async function waitFor(done: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!done() && performance.now() < deadline) await sleep(10);
}

function row(operation: string, deliveries: number, seconds: number): Measurement {
  return {
    system: 'muster (file)',
    operation: `deliveries, ${operation}`,
    requests: deliveries,
    seconds,
    reqPerSec: deliveries / seconds,
    p50Ms: 0,
    p99Ms: 0,
    maxMs: 0,
    errors: 0,
    serverCpuPercent: null,
    machineBusyPercent: null,
  };
}
