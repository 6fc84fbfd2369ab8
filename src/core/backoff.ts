import { sleep } from './clock.js';
import type { Runtime } from './runtime.js';

/** How retries space out. */
export interface BackoffPolicy {
  /** The first delay's upper bound, in ms. @default 100 */
  readonly initialMs?: number;
  /** No delay is longer than this, in ms. @default 5000 */
  readonly maxMs?: number;
}

/**
 * The delay before retry number `attempt` (0 for the first retry): exponential,
 * capped, with "equal jitter" (a uniform draw from the upper half of the window),
 * so that many clients cut off at once do not come back in step, while none of
 * them retries at once.
 */
export function backoffDelay(attempt: number, random: () => number, policy: BackoffPolicy = {}): number {
  const initial = policy.initialMs ?? 100;
  const max = policy.maxMs ?? 5000;
  const window = Math.min(max, initial * 2 ** Math.min(Math.max(0, attempt), 30));
  return window / 2 + random() * (window / 2);
}

/**
 * Consecutive failures of one thing (a connection, a campaign), and the wait before
 * the next try: `wait()` sleeps on the runtime's clock and counts up, `reset()`
 * after a success starts again from the shortest delay.
 */
export class Backoff {
  private failures = 0;

  constructor(
    private readonly runtime: Runtime,
    private readonly policy: BackoffPolicy = {},
  ) {}

  /** The delay the next `wait()` will sleep (drawn now; the same value `wait` then uses). */
  next(): number {
    return backoffDelay(this.failures, this.runtime.random, this.policy);
  }

  /** Sleep `delayMs` (default: a fresh draw), counting one more failure. Rejects if `signal` aborts. */
  async wait(signal?: AbortSignal, delayMs = this.next()): Promise<void> {
    this.failures++;
    await sleep(this.runtime.clock, delayMs, signal);
  }

  reset(): void {
    this.failures = 0;
  }
}
