import type { Backend, KeyValue, LeaseId } from '../core/backend.js';
import { InvalidArgumentError, LimitMismatchError, NotHolderError } from '../core/errors.js';
import { layout, validateName } from './layout.js';
import { checkWaiterKey, joinQueue, leaveQueue, queueOf, waitForTurn, withQueueCleanup } from './waiter-queue.js';
import type { SemaphoreHandle, SemaphoreStatus } from './result-schemas.js';

const MAX_LIMIT = 10_000;

/**
 * Take one of `limit` slots of semaphore `name`. Every contender must name the
 * same limit: a caller that disagrees with the waiters already there gets
 * LimitMismatchError and leaves no key behind.
 */
export async function acquireSemaphore(
  backend: Backend,
  name: string,
  limit: number,
  lease: LeaseId,
  signal?: AbortSignal,
): Promise<SemaphoreHandle> {
  if (!Number.isInteger(limit) || limit < 1 || limit > MAX_LIMIT) {
    throw new InvalidArgumentError(
      `semaphore limit must be a whole number from 1 to ${MAX_LIMIT}, got ${limit}`,
      'invalid_limit',
    );
  }
  const prefix = layout.semaphoreWaiters(validateName(name, 'semaphore name'));
  const mine = prefix + lease;
  const mismatch = (waiters: readonly KeyValue[]): number | null => {
    for (const other of waiters) {
      const theirs = Number(new TextDecoder().decode(other.value));
      if (other.key !== mine && theirs !== limit) return theirs;
    }
    return null;
  };
  // Refused before joining: a contender that disagrees on the size writes nothing.
  const before = mismatch((await queueOf(backend, prefix)).waiters);
  if (before !== null) throw new LimitMismatchError(name, limit, before);
  const waiter = await joinQueue(backend, prefix, lease, new TextEncoder().encode(String(limit)));
  // Two contenders that disagree and arrive at an empty semaphore at once both get
  // past the check: the one that finds the other in the queue leaves again.
  const after = mismatch((await queueOf(backend, prefix)).waiters);
  if (after !== null) {
    if (waiter.created) await leaveQueue(backend, waiter.key, waiter.token);
    throw new LimitMismatchError(name, limit, after);
  }
  await withQueueCleanup(backend, waiter, () => waitForTurn(backend, prefix, waiter, limit, lease, signal));
  return { name, key: waiter.key, token: waiter.token, lease, limit };
}

/** Give a slot back. Throws NotHolderError if it is no longer held. */
/** Give a slot back if `token` still holds it (and `key` is a slot of this semaphore); NotHolderError otherwise. */
export async function releaseSemaphore(
  backend: Backend,
  held: Pick<SemaphoreHandle, 'name' | 'key' | 'token'>,
): Promise<void> {
  const { name, key, token } = held;
  checkWaiterKey(key, token, layout.semaphoreWaiters(validateName(name, 'semaphore name')));
  if (!(await leaveQueue(backend, key, token))) throw new NotHolderError(key, token);
}

export async function semaphoreStatus(backend: Backend, name: string): Promise<SemaphoreStatus> {
  const { waiters } = await queueOf(backend, layout.semaphoreWaiters(validateName(name, 'semaphore name')));
  const first = waiters[0];
  const limit = first ? Number(new TextDecoder().decode(first.value)) : null;
  const holders = waiters.slice(0, limit ?? 0).map((w) => ({ key: w.key, token: w.createRevision, lease: w.lease }));
  return { name, limit, holders, waiting: waiters.length - holders.length };
}

export type { SemaphoreHandle, SemaphoreStatus };
