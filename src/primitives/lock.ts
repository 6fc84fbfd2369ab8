import type { Backend, LeaseId } from '../core/backend.js';
import type { Clock } from '../core/clock.js';
import { systemClock } from '../core/clock.js';
import { LeaseNotFoundError, NotHolderError } from '../core/errors.js';
import { sleep } from './deadline.js';
import { layout, validateName } from './layout.js';
import { joinQueue, queueOf, waitForTurn, withQueueCleanup } from './waiter-queue.js';

export interface LockHandle {
  readonly name: string;
  /** The holder key, `/muster/locks/<name>/waiters/<lease>`. */
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

export interface AcquireLockOptions {
  /** Aborts the wait (TimeoutError for a timeout: the caller's place is given up). */
  readonly signal?: AbortSignal;
  /**
   * Lock-delay: when the holder this caller waited behind lost its session instead
   * of releasing the lock, wait this long more before taking it, so that whatever
   * the lost holder was doing (on a node cut off from the server, say) has time to
   * stop. A caller that finds the lock free when it arrives is not delayed.
   * @default 0
   */
  readonly lockDelayMs?: number;
  /** @default systemClock */
  readonly clock?: Clock;
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
  options: AcquireLockOptions = {},
): Promise<LockHandle> {
  validateName(name, 'lock name');
  const { signal, lockDelayMs = 0, clock = systemClock } = options;
  const prefix = layout.lockWaiters(name);
  const waiter = await joinQueue(backend, prefix, lease, EMPTY);
  await withQueueCleanup(backend, waiter, async () => {
    const turn = await waitForTurn(backend, prefix, waiter, 1, lease, signal);
    if (lockDelayMs <= 0 || turn.previousHead === null) return;
    // The release and the holder key's delete are one write, so by now the marker
    // says whether that holder released.
    const released = await backend.get(layout.lockReleased(name));
    if (released && new TextDecoder().decode(released.value) === String(turn.previousHead.createRevision)) return;
    await sleep(clock, lockDelayMs, signal);
    const mine = await backend.get(waiter.key);
    if (mine?.createRevision !== waiter.token) throw new LeaseNotFoundError(lease);
  });
  return { name, key: waiter.key, token: waiter.token, lease };
}

/**
 * Release the lock if `token` still holds it, and record that it was released
 * (not lost) for the lock-delay of the next holder. Throws NotHolderError otherwise.
 */
export async function releaseLock(backend: Backend, key: string, token: number): Promise<void> {
  const name = lockNameOfKey(key);
  if (name === null) throw new NotHolderError(key, token);
  const result = await backend.txn({
    compare: [{ key, target: 'createRevision', op: '=', value: token }],
    success: [
      { type: 'delete', key },
      { type: 'put', key: layout.lockReleased(name), value: new TextEncoder().encode(String(token)) },
    ],
    failure: [],
  });
  if (!result.succeeded) throw new NotHolderError(key, token);
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

/** The lock name of a holder key, or null if the key is not one. */
function lockNameOfKey(key: string): string | null {
  return /^\/muster\/locks\/([^/]+)\/waiters\/[^/]+$/.exec(key)?.[1] ?? null;
}
