/**
 * Issue 2's performance section: muster on its file store, muster in memory, and a
 * single-member etcd, one after another, each under the same load (wrk, 16-byte keys
 * drawn uniformly from a 10k keyspace, 256-byte values): a put run, then, with every
 * key present, a get run (etcd: range on its JSON gateway).
 */
import { join } from 'node:path';
import { startEtcd } from '../test/support/etcd-server.js';
import { startMuster } from './muster-process.js';
import { findPid, machineBusyPercent, processCpuPercent, sampleCpu } from './process-stats.js';
import type { BenchSettings, Measurement, Ratio, Scenario, ScenarioResult } from './scenario.js';
import { ETCD_REQUIREMENT, oneAfterAnother, ratio } from './scenario.js';
import type { WrkResult } from './wrk.js';
import { errorCount, runWrk, WRK_INSTALL_HINT } from './wrk.js';

const KEYSPACE = 10_000;
const VALUE_BYTES = 256;
/** Keys are 16 bytes: "/bench/k" and 8 digits, as bench/wrk/kv.lua writes them. */
const KEY_PREFIX = '/bench/';
const keyAt = (i: number): string => `${KEY_PREFIX}k${String(i).padStart(8, '0')}`;
/**
 * Filling the keyspace before the get run: transactions of POPULATE_BATCH puts (within
 * both systems' limit of 128 operations), a few at a time. Not measured.
 */
const POPULATE_BATCH = 100;
const POPULATE_CONCURRENCY = 4;

const SYSTEM = {
  durable: 'muster (file)',
  memory: 'muster (memory)',
  etcd: 'etcd',
  onEtcd: 'muster (on etcd)',
} as const;

/** A system under test while it runs. */
export interface Running {
  readonly url: string;
  /** The server process, for CPU accounting; null if it could not be found. */
  readonly pid: number | null;
  /** Write every key of the keyspace once. */
  populate(value: Uint8Array): Promise<void>;
  /** How many keys of the keyspace exist. */
  countKeys(): Promise<number>;
  /** The token wrk sends, or null (etcd, and muster without auth). */
  readonly token: string | null;
  stop(): Promise<void>;
}

export interface System {
  readonly label: string;
  /** The `system` argument of bench/wrk/kv.lua. */
  readonly protocol: 'muster' | 'etcd';
  /** What a single-key read is called on this system. */
  readonly readOperation: 'get' | 'range';
  start(): Promise<Running>;
}

export const kvThroughput: Scenario = {
  name: 'kv',
  title: 'kv throughput: muster (file, memory, on etcd) vs etcd, put and get, 16 B keys over 10k, 256 B values',
  requires: [{ binary: 'wrk', installHint: WRK_INSTALL_HINT }, ETCD_REQUIREMENT],
  run: runKvThroughput,
};

async function runKvThroughput(settings: BenchSettings, log: (line: string) => void): Promise<ScenarioResult> {
  const { measurements, notes } = await oneAfterAnother(
    (scratch) => [
      musterSystem(SYSTEM.durable, join(scratch, 'muster-data')),
      musterSystem(SYSTEM.memory, ':memory:'),
      etcdSystem(),
      musterOnEtcdSystem(join(scratch, 'unused')),
    ],
    (system, notes) => measureSystem(system, settings, log, notes),
  );
  const load =
    `${settings.seconds} s per run after ${settings.warmupSeconds} s of warm-up, ${settings.connections} connections, ` +
    `${settings.threads} wrk thread(s)`;
  return { load, measurements, ratios: ratios(measurements), notes };
}

async function measureSystem(
  system: System,
  settings: BenchSettings,
  log: (line: string) => void,
  notes: string[],
): Promise<Measurement[]> {
  log(`${system.label}: starting`);
  const running = await system.start();
  try {
    const measure = (op: 'put' | 'get', operation: string) =>
      measureRun(system, running, op, operation, settings.seconds, settings, notes);
    if (settings.warmupSeconds > 0) {
      log(`${system.label}: warm-up put, ${settings.warmupSeconds} s (not recorded)`);
      await driveWrk(system, running, 'put', settings.warmupSeconds, settings);
    }
    const put = await measure('put', 'put');
    log(`${system.label} put: ${Math.round(put.reqPerSec)} req/s, p99 ${put.p99Ms} ms`);
    // Every read must find its key: fill the keyspace and check it before the get run.
    await populateAndCheck(system, running);
    const get = await measure('get', system.readOperation);
    log(`${system.label} ${get.operation}: ${Math.round(get.reqPerSec)} req/s, p99 ${get.p99Ms} ms`);
    return [put, get];
  } finally {
    await running.stop();
  }
}

