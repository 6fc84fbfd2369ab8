import type { Backend, KeyValue, LeaseId } from '../core/backend.js';
import type { Clock } from '../core/clock.js';
import { sleep, systemClock } from '../core/clock.js';
import { InvalidArgumentError, LeaseNotFoundError, NotHolderError } from '../core/errors.js';
import { layout, validateName } from './layout.js';
import { checkWaiterKey, joinQueue, queueOf, waitForTurn, withQueueCleanup } from './waiter-queue.js';
import type { LockHandle, LockStatus } from './result-schemas.js';

export interface AcquireLockOptions {
  /** Aborts the wait (TimeoutError for a timeout: the caller's place is given up). */
  readonly signal?: AbortSignal;
  /**
   * Lock-delay, as in Consul: should this caller's session be lost while it holds
   * the lock (rather than the lock be released), nobody gets the lock for this
   * long after the loss is noticed, so that whatever this holder was doing (on a
   * node cut off from the server, say) has time to stop. At most 1 hour.
   * @default 0
   */
  readonly lockDelayMs?: number;
  /** @default systemClock */
  readonly clock?: Clock;
}

/** The longest lock-delay a holder may declare. */
export const MAX_LOCK_DELAY_MS = 3_600_000;

const EMPTY = new Uint8Array(0);

/** What a holder with a lock-delay leaves under `layout.lockDelays(name)`. */
interface DelayRecord {
  readonly delayMs: number;
  /** When a contender first found its holder gone (ms on that contender's clock). */
  readonly lostAt?: number;
}

/**
 * Wait for the lock `name` and take it for the session `lease`. Rejects with the
 * signal's reason (TimeoutError for a timeout) if it aborts first; on a timeout
 * the caller's place in the queue is given up. The wait includes the lock-delay
 * of a holder that was lost.
 */
export async function acquireLock(
  backend: Backend,
  name: string,
  lease: LeaseId,
  options: AcquireLockOptions = {},
): Promise<LockHandle> {
  validateName(name, 'lock name');
  const { signal, lockDelayMs = 0, clock = systemClock } = options;
  if (!Number.isFinite(lockDelayMs) || lockDelayMs < 0 || lockDelayMs > MAX_LOCK_DELAY_MS) {
    throw new InvalidArgumentError(`lock delay must be from 0 to 1h, got ${lockDelayMs} ms`, 'invalid_duration');
  }
  const prefix = layout.lockWaiters(name);
  const waiter = await joinQueue(backend, prefix, lease, EMPTY);
  await withQueueCleanup(backend, waiter, async () => {
    await waitForTurn(backend, prefix, waiter, 1, lease, signal);
    await waitOutLostHolders(backend, name, waiter.token, clock, signal);
    if (lockDelayMs < 1) return;
    const declared = await backend.txn({
      compare: [{ key: waiter.key, target: 'createRevision', op: '=', value: waiter.token }],
      success: [
        {
          type: 'put',
          key: layout.lockDelays(name) + waiter.token,
          value: encodeRecord({ delayMs: Math.round(lockDelayMs) }),
        },
      ],
      failure: [],
    });
    if (!declared.succeeded) throw new LeaseNotFoundError(lease);
  });
  return { name, key: waiter.key, token: waiter.token, lease };
}

/**
 * The caller is first in the queue, so every earlier holder is gone; one that left
 * a delay record was lost, not released. Wait until its delay has passed since
 * the loss was first noticed (by whichever contender saw it first), then clear
 * the record, so that nobody waits for it twice.
 */
async function waitOutLostHolders(
  backend: Backend,
  name: string,
  ownToken: number,
  clock: Clock,
  signal: AbortSignal | undefined,
): Promise<void> {
  for (;;) {
    const { kvs } = await backend.range({ key: layout.lockDelays(name), prefix: true });
    const lost = kvs.find((kv) => kv.key !== layout.lockDelays(name) + ownToken);
    if (!lost) return;
    const record = decodeRecord(lost);
    if (record.lostAt === undefined) {
      // Stamp the moment once; a contender that lost the race reads the winner's.
      await stampRecord(backend, lost, { ...record, lostAt: clock.now() });
      continue;
    }
    const remaining = record.lostAt + record.delayMs - clock.now();
    if (remaining > 0) {
      await sleep(clock, remaining, signal);
      continue;
    }
    await backend.txn({
      compare: [{ key: lost.key, target: 'modRevision', op: '=', value: lost.modRevision }],
      success: [{ type: 'delete', key: lost.key }],
      failure: [],
    });
  }
}

async function stampRecord(backend: Backend, kv: KeyValue, record: DelayRecord): Promise<void> {
  await backend.txn({
    compare: [{ key: kv.key, target: 'modRevision', op: '=', value: kv.modRevision }],
    success: [{ type: 'put', key: kv.key, value: encodeRecord(record) }],
    failure: [],
  });
}

/**
 * Release the lock if `token` still holds it (and `key` is a holder key of this
 * lock). Throws NotHolderError otherwise. The holder's delay record, if it
 * declared one, goes in the same write.
 */
export async function releaseLock(backend: Backend, held: Pick<LockHandle, 'name' | 'key' | 'token'>): Promise<void> {
  const { name, key, token } = held;
  checkWaiterKey(key, token, layout.lockWaiters(validateName(name, 'lock name')));
  const result = await backend.txn({
    compare: [{ key, target: 'createRevision', op: '=', value: token }],
    success: [
      { type: 'delete', key },
      { type: 'delete', key: layout.lockDelays(name) + token },
    ],
    failure: [],
  });
  if (!result.succeeded) throw new NotHolderError(key, token);
}

/** Who holds `name` now, and how many wait. During a lock-delay, the next holder already shows as holder. */
export async function lockStatus(backend: Backend, name: string): Promise<LockStatus> {
  const { waiters } = await queueOf(backend, layout.lockWaiters(validateName(name, 'lock name')));
  const first = waiters[0];
  return {
    name,
    holder: first ? { key: first.key, token: first.createRevision, lease: first.lease } : null,
    waiting: Math.max(0, waiters.length - 1),
  };
}

function encodeRecord(record: DelayRecord): Uint8Array {
  return new TextEncoder().encode(JSON.stringify(record));
}

/** A record that does not parse counts as a delay of 0: it is cleared, never waited on. */
function decodeRecord(kv: KeyValue): DelayRecord {
  try {
    const parsed = JSON.parse(new TextDecoder().decode(kv.value)) as Partial<DelayRecord>;
    const delayMs =
      typeof parsed.delayMs === 'number' && parsed.delayMs > 0 ? Math.min(parsed.delayMs, MAX_LOCK_DELAY_MS) : 0;
    return typeof parsed.lostAt === 'number' ? { delayMs, lostAt: parsed.lostAt } : { delayMs };
  } catch {
    return { delayMs: 0, lostAt: 0 };
  }
}

export type { LockHandle, LockStatus };
