/**
 * The webhook delivery duty's work. Each hook is a cursor over the revision history:
 * its own loop watches its prefix from the cursor, POSTs one event at a time in
 * revision order, retries a failure with exponential backoff and jitter (1 s to
 * 5 min) until it succeeds, and saves the cursor (fenced by the duties' leadership)
 * as it advances: a restarted or new leader goes on from the saved cursor, so every
 * change is delivered at least once. One hook's slow or dead endpoint delays no other.
 */
import { createHmac } from 'node:crypto';
import type { KeyValue, Watch, WatchEvent } from '../core/backend.js';
import { backoffDelay } from '../core/backoff.js';
import { sleep } from '../core/clock.js';
import { CompactedError } from '../core/errors.js';
import type { DutyContext } from '../server/duties/duty-runner.js';
import { hookFormat } from './formats.js';
import type { HookPayload } from './formats.js';
import type { HookDef, HookState } from './hook-model.js';
import { FAILING_AFTER, HOOKS_PREFIX, LOG_SIZE, decodeJson, encodeJson, hookKeys } from './hook-model.js';
import { HookPoster } from './hook-poster.js';
import { initialState } from './hook-store.js';

export interface HookDeliveryOptions {
  /** Per POST. @default 10 s */
  readonly timeoutMs?: number;
  /** A hook failing this long is paused. @default 24 h */
  readonly retryLimitMs?: number;
  /** How often hooks added, paused or removed are noticed. @default 250 ms */
  readonly syncMs?: number;
}

export const DEFAULT_HOOK_TIMEOUT_MS = 10_000;
export const DEFAULT_HOOK_RETRY_LIMIT_MS = 86_400_000;
const RETRY = { initialMs: 1000, maxMs: 300_000 };
/** How often a quiet hook asks its watch for progress, so its cursor (and compaction) moves on. */
const PROGRESS_MS = 5000;
const decoder = new TextDecoder();
/** How long state changes gather before one write saves them all. */
const SAVE_DELAY_MS = 50;

export class HookDeliverer {
  private readonly loops = new Map<string, HookLoop>();

  constructor(
    private readonly context: DutyContext,
    private readonly options: HookDeliveryOptions = {},
  ) {}

  async run(): Promise<void> {
    const { signal, runtime } = this.context;
    try {
      while (!signal.aborted) {
        await this.sync();
        await sleep(runtime.clock, this.options.syncMs ?? 250, signal).catch(() => undefined);
      }
    } finally {
      await Promise.all([...this.loops.values()].map((loop) => loop.stop()));
      this.loops.clear();
    }
  }

  private async sync(): Promise<void> {
    const range = await this.context.backend.range({ key: HOOKS_PREFIX, prefix: true });
    const defs = new Map<string, KeyValue>();
    const states = new Map<string, KeyValue>();
    const secrets = new Map<string, KeyValue>();
    for (const kv of range.kvs) {
      const rest = kv.key.slice(HOOKS_PREFIX.length);
      const slash = rest.indexOf('/');
      const name = rest.slice(0, slash);
      const part = rest.slice(slash + 1);
      (part === 'def' ? defs : part === 'state' ? states : part === 'secret' ? secrets : new Map()).set(name, kv);
    }
    for (const [name, loop] of this.loops) {
      const kv = defs.get(name);
      const def = kv ? decodeJson<HookDef>(kv.value) : null;
      if (!kv || !def || kv.createRevision !== loop.createRevision || def.paused) {
        this.loops.delete(name);
        await loop.stop();
      } else {
        loop.def = def;
      }
    }
    for (const [name, kv] of defs) {
      if (this.loops.has(name)) continue;
      const def = decodeJson<HookDef>(kv.value);
      if (def.paused) continue;
      const stateKv = states.get(name);
      const state = stateKv ? decodeJson<HookState>(stateKv.value) : initialState(range.revision + 1);
      const secretKv = secrets.get(name);
      const loop = new HookLoop(
        this.context,
        this.options,
        def,
        kv.createRevision,
        state,
        secretKv ? decoder.decode(secretKv.value) : null,
      );
      this.loops.set(name, loop);
      loop.start();
    }
  }
}

/** Thrown inside a loop when its hook is paused after failing too long. */
class PausedSignal extends Error {}

class HookLoop {
  private readonly controller = new AbortController();
  private readonly signal: AbortSignal;
  private readonly poster: HookPoster;
  private running: Promise<void> | null = null;
  private saving: Promise<void> | null = null;
  private dirty = false;
  private watch: Watch | null = null;