/** Drive `running` with wrk for `seconds`: puts or gets of the keyspace. */
export function driveWrk(
  system: System,
  running: Running,
  op: 'put' | 'get',
  seconds: number,
  settings: BenchSettings,
): Promise<WrkResult> {
  return runWrk({
    url: running.url,
    script: 'kv.lua',
    scriptArgs: [system.protocol, op, String(KEYSPACE), String(VALUE_BYTES), running.token ?? '-'],
    seconds,
    connections: settings.connections,
    threads: settings.threads,
  });
}

/** One measured wrk run of `running`, with the server's CPU over it; failed requests go to `notes`. */
export async function measureRun(
  system: System,
  running: Running,
  op: 'put' | 'get',
  operation: string,
  seconds: number,
  settings: BenchSettings,
  notes: string[],
): Promise<Measurement> {
  const before = sampleCpu(running.pid);
  const result = await driveWrk(system, running, op, seconds, settings);
  const after = sampleCpu(running.pid);
  const errors = errorCount(result);
  if (errors > 0)
    notes.push(`${system.label} ${operation}: ${errors} failed requests ${JSON.stringify(result.errors)}`);
  return {
    system: system.label,
    operation,
    requests: result.requests,
    seconds: result.seconds,
    reqPerSec: result.requests / result.seconds,
    p50Ms: result.p50Ms,
    p99Ms: result.p99Ms,
    maxMs: result.maxMs,
    errors,
    serverCpuPercent: processCpuPercent(before, after),
    machineBusyPercent: machineBusyPercent(before, after),
  };
}

/** Fill the keyspace of `running` and check that every key is there. */
export async function populateAndCheck(system: System, running: Running): Promise<void> {
  await running.populate(benchValue());
  const count = await running.countKeys();
  if (count !== KEYSPACE) throw new Error(`${system.label}: ${count} keys after populating, expected ${KEYSPACE}`);
}

/** The ratios issues 2 and 4 set as targets (issue 8's are the auth scenario's). */
function ratios(measurements: readonly Measurement[]): Ratio[] {
  const find = (system: string, operation: string) => {
    const found = measurements.find((m) => m.system === system && m.operation === operation);
    if (!found) throw new Error(`no measurement of ${system} ${operation}`);
    return found;
  };
  const durablePut = find(SYSTEM.durable, 'put');
  const memoryPut = find(SYSTEM.memory, 'put');
  const etcdPut = find(SYSTEM.etcd, 'put');
  const durableGet = find(SYSTEM.durable, 'get');
  const etcdRange = find(SYSTEM.etcd, 'range');
  const onEtcdPut = find(SYSTEM.onEtcd, 'put');
  return [
    ratio('muster (file) put / etcd put, req/s', durablePut.reqPerSec / etcdPut.reqPerSec, 3.0, 'at-least'),
    ratio(
      'muster (file) put / muster (memory) put, req/s',
      durablePut.reqPerSec / memoryPut.reqPerSec,
      0.65,
      'at-least',
    ),
    ratio('muster (file) get / etcd range, req/s', durableGet.reqPerSec / etcdRange.reqPerSec, 2.0, 'at-least'),
    ratio('muster (file) put p99 / etcd put p99', durablePut.p99Ms / etcdPut.p99Ms, 1.0, 'at-most'),
    ratio('muster (on etcd) put / etcd put, req/s', onEtcdPut.reqPerSec / etcdPut.reqPerSec, 0.8, 'at-least'),
  ];
}

/** The value every put writes: VALUE_BYTES printable bytes (wrk's script makes its own of the same size). */
function benchValue(): Uint8Array {
  return Buffer.alloc(VALUE_BYTES, 'muster-bench-value/');
}

/**
 * muster in front of a single-member etcd (`muster server --etcd URL`): what
 * muster's layer costs over etcd's own gateway. Both processes share the machine,
 * as etcd and its gateway (one process) do.
 */
