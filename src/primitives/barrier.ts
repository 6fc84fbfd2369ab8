import type { Backend, LeaseId } from '../core/backend.js';
import { InvalidArgumentError, LimitMismatchError } from '../core/errors.js';
import { layout, validateName } from './layout.js';
import { waitForAnyDelete, waitForEvent } from './wait-for-event.js';
import type { BarrierStatus } from './result-schemas.js';

const MAX_COUNT = 100_000;
const decoder = new TextDecoder();
const encode = (n: number) => new TextEncoder().encode(String(n));

function checkCount(count: number): number {
  if (!Number.isInteger(count) || count < 1 || count > MAX_COUNT) {
    throw new InvalidArgumentError(
      `barrier count must be a whole number from 1 to ${MAX_COUNT}, got ${count}`,
      'invalid_count',
    );
  }
  return count;
}

/** A participant id: the caller's name for itself (a hostname), or its lease id. */
function checkId(id: string): string {
  return validateName(id, 'participant id');
}

/**
 * Arrive at barrier `name` and wait until `count` participants have arrived.
 * The participant key `/muster/barriers/<name>/waiters/<id>` is bound to `lease`
 * (a dead participant stops counting when its session ends). Once the barrier has
 * tripped it stays open: late arrivals pass at once, until `resetBarrier`.
 */
export async function enterBarrier(
  backend: Backend,
  name: string,
  count: number,
  id: string,
  lease: LeaseId,
  signal?: AbortSignal,
): Promise<BarrierStatus> {
  validateName(name, 'barrier name');
  checkCount(count);
  checkId(id);
  const waiters = layout.barrierWaiters(name);
  const ready = layout.barrierReady(name);
  const others = await backend.range({ key: waiters, prefix: true });
  const tripped = await backend.get(ready);
  for (const other of tripped ? [...others.kvs, tripped] : others.kvs) {
    const theirs = Number(decoder.decode(other.value));
    if (other.key !== waiters + id && theirs !== count) throw new LimitMismatchError(name, count, theirs);
  }
  const arrival = await backend.txn({
    compare: [],
    success: [
      { type: 'put', key: waiters + id, value: encode(count), lease },
      { type: 'get', key: waiters, prefix: true, keysOnly: true },
      { type: 'get', key: ready },
    ],
    failure: [],
  });
  const [, arrived, readyNow] = arrival.results;
  const arrivedCount = arrived?.type === 'get' ? arrived.count : 0;
  if (readyNow?.type === 'get' && readyNow.count > 0) return { name, count, arrived: arrivedCount, ready: true };
  if (arrivedCount >= count) {
    await backend.put(ready, encode(count));
    return { name, count, arrived: arrivedCount, ready: true };
  }
  await waitForEvent(backend, ready, arrival.revision + 1, (e) => e.type === 'put', signal);
  return barrierStatus(backend, name);
}

/**
 * Leave a double barrier: resolves when every participant has left (etcd's
 * DoubleBarrier algorithm: the first participant waits for the last; the others
 * leave and wait for the first). The last one out closes the barrier again.
 */
export async function leaveBarrier(backend: Backend, name: string, id: string, signal?: AbortSignal): Promise<void> {
  validateName(name, 'barrier name');
  checkId(id);
  const waiters = layout.barrierWaiters(name);
  const myKey = waiters + id;
  for (;;) {
    const range = await backend.range({ key: waiters, prefix: true, keysOnly: true });
    if (range.kvs.length === 0) return;
    const sorted = range.kvs.sort((a, b) => a.modRevision - b.modRevision);
    const lowest = sorted[0];
    const highest = sorted[sorted.length - 1];
    if (!lowest || !highest) return;
    const mine = sorted.find((kv) => kv.key === myKey);
    if (!mine) {
      // Already left (a retry), or never entered: wait for the first to go.
      await waitForAnyDelete(backend, [lowest.key], range.revision + 1, signal);
      continue;
    }
    if (sorted.length === 1) {
      await backend.txn({
        compare: [],
        success: [
          { type: 'delete', key: layout.barrierReady(name) },
          { type: 'delete', key: myKey },
        ],
        failure: [],
      });
      return;
    }
    if (lowest.key === myKey) {
      await waitForAnyDelete(backend, [highest.key], range.revision + 1, signal);
      continue;
    }
    const gone = await backend.delete({ key: myKey });
    await waitForAnyDelete(backend, [lowest.key], gone.revision + 1, signal);
    // Everyone left once the first participant did: return after a last check.
  }
}

export async function barrierStatus(backend: Backend, name: string): Promise<BarrierStatus> {
  validateName(name, 'barrier name');
  const waiters = await backend.range({ key: layout.barrierWaiters(name), prefix: true });
  const ready = await backend.get(layout.barrierReady(name));
  const first = waiters.kvs[0] ?? ready;
  return {
    name,
    count: first ? Number(decoder.decode(first.value)) : null,
    arrived: waiters.count,
    ready: ready !== null,
  };
}

/** Close a tripped barrier and forget its participants. */
export async function resetBarrier(backend: Backend, name: string): Promise<number> {
  validateName(name, 'barrier name');
  const result = await backend.delete({ key: `/muster/barriers/${name}/`, prefix: true });
  return result.deleted;
}

export type { BarrierStatus };
