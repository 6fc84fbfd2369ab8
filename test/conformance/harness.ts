import { randomBytes } from 'node:crypto';

import type { Backend, Watch, WatchBatch, WatchEvent } from '../../src/core/backend.js';

/**
 * What the conformance suites need from a backend under test. Each backend's test
 * file builds one per test; the suites never know which backend they run on.
 */
export interface BackendHarness {
  readonly backend: Backend;
  /**
   * Let `ms` milliseconds pass for leases: a ManualClock advance on SQLite, a real
   * sleep on etcd. Expiry effects may still land a little later: assert them with
   * `eventually`.
   */
  advance(ms: number): Promise<void>;
  close(): Promise<void>;
}

export interface HarnessOptions {
  /** The shortest lease TTL (seconds) the backend honours exactly; etcd rounds short TTLs up. */
  readonly minLeaseTtl: number;
  /** Whether watches answer requestProgress (etcd's do not: see EtcdWatch). @default true */
  readonly progress?: boolean;
}

export type MakeHarness = () => Promise<BackendHarness>;

/** Poll `check` until it stops throwing, or throw its last error after `timeoutMs`. */
export async function eventually<T>(check: () => Promise<T> | T, timeoutMs = 10_000, intervalMs = 20): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await check();
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await new Promise((resolve) => setTimeout(resolve, intervalMs));
    }
  }
}

/** UTF-8 bytes of a string. */
export function bytes(text: string): Uint8Array {
  return new TextEncoder().encode(text);
}

/** A value read back as UTF-8 text. */
export function text(value: Uint8Array): string {
  return Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString('utf8');
}

/** A value read back as hex, so binary mismatches show readably in a diff. */
export function hex(value: Uint8Array): string {
  return Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString('hex');
}

/** A key prefix no other test uses, such as `/t/3f9a0c1d/`. */
export function uniquePrefix(): string {
  return `/t/${randomBytes(6).toString('hex')}/`;
}

/**
 * Call `action` and return what it threw (or rejected with), checking that it is an
 * instance of `type`. Fails when `action` succeeds.
 */
export async function rejection<E>(
  action: () => Promise<unknown>,
  type: abstract new (...args: never[]) => E,
): Promise<E> {
  let caught: unknown;
  try {
    await action();
  } catch (err) {
    caught = err;
  }
  if (caught === undefined) throw new Error(`expected a ${type.name}, but the call succeeded`);
  if (!(caught instanceof type)) {
    throw new Error(`expected a ${type.name}, got ${String(caught)}`, { cause: caught });
  }
  return caught;
}

/**
 * Reads a Watch in the background, keeping every batch, so a test can await "n
 * events have arrived" or "the iteration ended" instead of sleeping.
 */
export class WatchRecorder {
  readonly batches: WatchBatch[] = [];
  /** What the iterator threw, if it did. */
  error: unknown = undefined;
  ended = false;
  /** Settles (never rejects) once the iteration has ended, normally or by an error. */
  readonly finished: Promise<void>;
  private readonly listeners = new Set<() => void>();

  constructor(readonly watch: Watch) {
    this.finished = this.consume();
  }

  /** Every event seen so far, in delivery order. */
  get events(): WatchEvent[] {
    return this.batches.flatMap((batch) => batch.events);
  }

  close(): void {
    this.watch.close();
  }

  /** Wait until at least `count` events have arrived; returns the first `count`. */
  async waitForEvents(count: number, timeoutMs = 10_000): Promise<WatchEvent[]> {
    await this.waitUntil(() => this.events.length >= count, `${count} events`, timeoutMs);
    return this.events.slice(0, count);
  }

  /** Wait until an event satisfies `match`; returns it. */
  async waitForEvent(match: (event: WatchEvent) => boolean, timeoutMs = 10_000): Promise<WatchEvent> {
    let found: WatchEvent | undefined;
    await this.waitUntil(
      () => {
        found = this.events.find(match);
        return found !== undefined;
      },
      'a matching event',
      timeoutMs,
    );
    if (found === undefined) throw new Error('unreachable: waitUntil resolved without a match');
    return found;
  }

  /** Wait until the iteration has ended (returned or thrown). */
  async waitForEnd(timeoutMs = 10_000): Promise<void> {
    await this.waitUntil(() => this.ended, 'the end of the iteration', timeoutMs, true);
  }

  private async consume(): Promise<void> {
    try {
      for await (const batch of this.watch) {
        this.batches.push(batch);
        this.notify();
      }
    } catch (err) {
      this.error = err;
    } finally {
      this.ended = true;
      this.notify();
    }
  }

  private notify(): void {
    for (const listener of [...this.listeners]) listener();
  }

  private waitUntil(condition: () => boolean, what: string, timeoutMs: number, endIsOk = false): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const describe = (): string =>
        `${this.events.length} events so far (${this.events.map((e) => `${e.type} ${e.kv.key}@${e.revision}`).join(', ')})`;
      const check = (): void => {
        if (condition()) {
          finish();
          resolve();
        } else if (this.ended && !endIsOk) {
          finish();
          const reason = this.error === undefined ? 'the watch ended' : `the watch failed: ${String(this.error)}`;
          reject(new Error(`waiting for ${what}: ${reason}; ${describe()}`, { cause: this.error }));
        }
      };
      const timer = setTimeout(() => {
        finish();
        reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}; ${describe()}`));
      }, timeoutMs);
      const finish = (): void => {
        clearTimeout(timer);
        this.listeners.delete(check);
      };
      this.listeners.add(check);
      check();
    });
  }
}
