import type { Backend, LeaseId } from '../core/backend.js';
import { NotHolderError } from '../core/errors.js';
import { layout, validateName } from './layout.js';
import { joinQueue, leaveQueue, queueOf, waitForTurn, withQueueCleanup } from './waiter-queue.js';

export interface LockHandle {
  readonly name: string;
  /** The holder key, `/muster/locks/<name>/<lease>`. */
  readonly key: string;
  /**
   * The fencing token: the holder key's createRevision, strictly increasing from
   * one holder to the next. Guard writes with it (a txn comparing it) so a holder
   * that lost the lock can never overwrite a newer holder's work.
   */
  readonly token: number;
  readonly lease: LeaseId;
}

export interface LockStatus {
  readonly name: string;
  readonly holder: { key: string; token: number; lease: LeaseId | null } | null;
  /** Waiters behind the holder. */
  readonly waiting: number;
}

const EMPTY = new Uint8Array(0);

/**
 * Wait for the lock `name` and take it for the session `lease`. Rejects with the
 * signal's reason (TimeoutError for a timeout) if it aborts first; on a timeout
 * the caller's place in the queue is given up.
 */
export async function acquireLock(
  backend: Backend,
  name: string,
  lease: LeaseId,
  signal?: AbortSignal,
): Promise<LockHandle> {
  const prefix = layout.lockWaiters(validateName(name, 'lock name'));
  const waiter = await joinQueue(backend, prefix, lease, EMPTY);
  await withQueueCleanup(backend, waiter, () => waitForTurn(backend, prefix, waiter, 1, lease, signal));
  return { name, key: waiter.key, token: waiter.token, lease };
}

/** Release the lock if `token` still holds it. Throws NotHolderError otherwise. */
export async function releaseLock(backend: Backend, key: string, token: number): Promise<void> {
  if (!(await leaveQueue(backend, key, token))) throw new NotHolderError(key, token);
}

/** Who holds `name` now, and how many wait. */
export async function lockStatus(backend: Backend, name: string): Promise<LockStatus> {
  const { waiters } = await queueOf(backend, layout.lockWaiters(validateName(name, 'lock name')));
  const first = waiters[0];
  return {
    name,
    holder: first ? { key: first.key, token: first.createRevision, lease: first.lease } : null,
    waiting: Math.max(0, waiters.length - 1),
  };
}
