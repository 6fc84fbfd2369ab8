import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Backend, LeaseId } from '../../src/core/backend.js';
import { systemClock } from '../../src/core/clock.js';
import {
  CancelledError,
  InvalidArgumentError,
  LeaseNotFoundError,
  LimitMismatchError,
  NotHolderError,
  TimeoutError,
} from '../../src/core/errors.js';
import {
  acquireLock,
  acquireSemaphore,
  barrierStatus,
  beginOnce,
  campaign,
  completeOnce,
  enterBarrier,
  layout,
  leader,
  leaveBarrier,
  lockStatus,
  matchesCondition,
  observe,
  onceStatus,
  proclaim,
  releaseLock,
  releaseSemaphore,
  resetBarrier,
  resetOnce,
  resign,
  semaphoreStatus,
  waitFor,
} from '../../src/primitives/index.js';
import type { Leader } from '../../src/primitives/index.js';
import type { BackendHarness, HarnessOptions, MakeHarness } from './harness.js';
import { eventually } from './harness.js';

const text = (s: string) => new TextEncoder().encode(s);
const str = (b: Uint8Array | undefined | null) => (b ? new TextDecoder().decode(b) : null);
const unique = (what: string) => `${what}-${Math.random().toString(36).slice(2, 10)}`;

/** Settles within a few event-loop turns? Used to show that a waiter is still blocked. */
async function isPending(promise: Promise<unknown>, ms = 150): Promise<boolean> {
  let settled = false;
  promise.then(
    () => (settled = true),
    () => (settled = true),
  );
  await new Promise((resolve) => setTimeout(resolve, ms));
  return !settled;
}

function aborter(reason: Error): { signal: AbortSignal; abort: () => void } {
  const controller = new AbortController();
  return { signal: controller.signal, abort: () => controller.abort(reason) };
}

/**
 * Behaviour of every coordination primitive, on any backend. Sessions are plain
 * leases here; a session "dies" when its lease is revoked or expires.
 */
