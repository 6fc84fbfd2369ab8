import type { Backend, KeyValue, LeaseId } from '../core/backend.js';
import { LeaseNotFoundError, NotHolderError, TimeoutError } from '../core/errors.js';
import { throwIfAborted, waitForAnyDelete } from './wait-for-event.js';

/**
 * The queue under locks, semaphores, elections and once: a waiter is a key
 * `<prefix><lease id>` bound to its session's lease; waiters are ordered by
 * createRevision; a waiter watches only the few keys just ahead of it.
 */

export interface Waiter {
  readonly key: string;
  /** The waiter key's createRevision: its place in the queue, and its fencing token. */
  readonly token: number;
  /** True when this call created the key (false: a retry found its old place). */
  readonly created: boolean;
  readonly value: Uint8Array;
}

/** Put the caller's waiter key, or find it if an earlier try already did. */
export async function joinQueue(backend: Backend, prefix: string, lease: LeaseId, value: Uint8Array): Promise<Waiter> {
  const key = prefix + lease;
  const result = await backend.txn({
    compare: [{ key, target: 'createRevision', op: '=', value: 0 }],
    success: [{ type: 'put', key, value, lease }],
    failure: [{ type: 'get', key }],
  });
  if (result.succeeded) return { key, token: result.revision, created: true, value };
  const first = result.results[0];
  const existing = first?.type === 'get' ? first.kvs[0] : undefined;
  if (!existing) throw new LeaseNotFoundError(lease);
  return { key, token: existing.createRevision, created: false, value: existing.value };
}

/** Everyone in the queue, first come first. */
export async function queueOf(backend: Backend, prefix: string): Promise<{ revision: number; waiters: KeyValue[] }> {
  const range = await backend.range({ key: prefix, prefix: true });
  return { revision: range.revision, waiters: range.kvs.sort((a, b) => a.createRevision - b.createRevision) };
}

/**
 * Wait until fewer than `slots` waiters are ahead of `waiter`. Watches only the
 * `slots` waiters just ahead: while they all exist, at least `slots` are ahead.
 * Throws LeaseNotFoundError if the waiter's key vanishes (its session ended).
 */
export async function waitForTurn(
  backend: Backend,
  prefix: string,
  waiter: Waiter,
  slots: number,
  lease: LeaseId,
  signal?: AbortSignal,
): Promise<KeyValue[]> {
  for (;;) {
    throwIfAborted(signal);
    const { revision, waiters } = await queueOf(backend, prefix);
    const mine = waiters.find((w) => w.key === waiter.key);
    if (!mine || mine.createRevision !== waiter.token) throw new LeaseNotFoundError(lease);
    const ahead = waiters.filter((w) => w.createRevision < waiter.token);
    if (ahead.length < slots) return waiters;
    const watched = ahead.slice(-slots).map((w) => w.key);
    await waitForAnyDelete(backend, [...watched, waiter.key], revision + 1, signal);
  }
}

/**
 * Refuse a holder key that is not a waiter key directly under `prefix` (the named
 * primitive's folder): release, resign, proclaim and complete must not touch
 * another primitive's keys even when the token matches.
 */
export function checkWaiterKey(key: string, token: number, prefix: string): void {
  const rest = key.startsWith(prefix) ? key.slice(prefix.length) : '';
  if (rest === '' || rest.includes('/')) throw new NotHolderError(key, token);
}

/** Remove a waiter key if it is still the same one (same createRevision). */
export async function leaveQueue(backend: Backend, key: string, token: number): Promise<boolean> {
  const result = await backend.txn({
    compare: [{ key, target: 'createRevision', op: '=', value: token }],
    success: [{ type: 'delete', key }],
    failure: [],
  });
  return result.succeeded;
}

/**
 * Run a queue wait; if it ends because the caller's timeout passed, take the
 * waiter out of the queue (the caller gave up). Any other abort (the client went
 * away) leaves the key, so that a retry with the same session finds its place;
 * it goes when the session ends.
 */
export async function withQueueCleanup<T>(backend: Backend, waiter: Waiter, wait: () => Promise<T>): Promise<T> {
  try {
    return await wait();
  } catch (error) {
    if (error instanceof TimeoutError) await leaveQueue(backend, waiter.key, waiter.token).catch(() => false);
    throw error;
  }
}
