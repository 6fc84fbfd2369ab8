import { CompactedError } from '../../core/errors.js';
import type { Backend } from '../../core/backend.js';
import type { Duty } from './duty-runner.js';

/** At most this many revisions of history go in one `compact()` call, so no call stalls the store. */
export const COMPACTION_STEP = 1_000;

/**
 * Keep `retention` revisions of history: compact everything older, on every store
 * (the only compaction there is). Once history exceeds the retention by a tenth, it
 * compacts toward the target in steps of `step` revisions, yielding to other work
 * between steps. Compacting to a revision that is already compacted is a no-op, so
 * two leaders overlapping during a takeover do no harm; the run stops between steps
 * when leadership is lost.
 */
export function compactionDuty(options: {
  retention: number;
  intervalMs?: number;
  step?: number;
  /** The oldest revision something still needs (webhooks not yet delivered), or null: history from it is kept. */
  hold?: (backend: Backend, head: number) => Promise<number | null>;
}): Duty {
  const step = options.step ?? COMPACTION_STEP;
  const slack = Math.max(1, Math.floor(options.retention / 10));
  return {
    name: 'compaction',
    intervalMs: options.intervalMs ?? 10_000,
    async run({ backend, signal }) {
      const head = await backend.revision();
      const held = options.hold ? await options.hold(backend, head) : null;
      const target = Math.min(head - options.retention + 1, held ?? Infinity);
      let oldest = await backend.oldestRevision();
      if (target - oldest < slack) return;
      while (oldest < target && !signal.aborted) {
        const next = Math.min(target, oldest + step);
        try {
          await backend.compact(next);
        } catch (error) {
          if (!(error instanceof CompactedError)) throw error;
        }
        oldest = next;
        await new Promise((resolve) => setImmediate(resolve));
      }
    },
  };
}
