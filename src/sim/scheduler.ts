import type { ManualClock } from '../core/clock.js';

/** How a run of the scheduler ended. */
export type SchedulerOutcome = 'done' | 'limit' | 'stuck';

interface Turn {
  readonly node: number;
  readonly seq: number;
  readonly grant: () => void;
}

/**
 * The simulator's deterministic scheduler. Everything in a simulation happens
 * in one process on a virtual clock, and only in reaction to two kinds of
 * stimulus, given one at a time:
 *
 * - a turn: a simulated node asked to send a request (`turn()`), and the
 *   waiting turn of the lowest node index (then the earliest) is granted;
 * - a timer: when no turn waits, virtual time moves to the earliest timer of
 *   the clock and fires that one timer alone (a sleep ends, a keepalive is due,
 *   a lease expires, a blocking call times out).
 *
 * After each stimulus the scheduler waits until the process is quiet (the work
 * it caused, in the server and in the nodes, has run to its next wait), so the
 * same stimuli in the same order give the same run, byte for byte. Virtual time
 * never moves while anything is still running, so a 30-minute scenario takes
 * seconds of wall time.
 */
export class Scheduler {
  private readonly waitingTurns: Turn[] = [];
  private seq = 0;
  private activity = 0;
  /** Turns granted so far. */
  granted = 0;
  /** Timers fired so far. */
  fired = 0;

  constructor(private readonly clock: ManualClock) {}

  /** Turns waiting to be granted. */
  get waiting(): number {
    return this.waitingTurns.length;
  }

  /** Something happened that the next quiet check must see (any caller may note activity). */
  touch(): void {
    this.activity++;
  }

  /**
   * Wait for this node's turn to send a request. Rejects with the signal's
   * reason if it aborts first (the turn is then given up).
   */
  turn(node: number, signal?: AbortSignal): Promise<void> {
    this.activity++;
    return new Promise((resolve, reject) => {
      if (signal?.aborted) return reject(signal.reason as Error);
      const onAbort = () => {
        const at = this.waitingTurns.indexOf(turn);
        if (at >= 0) this.waitingTurns.splice(at, 1);
        reject(signal?.reason as Error);
      };
      const turn: Turn = {
        node,
        seq: this.seq++,
        grant: () => {
          signal?.removeEventListener('abort', onAbort);
          resolve();
        },
      };
      this.waitingTurns.push(turn);
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  /**
   * Give stimuli one at a time until `done()` holds after a quiet point, or the
   * next timer lies after `limitAt` (virtual ms), or nothing can happen any more.
   */
  async run(done: () => boolean, limitAt: number): Promise<SchedulerOutcome> {
    for (;;) {
      await this.quiet();
      if (done()) return 'done';
      const next = this.takeTurn();
      if (next) {
        this.granted++;
        this.activity++;
        next.grant();
        continue;
      }
      const at = this.clock.nextTimerAt();
      if (at === null) return 'stuck';
      if (at > limitAt) return 'limit';
      this.fired++;
      this.activity++;
      this.clock.fireNext();
    }
  }

  private takeTurn(): Turn | undefined {
    let best = -1;
    for (let i = 0; i < this.waitingTurns.length; i++) {
      const t = this.waitingTurns[i] as Turn;
      const b = this.waitingTurns[best];
      if (!b || t.node < b.node || (t.node === b.node && t.seq < b.seq)) best = i;
    }
    return best < 0 ? undefined : this.waitingTurns.splice(best, 1)[0];
  }

  /**
   * Resolve once two event-loop rounds in a row saw no activity and no
   * pending setImmediate (the store's group commit and Fastify's own steps run
   * on immediates; promise chains finish within a round).
   */
  private async quiet(): Promise<void> {
    let rounds = 0;
    while (rounds < 2) {
      const before = this.activity;
      await new Promise<void>((resolve) => setImmediate(resolve));
      const still = this.activity === before && !process.getActiveResourcesInfo().includes('Immediate');
      rounds = still ? rounds + 1 : 0;
    }
  }
}
