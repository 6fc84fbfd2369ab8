import type { NodeDirectory } from '../../jobs/node-directory.js';
import { PlanRunner } from '../../plans/plan-runner.js';
import type { Duty } from './duty-runner.js';

/** The plan runner (src/plans/plan-runner.ts) as a duty: one run lasts as long as the leadership. */
export function planRunnerDuty(options: { directory: NodeDirectory; tickMs?: number; restartMs?: number }): Duty {
  return {
    name: 'plans',
    intervalMs: options.restartMs ?? 1000,
    async run(context) {
      await new PlanRunner(context, {
        directory: options.directory,
        ...(options.tickMs !== undefined ? { tickMs: options.tickMs } : {}),
      }).run();
    },
  };
}
