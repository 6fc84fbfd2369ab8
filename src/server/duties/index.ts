export { DutyRunner } from './duty-runner.js';
export type { Duty, DutyContext, DutyRunnerOptions, DutyRunnerState } from './duty-runner.js';
export { compactionDuty } from './compaction-duty.js';
export { heartbeatDuty, DUTIES_LEADER_KEY } from './heartbeat-duty.js';
