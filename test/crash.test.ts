/**
 * The crash test of issue 2: a real `muster server` process on the SQLite store
 * takes a stream of writes from several concurrent clients and is killed with
 * SIGKILL at a random moment, then restarted on the same data folder. Every write
 * that got a 2xx must still be there with its value and its modRevision, the
 * store's revision must not go back, and writes go on after the restart.
 *
 * Runs the built server (`dist/`, made by `npm run build`, which `npm test` runs
 * first). A failure prints the seed; `CRASH_SEED=<seed>` replays the same kill
 * moments and values.
 */
import { seededRandom } from '../src/core/runtime.js';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { WireKeyValue, WirePutResponse, WireRangeResponse } from '../src/api/wire.js';
import type { ServerProcess } from './cli/cli-harness.js';
import { assertBuilt, startServerProcess, TEST_ADMIN_TOKEN } from './cli/cli-harness.js';

const WRITERS = 8;
const KILL_CYCLES = 6;
/** The kill lands this long after the cycle's writes start (and never before the first acknowledgement). */
const KILL_WINDOW_MS = { min: 100, max: 800 } as const;
/** Every key of the test lives under this prefix, so one range read sees them all. */
const PREFIX = '/crash/';
const REQUEST_TIMEOUT_MS = 10_000;
/** Single-key reads (GET ?meta=true) run this many at a time. */
const READ_CONCURRENCY = 8;

const SEED = process.env['CRASH_SEED'] !== undefined ? Number(process.env['CRASH_SEED']) : Date.now() % 2 ** 31;

/** A write the server answered with a 2xx. */
interface Ack {
  readonly key: string;
  readonly value: string;
  readonly revision: number;
}

/** Every server started here, so that afterAll can kill what a failure left running. */
const servers = new Set<ServerProcess>();

/** Start `muster server` on `dataDir` on a free 127.0.0.1 port; resolves once /healthz answers 200. */
async function startServer(dataDir: string): Promise<ServerProcess> {
  const server = await startServerProcess(['--data-dir', dataDir]);
  servers.add(server);
  void server.cli.exited.then(() => servers.delete(server));
  const health = await fetch(`${server.url}/healthz`, { signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) });
  if (health.status !== 200) throw new Error(`/healthz answered ${health.status} after start:\n${output(server)}`);
  return server;
}

/** What the server printed, for failure messages. */
function output(server: ServerProcess): string {
  return server.cli.stdout + server.cli.stderr;
}

/** SIGKILL: no graceful stop, no flush beyond what each commit already did. */
async function killHard(server: ServerProcess): Promise<void> {
  await server.cli.stop('SIGKILL');
  expect(server.cli.child.signalCode, 'the server died of the SIGKILL, not of something else').toBe('SIGKILL');
}

/** The state shared by the writers of one cycle. */
interface Cycle {
  readonly index: number;
  readonly url: string;
  /** Set just before the kill: from then on a failed request is the expected outcome. */
  killed: boolean;
  readonly acks: Ack[];
  /** Every value sent, acknowledged or not, by key: a key present after the crash must hold one of these. */
  readonly sent: Map<string, string>;
  /** PUTs sent in this cycle. */
  sentCount: number;
  /** Resolves at the cycle's first acknowledgement. */
  readonly firstAck: Promise<void>;
  readonly onAck: () => void;
}

function newCycle(index: number, url: string, sent: Map<string, string>): Cycle {
  let onAck = (): void => undefined;
  const firstAck = new Promise<void>((resolveAck) => {
    onAck = resolveAck;
  });
  return { index, url, killed: false, acks: [], sent, sentCount: 0, firstAck, onAck };
}

/**
 * One client: PUT to a fresh key after another until the server is killed. Each key
 * is written once, so a key's value and modRevision after the crash belong to exactly
 * one write. A failure before the kill fails the test.
 */
