import type { Backend, Compare } from '../../core/backend.js';
import { sleep } from '../../core/clock.js';
import { Backoff } from '../../core/backoff.js';
import type { Runtime } from '../../core/runtime.js';
import { systemRuntime } from '../../core/runtime.js';
import { Session } from '../../core/session.js';
import { campaign, resign } from '../../primitives/election.js';
import type { Leadership } from '../../primitives/election.js';

/**
 * Work that must run on one server at a time (history compaction today; webhook
 * delivery, job scheduling and plan steps later). Every muster server runs a
 * DutyRunner; they hold an election with muster's own election primitive and only
 * the leader runs the duties.
 */
export interface Duty {
  readonly name: string;
  /** How often to run. */
  readonly intervalMs: number;
  /**
   * One run. `context.signal` aborts when leadership is lost; writes that must
   * not happen twice should include `context.fence` in their txn compares, so a
   * deposed leader's late write is refused.
   */
  run(context: DutyContext): Promise<void>;
}

export interface DutyContext {
  readonly backend: Backend;
  readonly signal: AbortSignal;
  /** A compare that holds only while this server still leads. */
  readonly fence: Compare;
  readonly serverId: string;
  /** The leadership's fencing token (strictly increasing across leaders). */
  readonly token: number;
  /** The server's time and randomness (a virtual clock in tests and the simulator). */
  readonly runtime: Runtime;
}

/**
 * Whether the duty whose leadership `fence` stands for still leads: the one test of
 * it, after a fenced txn was refused (its other compares may have failed instead).
 */
export async function holds(backend: Backend, fence: Compare): Promise<boolean> {
  const result = await backend.txn({ compare: [fence], success: [], failure: [] });
  return result.succeeded;
}

/**
 * A duty's fenced write was refused because this server no longer leads the
 * duties: another server goes on with the work. Deliberately not a MusterError:
 * callers that turn a store's refusal into a visible failure (a plan's batch, a
 * trigger's run) must not do so for a lost leadership, and the duty stops.
 */
export class FencedOutError extends Error {
  constructor(readonly doing: string) {
    super(`this server no longer leads the duties (${doing})`);
    this.name = 'FencedOutError';
  }
}

export type DutyRunnerState = 'IDLE' | 'CAMPAIGNING' | 'LEADING' | 'STOPPING' | 'STOPPED';

export interface DutyRunnerOptions {
  readonly backend: Backend;
  /** This server's name, published as the election value. */
  readonly serverId: string;
  /** The session TTL, in seconds: a dead leader is replaced within it. @default 10 */
  readonly sessionTtl?: number;
  /** @default "muster-duties" */
  readonly election?: string;
  /** Time and randomness. @default systemRuntime */
  readonly runtime?: Runtime;
  /** Told about failures of duties and of the session; never throws. */
  readonly onError?: (error: unknown, where: string) => void;
}

/**
 * Campaigns for the duties, runs them while leading, campaigns again with a new
 * session when its session is lost. Leadership lasts only as long as the session:
 * when no keepalive has succeeded within the TTL (counted from when the last
 * successful one was sent), the server must assume the store has expired its lease
 * and another server leads, so it stops its duties at once, even while the store
 * cannot be reached to say so. `stop()` resolves after the running duties have
 * ended and leadership was given up.
 */
export class DutyRunner {
  private readonly duties: Duty[] = [];
  private readonly runtime: Runtime;
  private readonly sessionTtl: number;
  private readonly election: string;
  private currentState: DutyRunnerState = 'IDLE';
  private terms = 0;
  private loop: Promise<void> | null = null;
  private readonly stopping = new AbortController();

  constructor(private readonly options: DutyRunnerOptions) {
    this.runtime = options.runtime ?? systemRuntime;
    this.sessionTtl = options.sessionTtl ?? 10;
    this.election = options.election ?? 'muster-duties';
  }

  get state(): DutyRunnerState {
    return this.currentState;
  }

  /** How many times this server took the duties over (a new term each time). */
  get leaderships(): number {
    return this.terms;
  }

  register(duty: Duty): void {
    this.duties.push(duty);
  }

  start(): void {
    if (this.loop) return;
    this.loop = this.run();
  }

  async stop(): Promise<void> {
    if (this.currentState === 'STOPPED') return;
    this.currentState = 'STOPPING';
    this.stopping.abort();
    await this.loop;
    this.currentState = 'STOPPED';
  }

  private report(error: unknown, where: string): void {
    try {
      this.options.onError?.(error, where);
    } catch {
      // A broken logger must not stop the duties.
    }
  }

  private async run(): Promise<void> {
    const { backend } = this.options;
    const retry = new Backoff(this.runtime, { initialMs: 500, maxMs: 10_000 });
    while (!this.stopping.signal.aborted) {
      let session: Session | null = null;
      try {
        session = await Session.start(backend, {
          ttlSeconds: this.sessionTtl,
          clock: this.runtime.clock,
          onLost: (reason) => this.report(reason, 'session lost, duties stopped'),
        });
        const term = AbortSignal.any([this.stopping.signal, session.lost]);
        this.currentState = 'CAMPAIGNING';
        const value = new TextEncoder().encode(this.options.serverId);
        const leadership = await campaign(backend, this.election, value, session.leaseId, term);
        this.currentState = 'LEADING';
        this.terms++;
        retry.reset();
        await this.lead(leadership, term);
        if (!session.lost.aborted) await resign(backend, leadership).catch(() => undefined);
      } catch (error) {
        if (!this.stopping.signal.aborted && !session?.lost.aborted) this.report(error, 'campaign');
      } finally {
        // Revokes the lease if the session is still alive; a lost one expires by itself.
        if (session) await session.close().catch(() => undefined);
        if (this.currentState !== 'STOPPING') this.currentState = 'IDLE';
      }
      if (!this.stopping.signal.aborted) await retry.wait(this.stopping.signal).catch(() => undefined);
    }
  }

  /** Run every duty on its interval until `term` aborts. */
  private async lead(leadership: Leadership, term: AbortSignal): Promise<void> {
    const context: DutyContext = {
      backend: this.options.backend,
      signal: term,
      fence: { key: leadership.key, target: 'createRevision', op: '=', value: leadership.token },
      serverId: this.options.serverId,
      token: leadership.token,
      runtime: this.runtime,
    };
    await Promise.all(
      this.duties.map(async (duty) => {
        while (!term.aborted) {
          try {
            await duty.run(context);
          } catch (error) {
            if (!term.aborted) this.report(error, `duty ${duty.name}`);
          }
          await sleep(this.runtime.clock, duty.intervalMs, term).catch(() => undefined);
        }
      }),
    );
    // Leadership is held until lost or given up, with duties or none.
    if (!term.aborted) await new Promise((resolve) => term.addEventListener('abort', resolve, { once: true }));
  }
}
