/**
 * Triggers: a change under a prefix starts a job ("the pokeable chef-client").
 * `/muster/triggers/<name>` holds the trigger, `/muster/trigger-state/<name>` what
 * the trigger duty has done with it (the revision it has seen, its last job,
 * whether one more run is due), so a restarted server goes on where it was.
 */
import Type from 'typebox';
import type { Static } from 'typebox';
import { parseDurationWithin } from '../core/duration.js';
import { validateName, validatePrefix } from '../core/key-path.js';
import { JobRequest } from './job-model.js';

export const TRIGGERS_PREFIX = '/muster/triggers/';
export const TRIGGER_STATE_PREFIX = '/muster/trigger-state/';

/** `POST /v1/triggers`. */
export const TriggerRequest = Type.Object(
  {
    name: Type.String({ minLength: 1, maxLength: 128 }),
    /** The prefix whose changes start the job. */
    on: Type.String({ minLength: 1, maxLength: 1024 }),
    /** Changes within this of each other start one run. @default 10s */
    debounce: Type.Optional(Type.Union([Type.String({ maxLength: 32 }), Type.Number({ minimum: 0 })])),
    /** The job to start. */
    job: JobRequest,
  },
  { additionalProperties: false },
);
export type TriggerRequest = Static<typeof TriggerRequest>;

export const TriggerRecord = Type.Object({
  name: Type.String(),
  on: Type.String(),
  debounceMs: Type.Integer(),
  job: JobRequest,
  createdAt: Type.String(),
  createdBy: Type.String(),
  /** Filled in by `GET`: the jobs it started, newest last (at most 20). */
  jobs: Type.Optional(Type.Array(Type.String())),
});
export type TriggerRecord = Static<typeof TriggerRecord>;

export interface TriggerState {
  /** Changes up to this revision have been seen. */
  revision: number;
  /** When the debounce window of pending changes ends (ms since the epoch), or null. */
  dueAt: number | null;
  /** The job of the last run, and the ones before (newest last, at most 20). */
  jobs: string[];
  /** A run is due once the one in progress ends. */
  queued: boolean;
}

export function checkTrigger(request: TriggerRequest): { name: string; on: string; debounceMs: number } {
  return {
    name: validateName(request.name, 'trigger name'),
    on: validatePrefix(request.on),
    debounceMs:
      request.debounce === undefined
        ? 10_000
        : parseDurationWithin(request.debounce, 'debounce', { aboveZero: false, maxMs: 86_400_000, max: '1d' }),
  };
}