export function describePrimitives(name: string, make: MakeHarness, options: HarnessOptions): void {
  describe(`primitives on ${name}`, () => {
    let harness: BackendHarness;
    let backend: Backend;
    const session = async (ttl = 60): Promise<LeaseId> => (await backend.grantLease(ttl)).id;

    beforeEach(async () => {
      harness = await make();
      backend = harness.backend;
    });
    afterEach(async () => {
      await harness.close();
    });

    describe('lock', () => {
      it('gives a free lock at once, with the holder key createRevision as fencing token', async () => {
        const lock = unique('lock');
        const s = await session();
        const handle = await acquireLock(backend, lock, s);
        const kv = await backend.get(handle.key);
        expect(handle.key).toBe(layout.lockWaiters(lock) + s);
        expect(handle.token).toBe(kv?.createRevision);
        expect((await lockStatus(backend, lock)).holder?.token).toBe(handle.token);
      });

      it('makes a second contender wait until the holder releases, then gives it a larger token', async () => {
        const lock = unique('lock');
        const [a, b] = [await session(), await session()];
        const first = await acquireLock(backend, lock, a);
        const second = acquireLock(backend, lock, b);
        expect(await isPending(second)).toBe(true);
        expect((await lockStatus(backend, lock)).waiting).toBe(1);
        await releaseLock(backend, first);
        const got = await second;
        expect(got.token).toBeGreaterThan(first.token);
      });

      it('hands the lock over in arrival order', async () => {
        const lock = unique('lock');
        const sessions = await Promise.all(Array.from({ length: 6 }, () => session()));
        const holder = await acquireLock(backend, lock, sessions[0] as string);
        const order: number[] = [];
        const waiters: Promise<void>[] = [];
        for (let i = 1; i < sessions.length; i++) {
          waiters.push(
            acquireLock(backend, lock, sessions[i] as string).then(async (h) => {
              order.push(i);
              await releaseLock(backend, h);
            }),
          );
          await eventually(async () => expect((await lockStatus(backend, lock)).waiting).toBe(i));
        }
        await releaseLock(backend, holder);
        await Promise.all(waiters);
        expect(order).toEqual([1, 2, 3, 4, 5]);
      });

      it("refuses to release, resign, proclaim or complete with another primitive's key, even with its token", async () => {
        const s = await session();
        const lock = await acquireLock(backend, unique('lock'), s);
        const other = unique('other');
        await expect(releaseLock(backend, { ...lock, name: other })).rejects.toBeInstanceOf(NotHolderError);
        await expect(releaseSemaphore(backend, { ...lock, name: other })).rejects.toBeInstanceOf(NotHolderError);
        await expect(resign(backend, { ...lock, election: other })).rejects.toBeInstanceOf(NotHolderError);
        await expect(proclaim(backend, { ...lock, election: other }, text('v'))).rejects.toBeInstanceOf(NotHolderError);
        await expect(
          completeOnce(backend, other, lock, { exitCode: 0, output: '', runner: 'x' }, systemClock),
        ).rejects.toBeInstanceOf(NotHolderError);
        expect((await lockStatus(backend, lock.name)).holder?.token).toBe(lock.token);
      });

      it('refuses a release with a stale token and keeps the newer holder', async () => {
        const lock = unique('lock');
        const s = await session();
        const first = await acquireLock(backend, lock, s);
        await releaseLock(backend, first);
        const again = await acquireLock(backend, lock, s);
        await expect(releaseLock(backend, first)).rejects.toBeInstanceOf(NotHolderError);
        expect((await lockStatus(backend, lock)).holder?.token).toBe(again.token);
      });

      it('passes the lock on when the holder session is revoked', async () => {
        const lock = unique('lock');
        const [a, b] = [await session(), await session()];
        await acquireLock(backend, lock, a);
        const next = acquireLock(backend, lock, b);
        await backend.revokeLease(a);
        expect((await next).lease).toBe(b);
      });

      it('passes the lock on when the holder session expires', async () => {
        const lock = unique('lock');
        const a = await session(options.minLeaseTtl);
        const b = await session(600);
        await acquireLock(backend, lock, a);
        const next = acquireLock(backend, lock, b);
        expect(await isPending(next, 50)).toBe(true);
        await harness.advance(options.minLeaseTtl * 1000 + 1500);
        expect((await next).lease).toBe(b);
      });

      it('lock-delay: nobody gets the lock for the delay after a holder with one is lost; a release costs nothing', async () => {
        const lock = unique('lock');
        const sessions = await Promise.all(Array.from({ length: 6 }, () => session()));
        const [a, b, c, d, e, f] = sessions as [LeaseId, LeaseId, LeaseId, LeaseId, LeaseId, LeaseId];
        const settledAt = (p: Promise<unknown>) => p.then(() => Date.now());
        // A holder with a delay that releases: the next holder takes over at once.
        const first = await acquireLock(backend, lock, a, { lockDelayMs: 60_000 });
        const second = acquireLock(backend, lock, b);
        expect(await isPending(second, 50)).toBe(true);
        await releaseLock(backend, first);
        const heldB = await second;
        expect((await backend.range({ key: layout.lockDelays(lock), prefix: true })).kvs).toEqual([]);
        // A plain holder that is lost: the next one takes over at once.
        const third = acquireLock(backend, lock, c);
        expect(await isPending(third, 50)).toBe(true);
        await backend.revokeLease(b);
        const heldC = await third;
        expect(heldC.token).toBeGreaterThan(heldB.token);
        // Two waiters behind a holder with a delay: when the holder is lost, the first
        // waiter waits the delay; the second does not pay it again after a release.
        const fourth = acquireLock(backend, lock, d, { lockDelayMs: 700 });
        expect(await isPending(fourth, 50)).toBe(true);
        await releaseLock(backend, heldC);
        const heldD = await fourth;
        const fifth = acquireLock(backend, lock, e);
        expect(await isPending(fifth, 50)).toBe(true);
        const sixth = acquireLock(backend, lock, f);
        expect(await isPending(sixth, 50)).toBe(true);
        const lostAt = Date.now();
        await backend.revokeLease(d);
        const fifthAt = settledAt(fifth);
        expect(await isPending(fifth, 300)).toBe(true);
        const heldE = await fifth;
        expect(heldE.token).toBeGreaterThan(heldD.token);
        expect((await fifthAt) - lostAt).toBeGreaterThanOrEqual(650);
        const releasedAt = Date.now();
        await releaseLock(backend, heldE);
        await sixth;
        // Not the delay a second time (700 ms): the record was cleared.
        expect(Date.now() - releasedAt).toBeLessThan(700);
        expect((await backend.range({ key: layout.lockDelays(lock), prefix: true })).kvs).toEqual([]);
      });

      it('lock-delay: a caller arriving after the loss waits what is left of the delay', async () => {
        const lock = unique('lock');
        const [a, b] = [await session(), await session()];
        const held = await acquireLock(backend, lock, a, { lockDelayMs: 800 });
        const lostAt = Date.now();
        await backend.revokeLease(a);
        await eventually(async () => expect((await lockStatus(backend, lock)).holder).toBeNull());
        expect(held.token).toBeGreaterThan(0);
        // Nobody waited when the holder was lost; this caller arrives to a free lock.
        const late = acquireLock(backend, lock, b);
        expect(await isPending(late, 300)).toBe(true);
        await late;
        expect(Date.now() - lostAt).toBeGreaterThanOrEqual(750);
      });

      it('lock-delay: a waiter that times out during the delay does not restart it for the next', async () => {
        const lock = unique('lock');
        const [a, b, c] = [await session(), await session(), await session()];
        await acquireLock(backend, lock, a, { lockDelayMs: 900 });
        const timeout = new AbortController();
        const second = acquireLock(backend, lock, b, { signal: timeout.signal });
        const third = acquireLock(backend, lock, c);
        expect(await isPending(third, 50)).toBe(true);
        const lostAt = Date.now();
        await backend.revokeLease(a);
        // Give up late in the delay: had that restarted it, the next would wait until ~1,550 ms.
        expect(await isPending(second, 650)).toBe(true);
        timeout.abort(new TimeoutError('lock timed out'));
        await expect(second).rejects.toBeInstanceOf(TimeoutError);
        await third;
        const waited = Date.now() - lostAt;
        expect(waited).toBeGreaterThanOrEqual(850);
        expect(waited).toBeLessThan(1_400);
      });

      it('lock-delay: refuses a delay that is negative, not finite or above 1h', async () => {
        const a = await session();
        for (const lockDelayMs of [-1, Number.POSITIVE_INFINITY, Number.NaN, 3_600_001]) {
          await expect(acquireLock(backend, unique('lock'), a, { lockDelayMs })).rejects.toBeInstanceOf(
            InvalidArgumentError,
          );
        }
      });

      it('lets a retry with the same session find its old place', async () => {
        const lock = unique('lock');
        const [a, b] = [await session(), await session()];
        const held = await acquireLock(backend, lock, a);
        const lost = aborter(new CancelledError('client went away'));
        const firstTry = acquireLock(backend, lock, b, { signal: lost.signal });
        await eventually(async () => expect((await lockStatus(backend, lock)).waiting).toBe(1));
        lost.abort();
        await expect(firstTry).rejects.toBeInstanceOf(CancelledError);
        expect((await lockStatus(backend, lock)).waiting).toBe(1);
        const retry = acquireLock(backend, lock, b);
        await releaseLock(backend, held);
        const got = await retry;
        const waiterKey = await backend.get(got.key);
        expect(got.token).toBe(waiterKey?.createRevision);
        expect(got.token).toBeLessThan((await backend.revision()) + 1);
      });

      it('gives up its place in the queue on a timeout', async () => {
        const lock = unique('lock');
        const [a, b] = [await session(), await session()];
        await acquireLock(backend, lock, a);
        const timeout = aborter(new TimeoutError('lock timed out'));
        const waiting = acquireLock(backend, lock, b, { signal: timeout.signal });
        await eventually(async () => expect((await lockStatus(backend, lock)).waiting).toBe(1));
        timeout.abort();
        await expect(waiting).rejects.toBeInstanceOf(TimeoutError);
        expect((await lockStatus(backend, lock)).waiting).toBe(0);
        expect(await backend.get(layout.lockWaiters(lock) + b)).toBeNull();
      });

      it('fails a waiter whose own session ends while it waits', async () => {
        const lock = unique('lock');
        const [a, b] = [await session(), await session()];
        await acquireLock(backend, lock, a);
        const waiting = acquireLock(backend, lock, b);
        await eventually(async () => expect((await lockStatus(backend, lock)).waiting).toBe(1));
        // Watched before the revoke: the waiter may fail before the revoke's answer arrives.
        const failed = expect(waiting).rejects.toBeInstanceOf(LeaseNotFoundError);
        await backend.revokeLease(b);
        await failed;
      });

      it('fails at once for a session that does not exist', async () => {
        await expect(acquireLock(backend, unique('lock'), 'abcdef12345')).rejects.toBeInstanceOf(LeaseNotFoundError);
      });

      it('rejects a bad lock name', async () => {
        const s = await session();
        for (const bad of ['', 'a/b', '..', '-x', 'x'.repeat(200)]) {
          await expect(acquireLock(backend, bad, s)).rejects.toBeInstanceOf(InvalidArgumentError);
        }
      });
    });

    describe('semaphore', () => {
      it('admits up to the limit and queues the rest', async () => {
        const sem = unique('sem');
        const s = await Promise.all([session(), session(), session()]);
        const one = await acquireSemaphore(backend, sem, 2, s[0] as string);
        await acquireSemaphore(backend, sem, 2, s[1] as string);
        const third = acquireSemaphore(backend, sem, 2, s[2] as string);
        expect(await isPending(third)).toBe(true);
        const status = await semaphoreStatus(backend, sem);
        expect(status.holders).toHaveLength(2);
        expect(status.waiting).toBe(1);
        await releaseSemaphore(backend, one);
        expect((await third).lease).toBe(s[2]);
      });

      it('with many slots, a waiter takes the one freed anywhere ahead of it, or fails when its own session ends', async () => {
        const sem = unique('sem');
        const limit = 12;
        const sessions = await Promise.all(Array.from({ length: limit + 2 }, () => session()));
        const holders = [];
        for (const s of sessions.slice(0, limit)) holders.push(await acquireSemaphore(backend, sem, limit, s));
        const next = acquireSemaphore(backend, sem, limit, sessions[limit] as string);
        expect(await isPending(next, 100)).toBe(true);
        const doomed = acquireSemaphore(backend, sem, limit, sessions[limit + 1] as string);
        expect(await isPending(doomed, 100)).toBe(true);
        const failed = expect(doomed).rejects.toBeInstanceOf(LeaseNotFoundError);
        await backend.revokeLease(sessions[limit + 1] as string);
        await failed;
        expect(await isPending(next, 100)).toBe(true);
        await releaseSemaphore(backend, holders[5] as (typeof holders)[number]);
        expect((await next).lease).toBe(sessions[limit]);
      });

      it('frees a slot when a holder session ends', async () => {
        const sem = unique('sem');
        const [a, b] = [await session(), await session()];
        await acquireSemaphore(backend, sem, 1, a);
        const next = acquireSemaphore(backend, sem, 1, b);
        await backend.revokeLease(a);
        expect((await next).lease).toBe(b);
      });

      it('refuses a contender that disagrees on the limit and leaves no key for it', async () => {
        const sem = unique('sem');
        const [a, b] = [await session(), await session()];
        await acquireSemaphore(backend, sem, 2, a);
        const revision = await backend.revision();
        const err = await acquireSemaphore(backend, sem, 3, b).catch((e: unknown) => e);
        expect(err).toBeInstanceOf(LimitMismatchError);
        expect((err as LimitMismatchError).existing).toBe(2);
        expect(await backend.get(layout.semaphoreWaiters(sem) + b)).toBeNull();
        // Refused, it wrote nothing at all: not even a key it then deleted.
        expect(await backend.revision()).toBe(revision);
      });

      it('rejects a limit below 1', async () => {
        await expect(acquireSemaphore(backend, unique('sem'), 0, await session())).rejects.toBeInstanceOf(
          InvalidArgumentError,
        );
      });
    });

    describe('election', () => {
      it('elects the first candidate and shows its value', async () => {
        const election = unique('el');
        const a = await session();
        const won = await campaign(backend, election, text('10.0.0.1'), a);
        const current = await leader(backend, election);
        expect(current?.key).toBe(won.key);
        expect(str(current?.value)).toBe('10.0.0.1');
        expect(current?.token).toBe(won.token);
      });

      it('makes later candidates wait, and elects the next one when the leader resigns', async () => {
        const election = unique('el');
        const [a, b] = [await session(), await session()];
        const first = await campaign(backend, election, text('a'), a);
        const second = campaign(backend, election, text('b'), b);
        expect(await isPending(second)).toBe(true);
        await resign(backend, first);
        const won = await second;
        expect(str((await leader(backend, election))?.value)).toBe('b');
        expect(won.token).toBeGreaterThan(first.token);
      });

      it('elects the next candidate when the leader session dies', async () => {
        const election = unique('el');
        const [a, b] = [await session(), await session()];
        await campaign(backend, election, text('a'), a);
        const second = campaign(backend, election, text('b'), b);
        await backend.revokeLease(a);
        expect((await second).lease).toBe(b);
      });

      it('lets the leader proclaim a new value, and refuses a stale leader', async () => {
        const election = unique('el');
        const a = await session();
        const won = await campaign(backend, election, text('v1'), a);
        await proclaim(backend, won, text('v2'));
        expect(str((await leader(backend, election))?.value)).toBe('v2');
        await resign(backend, won);
        await expect(proclaim(backend, won, text('v3'))).rejects.toBeInstanceOf(NotHolderError);
        await expect(resign(backend, won)).rejects.toBeInstanceOf(NotHolderError);
        expect(await leader(backend, election)).toBeNull();
      });

      it('lets an observer see every leader change in order', async () => {
        const election = unique('el');
        const [a, b, c] = [await session(), await session(), await session()];
        const stop = new AbortController();
        const seen: (string | null)[] = [];
        const watching = (async () => {
          for await (const l of observe(backend, election, stop.signal)) {
            seen.push(l ? str(l.value) : null);
            if (seen.length === 5) stop.abort();
          }
        })();
        await eventually(() => expect(seen).toEqual([null]));
        const ea = await campaign(backend, election, text('a'), a);
        const eb = campaign(backend, election, text('b'), b);
        await proclaim(backend, ea, text('a2'));
        await resign(backend, ea);
        const wonB = await eb;
        const ec = campaign(backend, election, text('c'), c);
        await eventually(async () =>
          expect((await backend.range({ key: layout.electionCandidates(election), prefix: true })).count).toBe(2),
        );
        await backend.revokeLease(wonB.lease);
        await ec;
        await watching;
        expect(seen).toEqual([null, 'a', 'a2', 'b', 'c']);
      });

      it('keeps a candidate place when the same session campaigns again', async () => {
        const election = unique('el');
        const a = await session();
        const first = await campaign(backend, election, text('x'), a);
        const again = await campaign(backend, election, text('y'), a);
        expect(again.token).toBe(first.token);
        expect(str((await leader(backend, election))?.value)).toBe('y');
      });
    });

    describe('barrier', () => {
      it('releases everyone when the count is reached', async () => {
        const barrier = unique('bar');
        const s = await Promise.all([session(), session(), session()]);
        const first = enterBarrier(backend, barrier, 3, 'n1', s[0] as string);
        const second = enterBarrier(backend, barrier, 3, 'n2', s[1] as string);
        expect(await isPending(first)).toBe(true);
        expect((await barrierStatus(backend, barrier)).arrived).toBe(2);
        const third = await enterBarrier(backend, barrier, 3, 'n3', s[2] as string);
        expect(third.ready).toBe(true);
        expect((await first).ready).toBe(true);
        expect((await second).ready).toBe(true);
      });

      it('lets a late arrival through a tripped barrier until it is reset', async () => {
        const barrier = unique('bar');
        const a = await session();
        await enterBarrier(backend, barrier, 1, 'n1', a);
        expect((await enterBarrier(backend, barrier, 1, 'n2', await session())).ready).toBe(true);
        await resetBarrier(backend, barrier);
        expect((await barrierStatus(backend, barrier)).ready).toBe(false);
        const waiting = enterBarrier(backend, barrier, 2, 'n3', await session());
        expect(await isPending(waiting)).toBe(true);
      });

      it('stops counting a participant whose session ends', async () => {
        const barrier = unique('bar');
        const a = await session();
        const first = enterBarrier(backend, barrier, 2, 'n1', a).catch(() => 'ended');
        await eventually(async () => expect((await barrierStatus(backend, barrier)).arrived).toBe(1));
        await backend.revokeLease(a);
        await eventually(async () => expect((await barrierStatus(backend, barrier)).arrived).toBe(0));
        expect(await isPending(first)).toBe(true);
      });

      it('refuses a participant that disagrees on the count', async () => {
        const barrier = unique('bar');
        void enterBarrier(backend, barrier, 3, 'n1', await session()).catch(() => undefined);
        await eventually(async () => expect((await barrierStatus(backend, barrier)).arrived).toBe(1));
        await expect(enterBarrier(backend, barrier, 4, 'n2', await session())).rejects.toBeInstanceOf(
          LimitMismatchError,
        );
      });

      it('double barrier: nobody leaves until everyone has left', async () => {
        const barrier = unique('bar');
        const s = await Promise.all([session(), session(), session()]);
        await Promise.all(['n1', 'n2', 'n3'].map((id, i) => enterBarrier(backend, barrier, 3, id, s[i] as string)));
        const one = leaveBarrier(backend, barrier, 'n1');
        const two = leaveBarrier(backend, barrier, 'n2');
        expect(await isPending(one)).toBe(true);
        expect(await isPending(two)).toBe(true);
        await leaveBarrier(backend, barrier, 'n3');
        await Promise.all([one, two]);
        const status = await barrierStatus(backend, barrier);
        expect(status.arrived).toBe(0);
        expect(status.ready).toBe(false);
      });
    });

    describe('once', () => {
      it('makes the first caller the runner and gives everyone else its result', async () => {
        const job = unique('once');
        const [a, b] = [await session(), await session()];
        const turn = await beginOnce(backend, job, a, systemClock);
        expect(turn.role).toBe('runner');
        const waiting = beginOnce(backend, job, b, systemClock);
        expect(await isPending(waiting)).toBe(true);
        expect((await onceStatus(backend, job)).state).toBe('running');
        if (turn.role !== 'runner') throw new Error('unreachable');
        await completeOnce(backend, job, turn, { exitCode: 3, output: 'migrated', runner: 'node-a' }, systemClock);
        const other = await waiting;
        expect(other.role).toBe('done');
        if (other.role === 'done') {
          expect(other.result.exitCode).toBe(3);
          expect(other.result.output).toBe('migrated');
        }
        const late = await beginOnce(backend, job, await session(), systemClock);
        expect(late.role).toBe('done');
        expect((await onceStatus(backend, job)).waiting).toBe(0);
      });

      it('hands the run to a waiter when the runner dies before finishing', async () => {
        const job = unique('once');
        const [a, b] = [await session(), await session()];
        const first = await beginOnce(backend, job, a, systemClock);
        const second = beginOnce(backend, job, b, systemClock);
        await backend.revokeLease(a);
        const turn = await second;
        expect(turn.role).toBe('runner');
        if (first.role === 'runner') {
          await expect(
            completeOnce(backend, job, first, { exitCode: 0, output: '', runner: 'a' }, systemClock),
          ).rejects.toBeInstanceOf(NotHolderError);
        }
      });

      it('runs again after a reset', async () => {
        const job = unique('once');
        const a = await session();
        const turn = await beginOnce(backend, job, a, systemClock);
        if (turn.role !== 'runner') throw new Error('expected to run');
        await completeOnce(backend, job, turn, { exitCode: 1, output: 'failed', runner: 'a' }, systemClock);
        expect(await resetOnce(backend, job)).toBe(true);
        expect((await beginOnce(backend, job, a, systemClock)).role).toBe('runner');
      });

      it('keeps only the tail of a long output', async () => {
        const job = unique('once');
        const turn = await beginOnce(backend, job, await session(), systemClock);
        if (turn.role !== 'runner') throw new Error('expected to run');
        const result = await completeOnce(
          backend,
          job,
          turn,
          { exitCode: 0, output: 'x'.repeat(70_000) + 'END', runner: 'a' },
          systemClock,
        );
        expect(result.output.endsWith('END')).toBe(true);
        expect(result.output.length).toBe(64 * 1024);
      });

      it('runs exactly once among many concurrent callers', async () => {
        const job = unique('once');
        const sessions = await Promise.all(Array.from({ length: 8 }, () => session()));
        let runs = 0;
        const exitCodes = await Promise.all(
          sessions.map(async (s) => {
            const turn = await beginOnce(backend, job, s, systemClock);
            if (turn.role === 'done') return turn.result.exitCode;
            runs += 1;
            await new Promise((resolve) => setTimeout(resolve, 20));
            return (await completeOnce(backend, job, turn, { exitCode: 7, output: '', runner: s }, systemClock))
              .exitCode;
          }),
        );
        expect(runs).toBe(1);
        expect(exitCodes).toEqual(sessions.map(() => 7));
      });
    });

    describe('wait', () => {
      it('returns at once when the condition already holds', async () => {
        const key = `/t/${unique('w')}/ready`;
        await backend.put(key, text('ready'));
        const out = await waitFor(backend, key, { kind: 'equals', value: 'ready' });
        expect(str(out.kv?.value)).toBe('ready');
      });

      it('blocks until the value equals, skipping other values', async () => {
        const key = `/t/${unique('w')}/ready`;
        const waiting = waitFor(backend, key, { kind: 'equals', value: 'ready' });
        await backend.put(key, text('starting'));
        expect(await isPending(waiting, 50)).toBe(true);
        const put = await backend.put(key, text('ready'));
        expect((await waiting).revision).toBe(put.revision);
      });

      it('waits for a key to exist, to match a pattern, and to be deleted', async () => {
        const key = `/t/${unique('w')}/k`;
        const exists = waitFor(backend, key, { kind: 'exists' });
        const matches = waitFor(backend, key, matchesCondition('^v[0-9]+$'));
        await backend.put(key, text('x'));
        expect(str((await exists).kv?.value)).toBe('x');
        expect(await isPending(matches, 50)).toBe(true);
        await backend.put(key, text('v42'));
        expect(str((await matches).kv?.value)).toBe('v42');
        const deleted = waitFor(backend, key, { kind: 'deleted' });
        await backend.delete({ key });
        expect((await deleted).kv).toBeNull();
      });

      it('rejects with the timeout when the signal fires', async () => {
        const timeout = aborter(new TimeoutError('wait timed out'));
        const waiting = waitFor(backend, `/t/${unique('w')}/never`, { kind: 'exists' }, timeout.signal);
        timeout.abort();
        await expect(waiting).rejects.toBeInstanceOf(TimeoutError);
      });

      it('refuses a bad pattern', () => {
        expect(() => matchesCondition('([')).toThrow(InvalidArgumentError);
        expect(() => matchesCondition('a'.repeat(300))).toThrow(InvalidArgumentError);
      });

      it('releases many waiters with one write', async () => {
        const key = `/t/${unique('w')}/go`;
        const waiters = Array.from({ length: 100 }, () => waitFor(backend, key, { kind: 'equals', value: 'go' }));
        await new Promise((resolve) => setTimeout(resolve, 50));
        const put = await backend.put(key, text('go'));
        const outcomes = await Promise.all(waiters);
        expect(outcomes.every((o) => o.revision === put.revision)).toBe(true);
      });
    });
  });
}

