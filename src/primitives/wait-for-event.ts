import type { Backend, WatchEvent } from '../core/backend.js';
import { CancelledError } from '../core/errors.js';

/**
 * Resolve with the first event on `key` (at or after `fromRevision`) that
 * satisfies `accept`. Rejects with `signal.reason` when the signal aborts.
 */
export async function waitForEvent(
  backend: Backend,
  key: string,
  fromRevision: number,
  accept: (event: WatchEvent) => boolean,
  signal?: AbortSignal,
): Promise<WatchEvent> {
  throwIfAborted(signal);
  const watch = backend.watch(key, { fromRevision });
  const onAbort = () => watch.close();
  signal?.addEventListener('abort', onAbort, { once: true });
  try {
    for await (const batch of watch) {
      for (const event of batch.events) if (accept(event)) return event;
    }
    throwIfAborted(signal);
    throw new CancelledError(`the watch of ${key} ended`);
  } finally {
    signal?.removeEventListener('abort', onAbort);
    watch.close();
  }
}

/** Beyond this many keys, one watch of their folder replaces a watch per key. */
const MAX_KEY_WATCHES = 8;

/**
 * Resolve when any of `keys` is deleted at or after `fromRevision`. A few keys get
 * a watch each (a waiter sees only the keys it waits on); many keys (the slots
 * ahead in a large semaphore) share one watch of their common folder, filtered.
 */
export async function waitForAnyDelete(
  backend: Backend,
  keys: readonly string[],
  fromRevision: number,
  signal?: AbortSignal,
): Promise<void> {
  if (keys.length > MAX_KEY_WATCHES) {
    const wanted = new Set(keys);
    const folder = commonFolder(keys);
    throwIfAborted(signal);
    const watch = backend.watch(folder, { prefix: true, fromRevision });
    const onAbort = () => watch.close();
    signal?.addEventListener('abort', onAbort, { once: true });
    try {
      for await (const batch of watch) {
        if (batch.events.some((e) => e.type === 'delete' && wanted.has(e.kv.key))) return;
      }
      throwIfAborted(signal);
      throw new CancelledError(`the watch of ${folder} ended`);
    } finally {
      signal?.removeEventListener('abort', onAbort);
      watch.close();
    }
  }
  const done = new AbortController();
  const both = signal ? AbortSignal.any([signal, done.signal]) : done.signal;
  try {
    await Promise.race(keys.map((key) => waitForEvent(backend, key, fromRevision, (e) => e.type === 'delete', both)));
  } finally {
    done.abort();
  }
}

/** Throw the signal's reason (an Error) if it has aborted. */
export function throwIfAborted(signal?: AbortSignal): void {
  if (!signal?.aborted) return;
  const reason: unknown = signal.reason;
  throw reason instanceof Error ? reason : new CancelledError();
}

/** The longest folder (ending in `/`) that holds every key. */
function commonFolder(keys: readonly string[]): string {
  let prefix = keys[0] ?? '/';
  for (const key of keys) while (!key.startsWith(prefix)) prefix = prefix.slice(0, -1);
  return prefix.slice(0, prefix.lastIndexOf('/') + 1) || '/';
}