function musterOnEtcdSystem(dataDir: string): System {
  const system = musterSystem(SYSTEM.onEtcd, dataDir);
  return {
    ...system,
    async start() {
      const cluster = await startEtcd({ members: 1 });
      try {
        const url = cluster.clientUrls[0];
        if (url === undefined) throw new Error('etcd started without a client URL');
        const running = await musterSystem(SYSTEM.onEtcd, dataDir, ['--etcd', url]).start();
        return {
          ...running,
          async stop() {
            await running.stop();
            await cluster.stop();
          },
        };
      } catch (error) {
        await cluster.stop();
        throw error;
      }
    },
  };
}

export function musterSystem(label: string, dataDir: string, extraArgs: readonly string[] = [], auth = true): System {
  return {
    label,
    protocol: 'muster',
    readOperation: 'get',
    async start() {
      const server = await startMuster(dataDir, extraArgs, { auth });
      return {
        url: server.url,
        pid: server.pid,
        token: server.token,
        populate: (value) =>
          forEachBatch(async (keys) => {
            const success = keys.map((key) => ({
              type: 'put',
              key,
              value: Buffer.from(value).toString('base64'),
              encoding: 'base64',
            }));
            const response = await fetch(`${server.url}/v1/txn`, {
              method: 'POST',
              body: JSON.stringify({ success }),
              headers: { 'content-type': 'application/json', ...server.headers },
            });
            await expectOk(response, 'POST /v1/txn');
          }),
        async countKeys() {
          const response = await fetch(`${server.url}/v1/kv${KEY_PREFIX}?prefix=true&limit=1&keysOnly=true`, {
            headers: server.headers,
          });
          await expectOk(response.clone(), `GET ${KEY_PREFIX}?prefix=true`);
          return ((await response.json()) as { count: number }).count;
        },
        stop: () => server.stop(),
      };
    },
  };
}

function etcdSystem(): System {
  const b64 = (text: string) => Buffer.from(text).toString('base64');
  return {
    label: SYSTEM.etcd,
    protocol: 'etcd',
    readOperation: 'range',
    async start() {
      const cluster = await startEtcd({ members: 1 });
      const url = cluster.clientUrls[0];
      if (url === undefined) throw new Error('etcd started without a client URL');
      const post = async (path: string, body: object) => {
        const response = await fetch(`${url}${path}`, {
          method: 'POST',
          body: JSON.stringify(body),
          headers: { 'content-type': 'application/json' },
        });
        await expectOk(response.clone(), `POST ${path}`);
        return response.json() as Promise<Record<string, unknown>>;
      };
      return {
        url,
        pid: findPid(`--listen-client-urls=${url}`),
        token: null,
        populate: (value) =>
          forEachBatch(async (keys) => {
            const success = keys.map((key) => ({
              request_put: { key: b64(key), value: Buffer.from(value).toString('base64') },
            }));
            await post('/v3/kv/txn', { success });
          }),
        async countKeys() {
          // range_end is the prefix with its last byte incremented: every key under it.
          const end = KEY_PREFIX.slice(0, -1) + String.fromCharCode(KEY_PREFIX.charCodeAt(KEY_PREFIX.length - 1) + 1);
          const body = await post('/v3/kv/range', { key: b64(KEY_PREFIX), range_end: b64(end), count_only: true });
          // The gateway writes int64 as a string, and leaves out zero values.
          return Number(body['count'] ?? 0);
        },
        stop: () => cluster.stop(),
      };
    },
  };
}

/** Call `write` with every key of the keyspace, POPULATE_BATCH keys per call, POPULATE_CONCURRENCY calls at a time. */
async function forEachBatch(write: (keys: string[]) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: POPULATE_CONCURRENCY }, async () => {
      while (next < KEYSPACE) {
        const keys: string[] = [];
        while (keys.length < POPULATE_BATCH && next < KEYSPACE) keys.push(keyAt(next++));
        await write(keys);
      }
    }),
  );
}

async function expectOk(response: Response, what: string): Promise<void> {
  if (!response.ok) throw new Error(`${what} answered ${response.status}: ${await response.text()}`);
  await response.arrayBuffer();
}
