import type { Backend, Compare, LeaseId } from '../../core/backend.js';
import type { Clock, TimerHandle } from '../../core/clock.js';
import { sleep, systemClock } from '../../core/clock.js';
import { LeaseNotFoundError } from '../../core/errors.js';
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
  /** @default systemClock */
  readonly clock?: Clock;
  /** Told about failures of duties and of the session; never throws. */
  readonly onError?: (error: unknown, where: string) => void;
}

/**
 * Campaigns for the duties, runs them while leading, campaigns again with a new
 * session when its session is lost. `stop()` resolves after the running duties
 * have ended and leadership was given up.
 */
export class DutyRunner {
  private readonly duties: Duty[] = [];
  private readonly clock: Clock;
  private readonly sessionTtl: number;
  private readonly election: string;
  private currentState: DutyRunnerState = 'IDLE';
  private loop: Promise<void> | null = null;
  private readonly stopping = new AbortController();

  constructor(private readonly options: DutyRunnerOptions) {
    this.clock = options.clock ?? systemClock;
    this.sessionTtl = options.sessionTtl ?? 10;
    this.election = options.election ?? 'muster-duties';
  }

  get state(): DutyRunnerState {
    return this.currentState;
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
    while (!this.stopping.signal.aborted) {
      let lease: LeaseId | null = null;
      const lost = new AbortController();
      const term = AbortSignal.any([this.stopping.signal, lost.signal]);
      let keepAlive: TimerHandle | null = null;
      try {
        lease = (await backend.grantLease(this.sessionTtl)).id;
        const held = lease;
        const renew = () => {
          keepAlive = this.clock.setTimeout(
            () => {
              backend.keepAlive(held).then(renew, (error: unknown) => {
                if (error instanceof LeaseNotFoundError) lost.abort(error);
                else renew(); // the store is briefly unreachable: keep trying until the TTL runs out
              });
            },
            (this.sessionTtl * 1000) / 3,
          );
        };
        renew();
        this.currentState = 'CAMPAIGNING';
        const leadership = await campaign(
          backend,
          this.election,
          new TextEncoder().encode(this.options.serverId),
          lease,
          term,
        );
        this.currentState = 'LEADING';
        await this.lead(leadership, term);
        await resign(backend, leadership).catch(() => undefined);
      } catch (error) {
        if (!term.aborted) {
          this.report(error, 'campaign');
          await sleep(this.clock, 1000, this.stopping.signal).catch(() => undefined);
        }
      } finally {
        if (keepAlive) this.clock.clearTimeout(keepAlive);
        if (lease) await backend.revokeLease(lease).catch(() => undefined);
        if (this.currentState !== 'STOPPING') this.currentState = 'IDLE';
      }
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
    };
    await Promise.all(
      this.duties.map(async (duty) => {
        while (!term.aborted) {
          try {
            await duty.run(context);
          } catch (error) {
            if (!term.aborted) this.report(error, `duty ${duty.name}`);
          }
          await sleep(this.clock, duty.intervalMs, term).catch(() => undefined);
        }
      }),
    );
  }
}