  constructor(
    private readonly context: DutyContext,
    private readonly options: HookDeliveryOptions,
    public def: HookDef,
    readonly createRevision: number,
    private readonly state: HookState,
    private readonly secret: string | null,
  ) {
    this.signal = AbortSignal.any([context.signal, this.controller.signal]);
    this.poster = new HookPoster(def.url, context.runtime.clock, options.timeoutMs ?? DEFAULT_HOOK_TIMEOUT_MS);
  }

  start(): void {
    this.running = this.run().catch(() => undefined);
  }

  async stop(): Promise<void> {
    this.controller.abort();
    this.watch?.close();
    await this.running;
    await this.flush();
    this.poster.close();
  }

  private async run(): Promise<void> {
    const { clock, random } = this.context.runtime;
    let failures = 0;
    while (!this.signal.aborted) {
      if (this.state.status === 'paused') {
        if (this.def.resumes > this.state.resumes) {
          Object.assign(this.state, { status: 'active', failures: 0, failingSince: null, resumes: this.def.resumes });
          this.save();
        } else {
          await sleep(clock, this.options.syncMs ?? 250, this.signal).catch(() => undefined);
          continue;
        }
      }
      try {
        await this.follow();
        failures = 0;
      } catch (error) {
        if (this.signal.aborted) break;
        if (error instanceof PausedSignal) continue;
        if (error instanceof CompactedError) {
          // History the hook had not delivered is gone (held only up to hookHistoryBound): jump, visibly.
          const to = error.oldestRevision - 1;
          this.state.missed = { from: this.state.cursor.revision, to };
          this.state.cursor = { revision: error.oldestRevision, next: 0 };
          this.save();
          continue;
        }
        await sleep(clock, backoffDelay(failures++, random, { initialMs: 100, maxMs: 5000 }), this.signal).catch(
          () => undefined,
        );
      }
    }
  }

  /** Watch from the cursor and deliver until aborted (or the watch fails). */
  private async follow(): Promise<void> {
    const { backend, runtime } = this.context;
    const watch = backend.watch(this.def.prefix, {
      prefix: true,
      fromRevision: this.state.cursor.revision,
      prevKv: this.def.format !== 'json',
    });
    this.watch = watch;
    const progress = setIntervalOnClock(runtime.clock, PROGRESS_MS, () => watch.requestProgress(), this.signal);
    const ownKeys = !this.def.prefix.startsWith('/muster/');
    try {
      for await (const batch of watch) {
        if (this.signal.aborted) break;
        let revision = -1;
        let index = 0;
        for (const event of batch.events) {
          if (event.revision !== revision) {
            revision = event.revision;
            index = 0;
          } else {
            index++;
          }
          const { cursor } = this.state;
          if (revision < cursor.revision || (revision === cursor.revision && index < cursor.next)) continue;
          const key = event.kv.key;
          // Secrets and tokens never leave; the server's own keys only for a hook on /muster/.
          const skip = key.startsWith('/muster/auth/') || (ownKeys && key.startsWith('/muster/'));
          if (!skip && (this.def.events as string[]).includes(event.type)) {
            const payload = await this.format(event, index);
            if (payload) await this.deliver(payload, event, index);
          }
          this.state.cursor = { revision, next: index + 1 };
        }
        const last = batch.events.at(-1);
        if (last) this.state.cursor = { revision: last.revision + 1, next: 0 };
        else if (batch.progress !== undefined && batch.progress + 1 > this.state.cursor.revision) {
          this.state.cursor = { revision: batch.progress + 1, next: 0 };
        }
        this.save();
      }
    } finally {
      progress();
      watch.close();
      if (this.watch === watch) this.watch = null;
    }
    if (!this.signal.aborted) throw new Error('watch ended');
  }

  private async format(event: WatchEvent, index: number): Promise<HookPayload | null> {
    const formatter = hookFormat(this.def.format);
    if (!formatter) throw new Error(`unknown hook format ${this.def.format}`);
    return formatter(event, { backend: this.context.backend, hook: this.def.name, index });
  }

