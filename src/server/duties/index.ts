export { DutyRunner } from './duty-runner.js';
export type { Duty, DutyContext, DutyRunnerOptions, DutyRunnerState } from './duty-runner.js';
export { compactionDuty } from './compaction-duty.js';
