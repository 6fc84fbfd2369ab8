import type { Backend, LeaseId } from '../core/backend.js';
import type { Clock } from '../core/clock.js';
import { NotHolderError } from '../core/errors.js';
import { layout, validateName } from './layout.js';
import { waitForAnyDelete, waitForEvent, throwIfAborted } from './wait-for-event.js';
import { checkWaiterKey, joinQueue, leaveQueue, queueOf, withQueueCleanup } from './waiter-queue.js';
import type { Waiter } from './waiter-queue.js';
import type { OnceResult, OnceTurn, OnceStatus } from './result-schemas.js';

/** Output kept in the result, from the end. */
export const ONCE_OUTPUT_LIMIT = 64 * 1024;
const EMPTY = new Uint8Array(0);

const onceName = (name: string) => validateName(name, 'once name');

/**
 * Join `once NAME`: resolves with `role: 'done'` and the recorded result if the
 * command has run (now or long ago), or with `role: 'runner'` when it falls to
 * the caller to run it: the first caller, or a waiter taking over from a runner
 * whose session died. The runner must call `completeOnce` with its token.
 */
export async function beginOnce(
  backend: Backend,
  name: string,
  lease: LeaseId,
  clock: Clock,
  signal?: AbortSignal,
): Promise<OnceTurn> {
  const prefix = layout.onceRunners(onceName(name));
  const resultKey = layout.onceResult(name);
  const recorded = await readResult(backend, resultKey);
  if (recorded) return { role: 'done', result: recorded };
  const waiter = await joinQueue(backend, prefix, lease, EMPTY);
  return withQueueCleanup(backend, waiter, () => awaitTurn(backend, prefix, resultKey, waiter, clock, signal));
}

async function awaitTurn(
  backend: Backend,
  prefix: string,
  resultKey: string,
  waiter: Waiter,
  clock: Clock,
  signal?: AbortSignal,
): Promise<OnceTurn> {
  for (;;) {
    throwIfAborted(signal);
    const { revision, waiters } = await queueOf(backend, prefix);
    const result = await readResult(backend, resultKey);
    if (result) {
      await leaveQueue(backend, waiter.key, waiter.token);
      return { role: 'done', result };
    }
    const mine = waiters.find((w) => w.key === waiter.key);
    if (!mine || mine.createRevision !== waiter.token) throw new NotHolderError(waiter.key, waiter.token);
    const ahead = waiters.filter((w) => w.createRevision < waiter.token);
    const predecessor = ahead[ahead.length - 1];
    if (!predecessor)
      return { role: 'runner', key: waiter.key, token: waiter.token, startedAt: new Date(clock.now()).toISOString() };
    // Wake when the one ahead goes (it finished, or died) or the result appears.
    const stop = new AbortController();
    const both = signal ? AbortSignal.any([signal, stop.signal]) : stop.signal;
    try {
      await Promise.race([
        waitForAnyDelete(backend, [predecessor.key, waiter.key], revision + 1, both),
        waitForEvent(backend, resultKey, revision + 1, (e) => e.type === 'put', both),
      ]);
    } finally {
      stop.abort();
    }
  }
}

/**
 * Record the runner's result and leave the queue, in one transaction guarded by
 * the runner's token. Throws NotHolderError if the runner's session ended first
 * (another waiter may be running the command now).
 */
export async function completeOnce(
  backend: Backend,
  name: string,
  turn: { key: string; token: number; startedAt?: string },
  outcome: { exitCode: number; output: string; runner: string },
  clock: Clock,
): Promise<OnceResult> {
  const resultKey = layout.onceResult(onceName(name));
  checkWaiterKey(turn.key, turn.token, layout.onceRunners(name));
  const result: OnceResult = {
    exitCode: outcome.exitCode,
    output: outcome.output.length > ONCE_OUTPUT_LIMIT ? outcome.output.slice(-ONCE_OUTPUT_LIMIT) : outcome.output,
    runner: outcome.runner,
    token: turn.token,
    startedAt: turn.startedAt ?? new Date(clock.now()).toISOString(),
    finishedAt: new Date(clock.now()).toISOString(),
  };
  const written = await backend.txn({
    compare: [{ key: turn.key, target: 'createRevision', op: '=', value: turn.token }],
    success: [
      { type: 'put', key: resultKey, value: new TextEncoder().encode(JSON.stringify(result)) },
      { type: 'delete', key: turn.key },
    ],
    failure: [],
  });
  if (!written.succeeded) throw new NotHolderError(turn.key, turn.token);
  return result;
}

/** Forget the recorded result, so that the next caller runs the command again. */
export async function resetOnce(backend: Backend, name: string): Promise<boolean> {
  const result = await backend.delete({ key: layout.onceResult(onceName(name)) });
  return result.deleted > 0;
}

export async function onceStatus(backend: Backend, name: string): Promise<OnceStatus> {
  const { waiters } = await queueOf(backend, layout.onceRunners(onceName(name)));
  const result = await readResult(backend, layout.onceResult(name));
  const first = waiters[0];
  return {
    name,
    state: result ? 'done' : first ? 'running' : 'idle',
    result,
    runner: first && !result ? { key: first.key, token: first.createRevision } : null,
    waiting: Math.max(0, waiters.length - 1),
  };
}

async function readResult(backend: Backend, key: string): Promise<OnceResult | null> {
  const kv = await backend.get(key);
  if (!kv) return null;
  try {
    return JSON.parse(new TextDecoder().decode(kv.value)) as OnceResult;
  } catch {
    // Someone wrote the key by hand; treat it as a failed run rather than crash.
    return {
      exitCode: 1,
      output: 'unreadable once result',
      runner: 'unknown',
      token: kv.createRevision,
      startedAt: '',
      finishedAt: '',
    };
  }
}

export type { OnceResult, OnceTurn, OnceStatus };
