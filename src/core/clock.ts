/**
 * Time comes in through a Clock so that tests (and the simulator) can expire a
 * lease in microseconds instead of seconds.
 */
export interface Clock {
  /** Milliseconds since the epoch. */
  now(): number;
  setTimeout(callback: () => void, ms: number): TimerHandle;
  clearTimeout(handle: TimerHandle): void;
}

export interface TimerHandle {
  readonly id: number;
}

/** The real clock. Its timers do not keep the process alive. */
export const systemClock: Clock = (() => {
  const timers = new Map<number, NodeJS.Timeout>();
  let next = 1;
  return {
    now: () => Date.now(),
    setTimeout(callback, ms) {
      const id = next++;
      const t = setTimeout(
        () => {
          timers.delete(id);
          callback();
        },
        Math.max(0, ms),
      );
      // Node: a pending timer does not keep the process alive. (Browsers have no unref.)
      (t as { unref?: () => void }).unref?.();
      timers.set(id, t);
      return { id };
    },
    clearTimeout(handle) {
      const t = timers.get(handle.id);
      if (t) {
        clearTimeout(t);
        timers.delete(handle.id);
      }
    },
  };
})();

/** A timer of a ManualClock: due at `at`; among equals, the one set first (lower id) fires first. */
interface ManualTimer {
  readonly id: number;
  readonly at: number;
  readonly callback: () => void;
}

/**
 * A clock that moves only when told to; timers fire during `advance()`. Timers
 * are kept in a binary heap ordered by (due time, id), so finding the next one
 * costs log n however many are set (a simulation keeps hundreds); a cleared
 * timer leaves the set at once and its heap entry is dropped when it surfaces.
 */
export class ManualClock implements Clock {
  private current: number;
  private nextId = 1;
  private readonly timers = new Map<number, ManualTimer>();
  private readonly heap: ManualTimer[] = [];

  constructor(start = 1_700_000_000_000) {
    this.current = start;
  }

  now(): number {
    return this.current;
  }

  setTimeout(callback: () => void, ms: number): TimerHandle {
    const id = this.nextId++;
    const timer: ManualTimer = { id, at: this.current + Math.max(0, ms), callback };
    this.timers.set(id, timer);
    this.push(timer);
    return { id };
  }

  clearTimeout(handle: TimerHandle): void {
    if (!this.timers.delete(handle.id)) return;
    // Cleared entries wait in the heap until they surface; rebuild it when they are most of it.
    if (this.heap.length > 64 && this.heap.length > 2 * this.timers.size) {
      this.heap.length = 0;
      for (const timer of this.timers.values()) this.push(timer);
    }
  }

  /** When the earliest timer is due, or null when none is set. */
  nextTimerAt(): number | null {
    return this.peek()?.at ?? null;
  }

  /**
   * Fire the one earliest timer (the first set among equals), moving time to it;
   * false when none is set. The simulator steps time this way, one timer at a time.
   */
  fireNext(): boolean {
    const timer = this.peek();
    if (!timer) return false;
    this.pop();
    this.timers.delete(timer.id);
    this.current = Math.max(this.current, timer.at);
    timer.callback();
    return true;
  }

  /** Move time forward by `ms`, firing due timers in order. */
  advance(ms: number): void {
    const target = this.current + ms;
    for (;;) {
      const timer = this.peek();
      if (!timer || timer.at > target) break;
      this.pop();
      this.timers.delete(timer.id);
      this.current = Math.max(this.current, timer.at);
      timer.callback();
    }
    this.current = target;
  }

  /** The earliest timer still set (cleared ones on top are dropped). */
  private peek(): ManualTimer | undefined {
    for (;;) {
      const top = this.heap[0];
      if (top === undefined || this.timers.has(top.id)) return top;
      this.pop();
    }
  }

  private static before(a: ManualTimer, b: ManualTimer): boolean {
    return a.at < b.at || (a.at === b.at && a.id < b.id);
  }

  private push(timer: ManualTimer): void {
    const heap = this.heap;
    let i = heap.push(timer) - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      const p = heap[parent] as ManualTimer;
      if (!ManualClock.before(timer, p)) break;
      heap[i] = p;
      i = parent;
    }
    heap[i] = timer;
  }

  private pop(): void {
    const heap = this.heap;
    const last = heap.pop();
    if (last === undefined || heap.length === 0) return;
    let i = 0;
    for (;;) {
      const left = 2 * i + 1;
      if (left >= heap.length) break;
      const right = left + 1;
      const child =
        right < heap.length && ManualClock.before(heap[right] as ManualTimer, heap[left] as ManualTimer) ? right : left;
      const c = heap[child] as ManualTimer;
      if (!ManualClock.before(c, last)) break;
      heap[i] = c;
      i = child;
    }
    heap[i] = last;
  }
}

/**
 * Wait `ms` on `clock`; rejects with the signal's reason if it aborts first
 * (add `.catch(() => undefined)` to end quietly instead).
 */
export function sleep(clock: Clock, ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const onAbort = () => {
      clock.clearTimeout(timer);
      reject(signal?.reason);
    };
    const timer = clock.setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
