import { describe, expect, it } from 'vitest';
import type { Backend, KeyValue, LeaseId, TxnOp, WatchBatch, WatchEvent } from '../../src/core/backend.js';
import { FutureRevisionError, LeaseNotFoundError } from '../../src/core/errors.js';
import { seededRandom } from '../../src/core/runtime.js';
import type { MakeHarness } from './harness.js';
import { WatchRecorder, bytes, text, uniquePrefix } from './harness.js';

/** Clients writing at once, and what each of them does (bounded: 16 × 30 operations). */
const CLIENTS = 16;
const OPS_PER_CLIENT = 30;
const KEYS = 24;

/** A write the store acknowledged: it must be in the stream, exactly at its revision. */
interface AckedPut {
  readonly key: string;
  readonly value: string;
  readonly revision: number;
}

/**
 * The property that matters most to anyone building on the keyspace: what a watcher
 * sees is exactly what was committed. Many clients write at once (puts, deletes,
 * leases, txns that succeed, and txns that must be refused whole), a watcher
 * follows live, and at the end:
 * - no phantom: every put event is an acknowledged write, and no refused write
 *   shows up anywhere;
 * - none missed: every acknowledged put is in the live stream at its revision;
 * - no revision consumed by a refusal: the stream's revisions are exactly those
 *   between the start and the end, each whole in one batch;
 * - a replay from history equals the live stream;
 * - the state rebuilt from the events equals a range read.
 *
 * `MUSTER_CONCURRENT_SEED` replays a run; the seed is in every failure message.
 */
export function describeConcurrentWrites(name: string, make: MakeHarness, options: { progress: boolean }): void {
  describe(`What a watcher sees: ${name}`, () => {
    it('a watcher sees exactly what was committed: no phantom, none missed, replay equal, state equal', async () => {
      const seed = Number(process.env.MUSTER_CONCURRENT_SEED ?? Math.floor(Math.random() * 2 ** 31));
      const harness = await make();
      const b = harness.backend;
      try {
        await runProperty(b, seed);
      } finally {
        await harness.close();
      }
    }, 60_000);

    it.skipIf(!options.progress)(
      'a quiet watch answers requestProgress with a revision it has delivered everything up to, in order',
      async () => {
        const harness = await make();
        const b = harness.backend;
        try {
          const p = uniquePrefix();
          const watch = new WatchRecorder(
            b.watch(`${p}quiet/`, { prefix: true, fromRevision: (await b.revision()) + 1 }),
          );
          const put = await b.put(`${p}quiet/a`, bytes('1'));
          for (let i = 0; i < 5; i++) await b.put(`${p}loud/${i}`, bytes('x'));
          const now = await b.revision();
          // A watch may let a request pass while it is still catching up: ask until answered.
          const deadline = Date.now() + 10_000;
          while (!live(watch).some((batch) => (batch.progress ?? 0) >= now)) {
            if (Date.now() > deadline) throw new Error(`no progress mark reached ${now}`);
            watch.watch.requestProgress();
            await new Promise((resolve) => setTimeout(resolve, 50));
          }
          const batches = live(watch);
          const eventAt = batches.findIndex((batch) => batch.events.some((e) => e.revision === put.revision));
          const markAt = batches.findIndex((batch) => (batch.progress ?? 0) >= put.revision);
          expect(eventAt).toBeGreaterThanOrEqual(0);
          expect(markAt).toBeGreaterThan(eventAt);
          expect(batches.every((batch) => batch.progress === undefined || batch.events.length === 0)).toBe(true);
          watch.close();
        } finally {
          await harness.close();
        }
      },
    );
  });
}

function live(recorder: WatchRecorder): readonly WatchBatch[] {
  return recorder.batches;
}

