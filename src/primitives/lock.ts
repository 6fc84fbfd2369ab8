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
   * Lock-delay, as in Consul: should this caller's session be lost while it holds
   * the lock (rather than the lock be released), the next holder waits this long
   * more before taking it, so that whatever this holder was doing (on a node cut
   * off from the server, say) has time to stop. It is kept in the holder key.
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
  const value = lockDelayMs > 0 ? new TextEncoder().encode(String(Math.round(lockDelayMs))) : EMPTY;
  const waiter = await joinQueue(backend, prefix, lease, value);
  await withQueueCleanup(backend, waiter, async () => {
    const turn = await waitForTurn(backend, prefix, waiter, 1, lease, signal);
    const previous = turn.previousHead;
    const delayMs = previous ? Number(new TextDecoder().decode(previous.value)) : 0;
    if (previous === null || !(delayMs > 0)) return;
    // Its release deleted the key and recorded its token in one write, so by now
    // the record says whether the previous holder released or was lost.
    const released = await backend.get(layout.lockReleased(name));
    if (released && new TextDecoder().decode(released.value) === String(previous.createRevision)) return;
    await sleep(clock, delayMs, signal);
    const mine = await backend.get(waiter.key);
    if (mine?.createRevision !== waiter.token) throw new LeaseNotFoundError(lease);
  });
  return { name, key: waiter.key, token: waiter.token, lease };
}

/**
 * Release the lock if `token` still holds it. Throws NotHolderError otherwise.
 * A holder with a lock-delay also records that it released (rather than lost)
 * the lock, in the same write, so that the next holder does not wait.
 */
export async function releaseLock(backend: Backend, key: string, token: number): Promise<void> {
  const name = lockNameOfKey(key);
  if (name === null) throw new NotHolderError(key, token);
  // The common case, a holder without a lock-delay: one delete.
  const plain = await backend.txn({
    compare: [
      { key, target: 'createRevision', op: '=', value: token },
      { key, target: 'value', op: '=', value: EMPTY },
    ],
    success: [{ type: 'delete', key }],
    failure: [{ type: 'get', key }],
  });
  if (plain.succeeded) return;
  const found = plain.results[0];
  if (found?.type !== 'get' || found.kvs[0]?.createRevision !== token) throw new NotHolderError(key, token);
  const withRecord = await backend.txn({
    compare: [{ key, target: 'createRevision', op: '=', value: token }],
    success: [
      { type: 'delete', key },
      { type: 'put', key: layout.lockReleased(name), value: new TextEncoder().encode(String(token)) },
    ],
    failure: [],
  });
  if (!withRecord.succeeded) throw new NotHolderError(key, token);
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
