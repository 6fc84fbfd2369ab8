import { TriggerRunner } from '../../jobs/trigger-runner.js';
import { JobScheduler } from '../../jobs/job-scheduler.js';
import { JobStore } from '../../jobs/job-store.js';
import { FINAL_JOB_STATES } from '../../jobs/job-model.js';
import type { NodeDirectory } from '../../jobs/node-directory.js';
import type { Duty } from './duty-runner.js';

/**
 * The job scheduler (src/jobs/job-scheduler.ts) as a duty: one run lasts as long
 * as the leadership (it watches the jobs), and starts again after a failure.
 */
export function jobSchedulerDuty(options: { directory: NodeDirectory; tickMs?: number; restartMs?: number }): Duty {
  return {
    name: 'job-scheduler',
    intervalMs: options.restartMs ?? 1000,
    async run(context) {
      await new JobScheduler(context, {
        directory: options.directory,
        ...(options.tickMs !== undefined ? { tickMs: options.tickMs } : {}),
      }).run();
    },
  };
}

/** Delete jobs that finished more than `retentionMs` ago (their output and assignments with them). */
export function jobRetentionDuty(options: { retentionMs: number; intervalMs?: number }): Duty {
  return {
    name: 'job-retention',
    intervalMs: options.intervalMs ?? 60_000,
    async run({ backend, fence, runtime, signal }) {
      const store = new JobStore(backend, runtime);
      const cutoff = runtime.clock.now() - options.retentionMs;
      for (const id of await store.ids()) {
        if (signal.aborted) return;
        const job = await store.get(id);
        if (!job || !FINAL_JOB_STATES.has(job.record.state)) continue;
        const finished = Date.parse(job.record.finishedAt ?? job.record.createdAt);
        if (finished < cutoff) await store.remove(job.record, fence);
      }
    },
  };
}

/** Triggers (src/jobs/trigger-runner.ts): a change under a prefix starts a job, debounced. */
export function triggerDuty(options: { tickMs?: number; restartMs?: number } = {}): Duty {
  return {
    name: 'triggers',
    intervalMs: options.restartMs ?? 1000,
    async run(context) {
      await new TriggerRunner(context, options.tickMs ?? 250).run();
    },
  };
}