/**
 * The safety checks of issue 3: many contenders in separate sessions, holders
 * killed mid-hold at random, and a checker over what the shared resource saw.
 */
export function describePrimitiveSafety(name: string, make: MakeHarness, rounds: number): void {
  describe(`primitive safety on ${name}`, () => {
    let harness: BackendHarness;
    let backend: Backend;
    beforeEach(async () => {
      harness = await make();
      backend = harness.backend;
    });
    afterEach(async () => {
      await harness.close();
    });

    it(`lock: ${rounds} rounds, 20 contenders, holders killed at random; tokens increase and stale writes are refused`, async () => {
      const lock = unique('safety');
      const resource = `/t/${unique('res')}/value`;
      const accepted: number[] = [];
      const staleAccepted: number[] = [];
      let round = 0;
      let killed = 0;
      let random = 12345;
      const next = () => (random = (random * 1103515245 + 12345) % 2147483648) / 2147483648;

      /** The fenced write: accepted only while this token still holds the lock. */
      const write = async (key: string, token: number) => {
        const r = await backend.txn({
          compare: [{ key, target: 'createRevision', op: '=', value: token }],
          success: [{ type: 'put', key: resource, value: text(String(token)) }],
          failure: [],
        });
        return r.succeeded;
      };

      const contender = async () => {
        while (round < rounds) {
          const lease = (await backend.grantLease(60)).id;
          let handle;
          try {
            handle = await acquireLock(backend, lock, lease);
          } catch (error) {
            if (error instanceof LeaseNotFoundError) continue;
            throw error;
          }
          round += 1;
          if (await write(handle.key, handle.token)) accepted.push(handle.token);
          if (next() < 0.3) {
            // Killed mid-hold: its session ends without a release...
            killed += 1;
            await backend.revokeLease(lease);
            // ...and the zombie still tries to write after a newer holder may have the lock.
            await new Promise((resolve) => setTimeout(resolve, next() * 3));
            if (await write(handle.key, handle.token)) staleAccepted.push(handle.token);
          } else {
            if (await write(handle.key, handle.token)) accepted.push(handle.token);
            await releaseLock(backend, handle);
            await backend.revokeLease(lease);
          }
        }
      };
      await Promise.all(Array.from({ length: 20 }, () => contender()));
      expect(round).toBeGreaterThanOrEqual(rounds);
      expect(killed).toBeGreaterThan(0);
      expect(staleAccepted).toEqual([]);
      for (let i = 1; i < accepted.length; i++) expect(accepted[i]).toBeGreaterThanOrEqual(accepted[i - 1] as number);
      const history = new Set(accepted);
      expect(history.size).toBeGreaterThanOrEqual(rounds);
    });

    it('semaphore: never more than N holders, with holders killed at random', async () => {
      const sem = unique('safety');
      const limit = 3;
      const holders = new Set<number>();
      let maxSeen = 0;
      let round = 0;
      const contender = async (i: number) => {
        while (round < Math.max(60, rounds / 5)) {
          const lease = (await backend.grantLease(60)).id;
          const handle = await acquireSemaphore(backend, sem, limit, lease);
          round += 1;
          holders.add(handle.token);
          maxSeen = Math.max(maxSeen, holders.size);
          expect(holders.size).toBeLessThanOrEqual(limit);
          await new Promise((resolve) => setTimeout(resolve, (i * 7) % 3));
          holders.delete(handle.token);
          if ((round + i) % 4 === 0) await backend.revokeLease(lease);
          else await releaseSemaphore(backend, handle);
        }
      };
      await Promise.all(Array.from({ length: 10 }, (_, i) => contender(i)));
      expect(maxSeen).toBe(limit);
    });

    it('election: never two leaders at once, with leaders killed at random', async () => {
      const election = unique('safety');
      const changes: (Leader | null)[] = [];
      const stop = new AbortController();
      const observing = (async () => {
        for await (const l of observe(backend, election, stop.signal)) changes.push(l);
      })();
      let terms = 0;
      const candidate = async (i: number) => {
        while (terms < Math.max(40, rounds / 10)) {
          const lease = (await backend.grantLease(60)).id;
          const won = await campaign(backend, election, text(`node-${i}`), lease).catch((e: unknown) => {
            if (e instanceof LeaseNotFoundError) return null;
            throw e;
          });
          if (!won) continue;
          terms += 1;
          const current = await leader(backend, election);
          expect(current?.key).toBe(won.key);
          if (terms % 3 === 0) await backend.revokeLease(lease);
          else await resign(backend, won);
        }
      };
      await Promise.all(Array.from({ length: 8 }, (_, i) => candidate(i)));
      await eventually(() => expect(changes[changes.length - 1]).toBeNull());
      stop.abort();
      await observing;
      const tokens = changes.filter((c): c is Leader => c !== null).map((c) => c.token);
      for (let i = 1; i < tokens.length; i++) expect(tokens[i]).toBeGreaterThan(tokens[i - 1] as number);
      for (let i = 1; i < changes.length; i++) {
        expect(changes[i]?.revision ?? Infinity).toBeGreaterThanOrEqual(changes[i - 1]?.revision ?? 0);
      }
    });
  });
}
