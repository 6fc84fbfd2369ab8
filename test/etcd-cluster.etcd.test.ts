/**
 * EtcdBackend on a real 3-member etcd cluster: the leader is killed during a
 * stream of writes and later restarted. No acknowledged write may be lost, writes
 * must go on while a member is down, a watch must see every write in order across
 * the failure, and the restarted member must rejoin and serve the latest state.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { EtcdBackend } from '../src/backends/etcd/index.js';
import type { WatchEvent } from '../src/core/backend.js';
import { MusterError } from '../src/core/errors.js';
import { eventually } from './conformance/harness.js';
import { startEtcd, type EtcdCluster } from './support/etcd-server.js';

const WRITERS = 8;
const WRITES_BEFORE_KILL = 120;
const WRITES_WHILE_DOWN = 120;

interface Acked {
  readonly key: string;
  readonly value: string;
  readonly revision: number;
  /** When the write was acknowledged (ms). */
  readonly at: number;
}

/**
 * How long writes may stall when the etcd leader dies (the issue's target: 3 s).
 * The old code stalled 5 s: each call waited out its 5 s deadline; then, with
 * per-attempt deadlines, etcd3's circuit breaker set every member aside for 5 s
 * after the calls forwarded to the dead leader timed out. Now about 2 s: the calls
 * waiting on the dead leader end at their attempt deadline (2 s).
 */
const MAX_WRITE_GAP_MS = 3_000;
/**
 * muster's own part of the stall: from the moment a surviving member reports a new
 * leader to the first write acknowledged through muster after the pause. A call
 * stuck on the dead member gives up after its attempt timeout (2 s) and goes to a
 * live one; the rest is scheduling on a loaded machine.
 */
const MAX_RESUME_AFTER_ELECTION_MS = 2_500;

const text = (bytes: Uint8Array): string => new TextDecoder().decode(bytes);

