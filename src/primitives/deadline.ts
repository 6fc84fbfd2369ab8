import type { Clock } from '../core/clock.js';
import { TimeoutError } from '../core/errors.js';

/**
 * A signal that aborts with a TimeoutError after `ms` on `clock`, or when
 * `parent` aborts (with the parent's reason). `dispose()` clears the timer.
 */
export function deadlineSignal(
  clock: Clock,
  ms: number,
  what: string,
  parent?: AbortSignal,
): { signal: AbortSignal; dispose: () => void } {
  const controller = new AbortController();
  const timer = clock.setTimeout(
    () => controller.abort(new TimeoutError(`${what} timed out after ${formatMs(ms)}`)),
    ms,
  );
  const onParent = () => controller.abort(parent?.reason);
  if (parent?.aborted) onParent();
  else parent?.addEventListener('abort', onParent, { once: true });
  return {
    signal: controller.signal,
    dispose: () => {
      clock.clearTimeout(timer);
      parent?.removeEventListener('abort', onParent);
    },
  };
}

function formatMs(ms: number): string {
  return ms % 1000 === 0 ? `${ms / 1000}s` : `${ms}ms`;
}
