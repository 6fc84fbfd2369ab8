/** Triggers in the keyspace: add (or replace), list, show, remove. */
import type { Backend } from '../core/backend.js';
import { MusterError } from '../core/errors.js';
import type { ErrorCode } from '../core/error-catalogue.js';
import type { Clock } from '../core/clock.js';
import { validateName } from '../core/key-path.js';
import { checkJobRequest, decodeJson, encodeJson } from './job-model.js';
import type { TriggerRecord, TriggerRequest, TriggerState } from './trigger-model.js';
import { TRIGGERS_PREFIX, TRIGGER_STATE_PREFIX, checkTrigger } from './trigger-model.js';

export class TriggerNotFoundError extends MusterError {
  readonly code: ErrorCode = 'trigger_not_found';
  constructor(readonly triggerName: string) {
    super(`no trigger is named ${JSON.stringify(triggerName)}`);
  }
}

export const triggerKeys = {
  trigger: (name: string) => `${TRIGGERS_PREFIX}${name}`,
  state: (name: string) => `${TRIGGER_STATE_PREFIX}${name}`,
};

export class TriggerStore {
  constructor(
    private readonly backend: Backend,
    private readonly clock: Clock,
  ) {}

  /** Add a trigger, or replace one of the same name; changes from now on start its job. */
  async put(request: TriggerRequest, createdBy: string): Promise<TriggerRecord> {
    const { name, on, debounceMs } = checkTrigger(request);
    checkJobRequest(request.job);
    const record: TriggerRecord = {
      name,
      on,
      debounceMs,
      job: request.job,
      createdAt: new Date(this.clock.now()).toISOString(),
      createdBy,
    };
    const revision = await this.backend.revision();
    const state: TriggerState = { revision, dueAt: null, jobs: [], queued: false };
    await this.backend.txn({
      compare: [],
      success: [
        { type: 'put', key: triggerKeys.trigger(name), value: encodeJson(record) },
        { type: 'put', key: triggerKeys.state(name), value: encodeJson(state) },
      ],
      failure: [],
    });
    return record;
  }

  async list(): Promise<TriggerRecord[]> {
    const range = await this.backend.range({ key: TRIGGERS_PREFIX, prefix: true });
    return range.kvs.map((kv) => decodeJson<TriggerRecord>(kv.value));
  }

  async get(name: string): Promise<TriggerRecord> {
    validateName(name, 'trigger name');
    const kv = await this.backend.get(triggerKeys.trigger(name));
    if (!kv) throw new TriggerNotFoundError(name);
    const state = await this.backend.get(triggerKeys.state(name));
    const jobs = state ? decodeJson<TriggerState>(state.value).jobs : [];
    return { ...decodeJson<TriggerRecord>(kv.value), jobs };
  }

  async remove(name: string): Promise<void> {
    validateName(name, 'trigger name');
    const result = await this.backend.txn({
      compare: [{ key: triggerKeys.trigger(name), target: 'version', op: '>', value: 0 }],
      success: [
        { type: 'delete', key: triggerKeys.trigger(name) },
        { type: 'delete', key: triggerKeys.state(name) },
      ],
      failure: [],
    });
    if (!result.succeeded) throw new TriggerNotFoundError(name);
  }
}
