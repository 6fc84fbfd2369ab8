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

/** Resolve when any of `keys` is deleted at or after `fromRevision`. */
export async function waitForAnyDelete(
  backend: Backend,
  keys: readonly string[],
  fromRevision: number,
  signal?: AbortSignal,
): Promise<void> {
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
