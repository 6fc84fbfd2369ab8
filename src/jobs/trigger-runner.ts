/**
 * The trigger duty's work: for each trigger, a watch of its prefix from the
 * revision it has seen; the first change opens a debounce window, and when it
 * closes one job starts, unless the trigger's last job still runs: then exactly
 * one more run is queued for when it ends (further changes meanwhile add none).
 * The state (revision seen, window, last jobs, queued) is written to the
 * keyspace, fenced by the duties' leadership, so a restart goes on from there.
 */
import type { Watch } from '../core/backend.js';
import { sleep } from '../core/clock.js';
import type { DutyContext } from '../server/duties/duty-runner.js';
import { FINAL_JOB_STATES, decodeJson, encodeJson } from './job-model.js';
import { JobStore } from './job-store.js';
import type { TriggerRecord, TriggerState } from './trigger-model.js';
import { TRIGGERS_PREFIX } from './trigger-model.js';
import { triggerKeys } from './trigger-store.js';

interface Armed {
  record: TriggerRecord;
  state: TriggerState;
  watch: Watch;
}

/** Jobs kept in a trigger's state. */
const KEEP_JOBS = 20;

export class TriggerRunner {
  private readonly armed = new Map<string, Armed>();
  private readonly jobs: JobStore;

  constructor(
    private readonly context: DutyContext,
    private readonly tickMs: number,
  ) {
    this.jobs = new JobStore(context.backend, context.runtime);
  }

  async run(): Promise<void> {
    const { signal } = this.context;
    try {
      while (!signal.aborted) {
        await this.sync();
        await this.tick();
        await sleep(this.context.runtime.clock, this.tickMs, signal).catch(() => undefined);
      }
    } finally {
      for (const a of this.armed.values()) a.watch.close();
      this.armed.clear();
    }
  }

  /** Arm new triggers, disarm removed ones, pick up replaced ones. */
  private async sync(): Promise<void> {
    const { backend } = this.context;
    const range = await backend.range({ key: TRIGGERS_PREFIX, prefix: true });
    const seen = new Set<string>();
    for (const kv of range.kvs) {
      const record = decodeJson<TriggerRecord>(kv.value);
      seen.add(record.name);
      const current = this.armed.get(record.name);
      if (current && current.record.createdAt === record.createdAt && current.record.on === record.on) {
        current.record = record;
        continue;
      }
      current?.watch.close();
      const stateKv = await backend.get(triggerKeys.state(record.name));
      const state: TriggerState = stateKv
        ? decodeJson<TriggerState>(stateKv.value)
        : { revision: range.revision, dueAt: null, jobs: [], queued: false };
      this.arm(record, state);
    }
    for (const [name, a] of this.armed) {
      if (!seen.has(name)) {
        a.watch.close();
        this.armed.delete(name);
      }
    }
  }

  private arm(record: TriggerRecord, state: TriggerState): void {
    const watch = this.context.backend.watch(record.on, { prefix: true, fromRevision: state.revision + 1 });
    const armed: Armed = { record, state, watch };
    this.armed.set(record.name, armed);
    const own = !record.on.startsWith('/muster/');
    void (async () => {
      try {
        for await (const batch of watch) {
          // The server's own keys (jobs, assignments) never trigger, or a trigger on "/" would feed itself.
          const changes = batch.events.filter((e) => !own || !e.kv.key.startsWith('/muster/'));
          const last = batch.events.at(-1);
          if (last) armed.state.revision = last.revision;
          if (changes.length > 0 && armed.state.dueAt === null) {
            armed.state.dueAt = this.context.runtime.clock.now() + armed.record.debounceMs;
            await this.save(armed).catch(() => undefined);
          }
        }
      } catch {
        // Compacted or lost: the next sync arms it again from its saved state.
        if (this.armed.get(record.name) === armed) this.armed.delete(record.name);
      }
    })();
  }

  private async tick(): Promise<void> {
    const now = this.context.runtime.clock.now();
    for (const armed of this.armed.values()) {
      const { state } = armed;
      const due = state.dueAt !== null && state.dueAt <= now;
      if (!due && !state.queued) continue;
      const running = await this.lastJobRunning(state);
      if (due) {
        state.dueAt = null;
        if (running) state.queued = true;
        else await this.start(armed);
        await this.save(armed);
      } else if (state.queued && !running) {
        state.queued = false;
        await this.start(armed);
        await this.save(armed);
      }
    }
  }

  private async lastJobRunning(state: TriggerState): Promise<boolean> {
    const last = state.jobs.at(-1);
    if (last === undefined) return false;
    const job = await this.jobs.get(last);
    return job !== null && !FINAL_JOB_STATES.has(job.record.state);
  }

  private async start(armed: Armed): Promise<void> {
    const job = await this.jobs.create(armed.record.job, `trigger:${armed.record.name}`, this.context.fence);
    armed.state.jobs = [...armed.state.jobs, job.id].slice(-KEEP_JOBS);
  }

  private async save(armed: Armed): Promise<void> {
    const { backend, fence } = this.context;
    const key = triggerKeys.trigger(armed.record.name);
    await backend.txn({
      compare: [fence, { key, target: 'version', op: '>', value: 0 }],
      success: [{ type: 'put', key: triggerKeys.state(armed.record.name), value: encodeJson(armed.state) }],
      failure: [],
    });
  }
}
