import { CompactedError } from '../../core/errors.js';
import type { Duty } from './duty-runner.js';

/**
 * Keep `retention` revisions of history: compact everything older. Compacting to
 * a revision that is already compacted is a no-op, so two leaders overlapping
 * during a takeover do no harm.
 */
export function compactionDuty(options: { retention: number; intervalMs?: number }): Duty {
  return {
    name: 'compaction',
    intervalMs: options.intervalMs ?? 60_000,
    async run({ backend }) {
      const target = (await backend.revision()) - options.retention + 1;
      if (target <= (await backend.oldestRevision())) return;
      try {
        await backend.compact(target);
      } catch (error) {
        if (!(error instanceof CompactedError)) throw error;
      }
    },
  };
}