describe('EtcdBackend on a 3-member etcd cluster', () => {
  let etcd: EtcdCluster;

  beforeAll(async () => {
    etcd = await startEtcd({ members: 3 });
  }, 60_000);

  afterAll(async () => {
    await etcd?.stop();
  });

  it('loses no acknowledged write when the leader is killed mid-stream, goes on writing, and the member rejoins', async () => {
    const prefix = `/muster-cluster-${randomBytes(4).toString('hex')}/`;
    const backend = await EtcdBackend.open({ endpoints: etcd.endpoints, prefix });
    // Set on every way out, so that the writers end even when an assertion fails.
    let stop = false;
    try {
      const start = (await backend.revision()) + 1;
      const watch = backend.watch('/stream/', { prefix: true, fromRevision: start });
      const seen: WatchEvent[] = [];
      let watchError: unknown;
      // Recorded, not thrown: when an assertion ends the test early, closing the
      // backend fails this loop, and that must not surface as an unhandled rejection.
      const watching = (async () => {
        for await (const batch of watch) seen.push(...batch.events);
      })().catch((error: unknown) => {
        watchError = error;
      });

      const acked: Acked[] = [];
      const failures: unknown[] = [];
      let next = 0;
      const writer = async (): Promise<void> => {
        while (!stop) {
          const i = next++;
          const key = `/stream/k${String(i).padStart(5, '0')}`;
          const value = `v${i}`;
          try {
            const { revision } = await backend.put(key, new TextEncoder().encode(value));
            acked.push({ key, value, revision, at: Date.now() });
          } catch (error) {
            // An unacknowledged write may or may not have landed; only acked ones are checked.
            // Every failure must be one of muster's typed errors, never a raw gRPC one.
            failures.push(error);
            await new Promise((resolve) => setTimeout(resolve, 20));
          }
        }
      };
      const writers = Array.from({ length: WRITERS }, () => writer());

      await eventually(() => expect(acked.length).toBeGreaterThanOrEqual(WRITES_BEFORE_KILL), 30_000);
      const victim = await etcd.leaderIndex();
      const killedAt = Date.now();
      await etcd.kill(victim);
      const ackedAtKill = acked.length;
      // When etcd itself has a leader again, as a surviving member tells it.
      let electedAt: number | undefined;
      const electing = (async () => {
        while (electedAt === undefined && !stop) {
          try {
            await etcd.leaderIndex();
            electedAt = Date.now();
          } catch {
            await new Promise((resolve) => setTimeout(resolve, 25));
          }
        }
      })();

      await eventually(() => expect(acked.length).toBeGreaterThanOrEqual(ackedAtKill + WRITES_WHILE_DOWN), 30_000);
      expect(etcd.isRunning(victim)).toBe(false);
      // How long writes stalled around the loss of the leader: the longest pause between
      // two acknowledgements from just before the kill until writing went on.
      const times = [killedAt, ...acked.slice(ackedAtKill).map((a) => a.at)].sort((x, y) => x - y);
      const gaps = times.slice(1).map((t, i) => t - (times[i] as number));
      const gap = Math.max(...gaps);
      const resumedAt = times[gaps.indexOf(gap) + 1] as number;
      await electing;
      if (electedAt === undefined) throw new Error('no new etcd leader was seen');
      const ownPart = Math.max(0, resumedAt - electedAt);
      console.log(
        `etcd leader killed: writes through muster paused for at most ${gap} ms; etcd had a new leader after ` +
          `${electedAt - killedAt} ms, writes through muster went on ${ownPart} ms after that`,
      );
      expect(gap).toBeLessThan(MAX_WRITE_GAP_MS);
      expect(ownPart).toBeLessThan(MAX_RESUME_AFTER_ELECTION_MS);

      await etcd.restart(victim);
      const ackedAtRestart = acked.length;
      await eventually(() => expect(acked.length).toBeGreaterThanOrEqual(ackedAtRestart + 40), 30_000);
      stop = true;
      await Promise.all(writers);

      expect(failures.every((f) => f instanceof MusterError && f.code === 'unavailable')).toBe(true);

      // Every acknowledged write is there, with its value, at the revision it was acknowledged at.
      const stored = await backend.range({ key: '/stream/', prefix: true });
      const byKey = new Map(stored.kvs.map((kv) => [kv.key, kv]));
      const missing = acked.filter((a) => {
        const kv = byKey.get(a.key);
        return !kv || text(kv.value) !== a.value || kv.modRevision !== a.revision;
      });
      expect(missing).toEqual([]);

      // The watch saw every acknowledged write, in revision order, none twice.
      const last = Math.max(...acked.map((a) => a.revision));
      await eventually(() => expect(seen.at(-1)?.revision ?? 0).toBeGreaterThanOrEqual(last), 15_000);
      const revisions = seen.map((e) => e.revision);
      expect(revisions).toEqual([...revisions].sort((x, y) => x - y));
      expect(new Set(revisions).size).toBe(revisions.length);
      const watched = new Set(seen.map((e) => `${e.kv.key}@${e.revision}`));
      expect(acked.filter((a) => !watched.has(`${a.key}@${a.revision}`))).toEqual([]);
      watch.close();
      await watching;
      expect(watchError).toBeUndefined();

      // The restarted member has rejoined: through it alone, a linearizable read sees the latest write.
      const throughVictim = await EtcdBackend.open({ endpoints: [etcd.clientUrls[victim] ?? ''], prefix });
      try {
        const viaVictim = await throughVictim.range({ key: '/stream/', prefix: true, keysOnly: true });
        expect(viaVictim.revision).toBeGreaterThanOrEqual(last);
        expect(viaVictim.count).toBe(stored.count);
        await throughVictim.put('/stream/after-rejoin', new TextEncoder().encode('ok'));
        expect(text((await backend.get('/stream/after-rejoin'))?.value ?? new Uint8Array())).toBe('ok');
      } finally {
        await throughVictim.close();
      }
    } finally {
      stop = true;
      await backend.close();
    }
  }, 120_000);
});
