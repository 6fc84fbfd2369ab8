import { pruneAudit } from '../../security/audit-log.js';
import type { Duty } from './duty-runner.js';

/**
 * Delete audit records older than `retentionMs`, through deletes fenced by the
 * duties' leadership. Runs every minute by default.
 */
export function auditRetentionDuty(options: { retentionMs: number; intervalMs?: number }): Duty {
  return {
    name: 'audit-retention',
    intervalMs: options.intervalMs ?? 60_000,
    async run({ backend, fence, runtime }) {
      await pruneAudit(backend, runtime.clock.now() - options.retentionMs, fence);
    },
  };
}