  /** POST until a 2xx; throws PausedSignal when failing past the retry limit, or on abort. */
  private async deliver(payload: HookPayload, event: WatchEvent, index: number): Promise<void> {
    const { clock, random } = this.context.runtime;
    const headers: Record<string, string> = {
      'content-type': payload.contentType,
      'x-muster-delivery': `${this.def.name}:${event.revision}:${index}`,
      'x-muster-revision': String(event.revision),
      'x-muster-hook': this.def.name,
      'x-muster-event': event.type,
    };
    if (this.secret !== null) {
      headers['x-muster-signature-256'] =
        `sha256=${createHmac('sha256', this.secret).update(payload.body).digest('hex')}`;
    }
    const { state } = this;
    for (let attempt = 1; ; attempt++) {
      if (this.signal.aborted) throw this.signal.reason;
      const started = clock.now();
      const t0 = performance.now();
      const outcome = await this.poster.post(payload.body, headers, this.signal);
      if (this.signal.aborted) throw this.signal.reason;
      state.log.push([started, outcome.status, Math.round(performance.now() - t0), attempt, outcome.error]);
      if (state.log.length > LOG_SIZE) state.log.splice(0, state.log.length - LOG_SIZE);
      if (outcome.error === null) {
        state.delivered++;
        if (state.failures > 0 || state.status !== 'active') {
          Object.assign(state, { failures: 0, failingSince: null, status: 'active', lastError: null });
          this.save();
        }
        return;
      }
      state.failures++;
      state.failingSince ??= started;
      state.lastError = outcome.error;
      if (state.failures >= FAILING_AFTER) state.status = 'failing';
      if (clock.now() - state.failingSince >= (this.options.retryLimitMs ?? DEFAULT_HOOK_RETRY_LIMIT_MS)) {
        state.status = 'paused';
        this.save();
        throw new PausedSignal();
      }
      this.save();
      await sleep(clock, backoffDelay(attempt - 1, random, RETRY), this.signal);
    }
  }

  /**
   * Save the state soon: within SAVE_DELAY_MS, one write in flight at a time, the
   * latest state wins (a burst of deliveries costs one write, not one each; a crash
   * in between re-delivers at most those, which at-least-once allows).
   */
  private save(): void {
    this.dirty = true;
    this.saving ??= sleep(this.context.runtime.clock, SAVE_DELAY_MS)
      .then(() => this.writeLoop())
      .finally(() => {
        this.saving = null;
      });
  }

  private async writeLoop(): Promise<void> {
    while (this.dirty) {
      this.dirty = false;
      const { backend, fence } = this.context;
      try {
        const result = await backend.txn({
          compare: [
            fence,
            { key: hookKeys.def(this.def.name), target: 'createRevision', op: '=', value: this.createRevision },
          ],
          success: [{ type: 'put', key: hookKeys.state(this.def.name), value: encodeJson(this.state) }],
          failure: [],
        });
        // Removed, replaced, or no longer leading: this loop's work is over.
        if (!result.succeeded) this.controller.abort();
      } catch {
        // The next save writes the latest state; a lost one costs re-deliveries only.
      }
    }
  }

  private async flush(): Promise<void> {
    while (this.saving) await this.saving;
  }
}

/** Call `fn` every `ms` on the clock until the returned function is called or `signal` aborts. */
function setIntervalOnClock(
  clock: DutyContext['runtime']['clock'],
  ms: number,
  fn: () => void,
  signal: AbortSignal,
): () => void {
  let handle = clock.setTimeout(tick, ms);
  let stopped = false;
  function tick(): void {
    if (stopped || signal.aborted) return;
    fn();
    handle = clock.setTimeout(tick, ms);
  }
  return () => {
    stopped = true;
    clock.clearTimeout(handle);
  };
}

/**
 * The oldest revision an active hook has not delivered, but no older than `bound`
 * revisions behind `head` (past it a hook jumps forward and records `missed`): the
 * compaction duty keeps history from here.
 */
export async function hookHistoryHold(
  backend: DutyContext['backend'],
  head: number,
  bound: number,
): Promise<number | null> {
  const range = await backend.range({ key: HOOKS_PREFIX, prefix: true });
  const paused = new Set<string>();
  const cursors = new Map<string, HookState>();
  for (const kv of range.kvs) {
    const rest = kv.key.slice(HOOKS_PREFIX.length);
    const name = rest.slice(0, rest.indexOf('/'));
    if (rest.endsWith('/def') && decodeJson<HookDef>(kv.value).paused) paused.add(name);
    if (rest.endsWith('/state')) cursors.set(name, decodeJson<HookState>(kv.value));
  }
  let oldest: number | null = null;
  for (const [name, state] of cursors) {
    if (paused.has(name) || state.status === 'paused') continue;
    oldest = Math.min(oldest ?? Infinity, state.cursor.revision);
  }
  return oldest === null ? null : Math.max(oldest, head - bound + 1);
}