async function writer(cycle: Cycle, id: number, random: () => number): Promise<void> {
  for (let seq = 0; !cycle.killed; seq++) {
    const key = `${PREFIX}c${cycle.index}/w${id}/${seq}`;
    const value = `c${cycle.index}.w${id}.s${seq}.${random().toString(36).slice(2)}`.padEnd(64, '.');
    cycle.sent.set(key, value);
    cycle.sentCount += 1;
    let response: Response;
    let body: WirePutResponse;
    try {
      response = await fetch(`${cycle.url}/v1/kv${key}`, {
        method: 'PUT',
        body: value,
        headers: { 'content-type': 'application/octet-stream', authorization: `Bearer ${TEST_ADMIN_TOKEN}` },
        signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
      });
      body = (await response.json()) as WirePutResponse;
    } catch (error) {
      // Cut by the kill: this write may or may not have been committed, and either is allowed.
      if (cycle.killed) return;
      throw new Error(`PUT ${key} failed before the kill`, { cause: error });
    }
    if (response.status < 200 || response.status > 299) {
      throw new Error(`PUT ${key} answered ${response.status}: ${JSON.stringify(body)}`);
    }
    expect(body).toMatchObject({ key, modRevision: body.revision, createRevision: body.revision, version: 1 });
    cycle.acks.push({ key, value, revision: body.modRevision });
    cycle.onAck();
  }
}

/** Everything under PREFIX in one read, with the store's revision. */
async function readAll(url: string): Promise<WireRangeResponse> {
  const response = await fetch(`${url}/v1/kv${PREFIX}?prefix=true`, {
    headers: { authorization: `Bearer ${TEST_ADMIN_TOKEN}` },
    signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
  });
  expect(response.status).toBe(200);
  return (await response.json()) as WireRangeResponse;
}

/** GET ?meta=true of one key. */
async function readOne(
  url: string,
  key: string,
): Promise<{ status: number; kv: (WireKeyValue & { revision: number }) | null }> {
  const response = await fetch(`${url}/v1/kv${key}?meta=true`, {
    headers: { authorization: `Bearer ${TEST_ADMIN_TOKEN}` },
    signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
  });
  if (response.status !== 200) return { status: response.status, kv: null };
  return { status: 200, kv: (await response.json()) as WireKeyValue & { revision: number } };
}

/** Run `task` over `items`, `limit` at a time. */
async function forEachLimited<T>(items: readonly T[], limit: number, task: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const lanes = Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) {
      const item = items[next++] as T;
      await task(item);
    }
  });
  await Promise.all(lanes);
}

/**
 * After a restart: every acknowledged write is there with its value and revisions,
 * nothing under the prefix holds a value that was never sent, and the store's
 * revision is at least the highest acknowledged one. Returns the store's revision.
 */
async function verify(
  url: string,
  allAcks: readonly Ack[],
  latestAcks: readonly Ack[],
  sent: ReadonlyMap<string, string>,
): Promise<number> {
  const range = await readAll(url);
  expect(range.more).toBe(false);
  const stored = new Map(range.kvs.map((kv) => [kv.key, kv]));
  const missing: string[] = [];
  for (const ack of allAcks) {
    const kv = stored.get(ack.key);
    if (!kv) {
      missing.push(`${ack.key} (revision ${ack.revision})`);
      continue;
    }
    expect(kv.encoding, ack.key).toBeUndefined();
    expect({
      key: kv.key,
      value: kv.value,
      modRevision: kv.modRevision,
      createRevision: kv.createRevision,
      version: kv.version,
    }).toEqual({
      key: ack.key,
      value: ack.value,
      modRevision: ack.revision,
      createRevision: ack.revision,
      version: 1,
    });
  }
  expect(missing, `acknowledged writes lost in the crash (seed ${SEED})`).toEqual([]);
  // Writes that were in flight at the kill may have landed, but only as sent.
  for (const kv of range.kvs) expect(kv.value, `${kv.key} holds a value never sent`).toBe(sent.get(kv.key));

  const highest = allAcks.reduce((max, ack) => Math.max(max, ack.revision), 0);
  expect(range.revision, 'the store revision went back below an acknowledged write').toBeGreaterThanOrEqual(highest);

  // The single-key route too, for the writes of the cycle just killed (the ones most at risk).
  await forEachLimited(latestAcks, READ_CONCURRENCY, async (ack) => {
    const { status, kv } = await readOne(url, ack.key);
    expect(status, `GET ${ack.key}?meta=true`).toBe(200);
    expect({ value: kv?.value, modRevision: kv?.modRevision }).toEqual({ value: ack.value, modRevision: ack.revision });
    expect(kv?.revision).toBeGreaterThanOrEqual(highest);
  });
  return range.revision;
}