async function runProperty(b: Backend, seed: number): Promise<void> {
  const where = `(seed ${seed}; MUSTER_CONCURRENT_SEED=${seed} replays it)`;
  const p = uniquePrefix();
  const keys = Array.from({ length: KEYS }, (_, i) => `${p}k${i}`);
  const leases: LeaseId[] = [];
  for (let i = 0; i < 3; i++) leases.push((await b.grantLease(60)).id);
  const missing = (await b.grantLease(60)).id;
  await b.revokeLease(missing);

  const start = (await b.revision()) + 1;
  const live = new WatchRecorder(b.watch(p, { prefix: true, fromRevision: start }));
  const acked: AckedPut[] = [];
  const refused = new Set<string>();
  let deletesAcked = 0;
  let unique = 0;

  const client = async (id: number): Promise<void> => {
    const random = seededRandom(seed + id * 7919);
    const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)] as T;
    for (let op = 0; op < OPS_PER_CLIENT; op++) {
      const value = `c${id}-${op}-${unique++}`;
      const roll = random();
      if (roll < 0.3) {
        const key = pick(keys);
        const lease = random() < 0.3 ? pick(leases) : undefined;
        const result = await b.put(key, bytes(value), lease ? { lease } : {});
        acked.push({ key, value, revision: result.revision });
      } else if (roll < 0.4) {
        const result = await b.delete({ key: pick(keys) });
        if (result.deleted > 0) deletesAcked++;
      } else if (roll < 0.6) {
        // Two puts under a compare that may or may not hold.
        const guard = pick(keys);
        const current = await b.get(guard);
        const [k1, k2] = [pick(keys), pick(keys)];
        const success: TxnOp[] = [{ type: 'put', key: k1, value: bytes(`${value}a`) }];
        if (k2 !== k1) success.push({ type: 'put', key: k2, value: bytes(`${value}b`) });
        const result = await b.txn({
          compare: [{ key: guard, target: 'modRevision', op: '=', value: current?.modRevision ?? 0 }],
          success,
          failure: [],
        });
        if (result.succeeded) {
          for (const put of success) {
            if (put.type === 'put') acked.push({ key: put.key, value: text(put.value), revision: result.revision });
          }
        }
      } else if (roll < 0.8) {
        // Refused whole: its first put is valid, its last one names a lease that is gone.
        const [k1, k2] = [pick(keys), pick(keys)];
        refused.add(`${value}x`);
        refused.add(`${value}y`);
        const ops: TxnOp[] = [{ type: 'put', key: k1, value: bytes(`${value}x`) }];
        if (k2 !== k1) ops.push({ type: 'delete', key: k2 });
        ops.push({ type: 'put', key: `${p}orphan`, value: bytes(`${value}y`), lease: missing });
        await expect(b.txn({ compare: [], success: ops, failure: [] }), where).rejects.toBeInstanceOf(
          LeaseNotFoundError,
        );
      } else if (roll < 0.9) {
        // Refused whole: a put, then a read of a revision that has not happened.
        refused.add(`${value}z`);
        await expect(
          b.txn({
            compare: [],
            success: [
              { type: 'put', key: pick(keys), value: bytes(`${value}z`) },
              { type: 'get', key: pick(keys), revision: 1_000_000_000 },
            ],
            failure: [],
          }),
          where,
        ).rejects.toBeInstanceOf(FutureRevisionError);
      } else {
        refused.add(`${value}w`);
        await expect(b.put(pick(keys), bytes(`${value}w`), { lease: missing }), where).rejects.toBeInstanceOf(
          LeaseNotFoundError,
        );
      }
    }
  };
  await Promise.all(Array.from({ length: CLIENTS }, (_, id) => client(id)));
  // A lease revoked at the end deletes its keys at one revision, seen like any delete.
  await b.revokeLease(leases[0] as LeaseId);
  const end = await b.revision();
  for (const lease of leases.slice(1)) await b.revokeLease(lease);
  const final = await b.revision();

  // The live stream up to `final` (everything from start to final touches the prefix).
  await waitFor(() => lastRevision(live) >= final || live.ended, where);
  live.close();
  expect(live.error, `the live watch failed ${where}`).toBeUndefined();
  const seen = live.events;
  expect(seen.length, where).toBeGreaterThan(0);

  // No phantom: every put event is an acknowledged write at its revision.
  const ackedAt = new Map(acked.map((a) => [`${a.key}\u0000${a.value}`, a.revision]));
  for (const event of seen) {
    const value = text(event.kv.value);
    expect(refused.has(value), `refused write ${value} reached the watcher at ${event.revision} ${where}`).toBe(false);
    if (event.type === 'put') {
      expect(ackedAt.get(`${event.kv.key}\u0000${value}`), `phantom put ${event.kv.key}=${value} ${where}`).toBe(
        event.revision,
      );
    }
  }
  // None missed.
  const seenPuts = new Set(seen.filter((e) => e.type === 'put').map((e) => `${e.kv.key}\u0000${text(e.kv.value)}`));
  for (const a of acked) {
    expect(seenPuts.has(`${a.key}\u0000${a.value}`), `missed ${a.key}=${a.value}@${a.revision} ${where}`).toBe(true);
  }
  expect(seen.filter((e) => e.type === 'delete').length, where).toBeGreaterThanOrEqual(deletesAcked);

  // Every revision from start to final, in order, none skipped (a refusal consumes none),
  // each revision whole in one batch.
  const revisions = [...new Set(seen.map((e) => e.revision))];
  expect(revisions, `revisions of the stream ${where}`).toEqual(
    Array.from({ length: final - start + 1 }, (_, i) => start + i),
  );
  const batchOf = new Map<number, number>();
  live.batches.forEach((batch, i) => {
    for (const event of batch.events) {
      const before = batchOf.get(event.revision);
      expect(before === undefined || before === i, `revision ${event.revision} split across batches ${where}`).toBe(
        true,
      );
      batchOf.set(event.revision, i);
    }
  });

  // A replay from history is the live stream.
  const replay = new WatchRecorder(b.watch(p, { prefix: true, fromRevision: start }));
  await waitFor(() => lastRevision(replay) >= final || replay.ended, where);
  replay.close();
  expect(replay.events.map(comparable), `replay differs from the live stream ${where}`).toEqual(seen.map(comparable));

  // The state the events build is what a range read finds (at `end`, before the last revokes, and now).
  expect(stateFrom(seen.filter((e) => e.revision <= end)), `state at ${end} ${where}`).toEqual(
    stateOf((await b.range({ key: p, prefix: true, revision: end })).kvs),
  );
  expect(stateFrom(seen), `state now ${where}`).toEqual(stateOf((await b.range({ key: p, prefix: true })).kvs));
}

function lastRevision(recorder: WatchRecorder): number {
  return recorder.events.at(-1)?.revision ?? 0;
}

async function waitFor(condition: () => boolean, where: string, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for the watch ${where}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

function comparable(event: WatchEvent): unknown {
  const { kv } = event;
  return [event.type, event.revision, kv.key, text(kv.value), kv.createRevision, kv.modRevision, kv.version, kv.lease];
}

function stateFrom(events: readonly WatchEvent[]): Record<string, unknown> {
  const state = new Map<string, KeyValue>();
  for (const event of events) {
    if (event.type === 'put') state.set(event.kv.key, event.kv);
    else state.delete(event.kv.key);
  }
  return stateOf([...state.values()]);
}

function stateOf(kvs: readonly KeyValue[]): Record<string, unknown> {
  return Object.fromEntries(
    [...kvs]
      .sort((x, y) => (x.key < y.key ? -1 : 1))
      .map((kv) => [kv.key, [text(kv.value), kv.createRevision, kv.modRevision, kv.version, kv.lease]]),
  );
}