describe('muster server survives SIGKILL (SQLite file store)', () => {
  let dataRoot = '';

  beforeAll(async () => {
    assertBuilt();
    dataRoot = await mkdtemp(join(tmpdir(), 'muster-crash-'));
  });

  afterAll(async () => {
    // Whatever a failure left running dies here, before its data folder is removed.
    await Promise.all([...servers].map((server) => server.cli.stop('SIGKILL')));
    if (dataRoot !== '') await rm(dataRoot, { recursive: true, force: true });
  });

  it(`keeps every acknowledged write across ${KILL_CYCLES} kill cycles`, { timeout: 60_000 }, async () => {
    const random = seededRandom(SEED);
    const dataDir = join(dataRoot, 'data');
    const sent = new Map<string, string>();
    const allAcks: Ack[] = [];
    let storeRevision = 0;
    let server = await startServer(dataDir);
    const log: string[] = [];
    try {
      for (let index = 0; index < KILL_CYCLES; index++) {
        const cycle = newCycle(index, server.url, sent);
        const killAfter = KILL_WINDOW_MS.min + Math.floor(random() * (KILL_WINDOW_MS.max - KILL_WINDOW_MS.min));
        // Writers end only after the kill, or by failing: a failure ends the race at once.
        const writers = Promise.all(Array.from({ length: WRITERS }, (_, id) => writer(cycle, id, random)));
        await Promise.race([Promise.all([delay(killAfter), cycle.firstAck]), writers]);
        cycle.killed = true;
        await killHard(server);
        await writers;
        const inFlight = cycle.sentCount - cycle.acks.length;

        expect(cycle.acks.length, 'writes acknowledged in this cycle').toBeGreaterThan(0);
        // Writes go on after a restart with revisions above everything seen before it.
        const firstRevision = Math.min(...cycle.acks.map((ack) => ack.revision));
        expect(firstRevision, 'a revision was reused after a restart').toBeGreaterThan(storeRevision);
        allAcks.push(...cycle.acks);

        server = await startServer(dataDir);
        storeRevision = await verify(server.url, allAcks, cycle.acks, sent);
        log.push(
          `cycle ${index}: killed at ${killAfter} ms, ${cycle.acks.length} acknowledged, ${inFlight} in flight, store at revision ${storeRevision}`,
        );
      }
      // The last restart takes writes too.
      const response = await fetch(`${server.url}/v1/kv${PREFIX}after-the-last-crash`, {
        method: 'PUT',
        body: 'ok',
        headers: { authorization: `Bearer ${TEST_ADMIN_TOKEN}` },
      });
      expect(response.status).toBe(200);
      expect(((await response.json()) as WirePutResponse).revision).toBeGreaterThan(storeRevision);
    } catch (error) {
      throw new Error(
        `crash test failed (replay with CRASH_SEED=${SEED}); so far:\n${log.join('\n')}\nserver output:\n${output(server)}`,
        {
          cause: error,
        },
      );
    }
    await killHard(server);
    if (process.env['CRASH_VERBOSE'] !== undefined) console.info(`seed ${SEED}\n${log.join('\n')}`);
  });
});
