import type { FetchFunction } from '../client/http-transport.js';
import { MusterClient } from '../client/muster-client.js';
import type { ManualClock, TimerHandle } from '../core/clock.js';
import { sleep } from '../core/clock.js';
import { BackendUnavailableError } from '../core/errors.js';
import { Session } from '../core/session.js';
import type { Faults } from './faults.js';
import type { History } from './history.js';
import { seconds } from './history.js';
import { isEventStream } from './inject-fetch.js';
import type { DurationRange, Scenario } from './scenario.js';
import type { Scheduler } from './scheduler.js';

/** The endpoint the simulated nodes' clients name (their requests never leave the process). */
export const SIM_ENDPOINT = 'http://muster.sim';
/** The header a simulated node's requests carry its name in (the simulator's own bookkeeping reads it). */
export const SIM_NODE_HEADER = 'x-muster-sim-node';

/** How long after a failure (server unreachable) a node tries again. */
export const RETRY_MS = 1000;

/** What every simulated node of one simulation shares, whatever it simulates. */
export interface PeerEnv {
  readonly scenario: Scenario;
  readonly faults: Faults;
  readonly clock: ManualClock;
  /** Virtual ms since the start. */
  readonly now: () => number;
  readonly scheduler: Scheduler;
  readonly history: History;
  /** Hands a request to the in-process server. */
  readonly send: FetchFunction;
}

/** The incarnation died (a crash fault) or the simulation ended. */
class Stopped extends Error {}

/** An incarnation's death signal and client, and how to end its hold on the simulation's end. */
interface Incarnation {
  readonly death: AbortController;
  readonly client: MusterClient;
  /** Call when the incarnation is over (it no longer dies with the simulation's end). */
  readonly done: () => void;
}

/**
 * What a simulated node of a step scenario (SimNode) and one of a release
 * scenario (AgentNode) share: its life of incarnations (a random start, down
 * for a downtime after each crash), its session, its retries, and the faults
 * it suffers: the crash and partition timers (drawn from its random in the
 * same order for both), and its `fetch` (the delay fault, the scheduler's
 * turn, refused during a partition, cut when one starts, dropped when the
 * incarnation dies).
 */
export abstract class SimPeer<E extends PeerEnv> {
  incarnation = 0;
  protected readonly over = new AbortController();
  protected death: AbortController | null = null;
  private crashTimer: TimerHandle | null = null;
  private partitionTimer: TimerHandle | null = null;
  protected partitioned = false;
  /** Aborted when a partition starts: the requests then in flight are cut. */
  private cut = new AbortController();
  protected session: Session | null = null;
  /** How long the node stays down after its crash. */
  private downtime = 0;

  constructor(
    readonly index: number,
    readonly name: string,
    readonly role: string,
    protected readonly random: () => number,
    protected readonly env: E,
  ) {}

  /** Ready the node for a new incarnation (it is up again; what belonged to the last one is forgotten). */
  protected abstract prepareIncarnation(): void;
  /**
   * The incarnation's work with its client, session after session: true when
   * the node is done for good. It ends by its death (the death signal aborts it).
   */
  protected abstract serveIncarnation(client: MusterClient, death: AbortSignal): Promise<boolean>;
  /** The node went down (its incarnation is about to die). */
  protected abstract markDown(): void;
  /** The node needs nothing more for the run to end: finished (a step scenario's node), or down or idle (an agent). */
  abstract get settled(): boolean;
  /** Where a node that is not settled stands, for the message of a run that did not end. */
  abstract describeUnsettled(): string;

  /** The node's whole life; resolves when it is done or the simulation ended. Never rejects. */
  async live(): Promise<void> {
    const { clock, scenario } = this.env;
    try {
      await sleep(clock, this.pick(scenario.start), this.over.signal);
      for (;;) {
        if (await this.incarnate()) return;
        this.markDown();
        await sleep(clock, this.downtime, this.over.signal);
      }
    } catch (error) {
      if (this.over.signal.aborted) return;
      this.env.history.problem('node', `${this.name} failed: ${message(error)}`);
    }
  }

  /** End the node's part in the simulation: stop its timers and its session (nothing more is sent). */
  stop(): void {
    this.over.abort(new Stopped('the simulation ended'));
    this.session?.stop();
    this.clearFaultTimers();
  }

  /** One incarnation: true when the node is done for good, false when it crashed. */
  private async incarnate(): Promise<boolean> {
    this.prepareIncarnation();
    const { death, client, done } = this.beginIncarnation();
    try {
      return await this.serveIncarnation(client, death.signal);
    } catch (error) {
      this.session?.stop();
      this.session = null;
      if (death.signal.aborted) return false;
      throw error;
    } finally {
      done();
    }
  }

  /** Start an incarnation: its death (also at the simulation's end) and its client; recorded as up. */
  private beginIncarnation(): Incarnation {
    const { history, clock } = this.env;
    this.incarnation++;
    const death = new AbortController();
    this.death = death;
    const onOver = () => death.abort(this.over.signal.reason);
    this.over.signal.addEventListener('abort', onOver, { once: true });
    const client = new MusterClient({
      endpoints: SIM_ENDPOINT,
      fetch: this.fetchFor(death.signal),
      // Time is virtual: no request has a wall-clock timeout (blocking calls carry their own).
      requestTimeoutMs: 0,
      runtime: { clock, random: this.random },
    });
    history.record(this.name, this.incarnation === 1 ? 'up' : `up again (incarnation ${this.incarnation})`);
    return { death, client, done: () => this.over.signal.removeEventListener('abort', onOver) };
  }

  protected openSession(client: MusterClient, signal: AbortSignal): Promise<Session> {
    const { clock, scenario } = this.env;
    return this.retrying(signal, () => Session.start(client, { ttlSeconds: scenario.ttlSeconds, clock }));
  }

  /** A call, tried again a second later while the server cannot be reached (a partition). */
  protected async retrying<T>(signal: AbortSignal, call: () => Promise<T>): Promise<T> {
    for (;;) {
      if (signal.aborted) throw signal.reason;
      try {
        return await call();
      } catch (error) {
        if (signal.aborted) throw signal.reason;
        if (!(error instanceof BackendUnavailableError)) throw error;
        await sleep(this.env.clock, RETRY_MS, signal);
      }
    }
  }

  /** Maybe a crash or a partition, at a random moment within a TTL. */
  protected maybeFail(): void {
    const { faults, clock, history, scenario } = this.env;
    const ttlMs = scenario.ttlSeconds * 1000;
    if (faults.crash > 0 && this.crashTimer === null && this.random() < faults.crash) {
      this.crashTimer = clock.setTimeout(() => {
        this.crashTimer = null;
        history.crashes++;
        this.downtime = this.pick(faults.downtime);
        history.record(this.name, `crash: down for ${seconds(this.downtime)}, its lease left to expire`);
        this.onCrash();
        this.death?.abort(new Stopped('crashed'));
      }, this.random() * ttlMs);
    }
    if (faults.partition > 0 && this.partitionTimer === null && !this.partitioned && this.random() < faults.partition) {
      const length = this.pick(faults.cut ?? { min: ttlMs / 2, max: 2 * ttlMs });
      this.partitionTimer = clock.setTimeout(() => {
        history.partitions++;
        history.record(this.name, `partitioned from the server for ${seconds(length)}`);
        this.partitioned = true;
        const cut = this.cut;
        this.cut = new AbortController();
        cut.abort(networkError('ECONNRESET', 'connection reset'));
        this.partitionTimer = clock.setTimeout(() => {
          this.partitionTimer = null;
          this.partitioned = false;
          history.record(this.name, 'partition healed');
        }, length);
      }, this.random() * ttlMs);
    }
  }

  /** Called by the crash timer before the incarnation is killed. */
  protected onCrash(): void {}

  protected clearFaultTimers(): void {
    if (this.crashTimer) this.env.clock.clearTimeout(this.crashTimer);
    this.crashTimer = null;
    // A partition under way runs its course (its healing timer stays); one not yet started is dropped.
    if (this.partitionTimer && !this.partitioned) {
      this.env.clock.clearTimeout(this.partitionTimer);
      this.partitionTimer = null;
    }
  }

  /** Called as a request reaches the server (after its delay, its turn, and no partition). */
  protected onRequest(_input: string, _init: RequestInit): void {}

  /**
   * This incarnation's `fetch`: a request waits (the delay fault, then its turn
   * from the scheduler), fails at once during a partition, and is otherwise
   * handed to the server; the node stops waiting for the answer when it dies,
   * when the call is aborted, or when a partition cuts it. A request's own
   * wall-clock timeout is ignored: time here is virtual. The server's handling
   * of a request gets no signal (the server still answers, to nobody), but for
   * an event stream (an agent's assignments), which stays open after its
   * answer: its body ends when the node dies, the caller aborts, or a partition
   * cuts it.
   */
  private fetchFor(death: AbortSignal): FetchFunction {
    const { scheduler, faults, clock, history } = this.env;
    return async (input, init) => {
      const stop = new AbortController();
      const onCaller = () => {
        const reason: unknown = init.signal?.reason;
        if (!(reason instanceof DOMException && reason.name === 'TimeoutError')) stop.abort(reason);
      };
      const onDeath = () => stop.abort(death.reason);
      if (death.aborted) throw death.reason;
      death.addEventListener('abort', onDeath, { once: true });
      init.signal?.addEventListener('abort', onCaller, { once: true });
      if (init.signal?.aborted) onCaller();
      try {
        if (faults.delay) await sleep(clock, this.pick(faults.delay), stop.signal);
        await scheduler.turn(this.index, stop.signal);
        if (this.partitioned) throw networkError('ECONNREFUSED', 'connection refused');
        history.requests++;
        this.onRequest(input, init);
        const cut = this.cut.signal;
        const headers = { ...(init.headers as Record<string, string> | undefined), [SIM_NODE_HEADER]: this.name };
        const streaming = isEventStream(init.method ?? 'GET', new URL(input).pathname);
        const signal = streaming ? AbortSignal.any([death, cut, ...(init.signal ? [init.signal] : [])]) : null;
        const answer = this.env.send(input, { ...init, headers, signal });
        return await untilAborted(answer, [stop.signal, cut]);
      } finally {
        death.removeEventListener('abort', onDeath);
        init.signal?.removeEventListener('abort', onCaller);
      }
    };
  }

  protected pick(range: DurationRange): number {
    return Math.round(range.min + this.random() * (range.max - range.min));
  }
}

/** `promise`, or the reason of the first of `signals` to abort. */
function untilAborted<T>(promise: Promise<T>, signals: readonly AbortSignal[]): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const aborted = signals.find((s) => s.aborted);
    if (aborted) return reject(aborted.reason as Error);
    const onAbort = (event: Event) => {
      cleanup();
      reject((event.target as AbortSignal).reason as Error);
    };
    const cleanup = () => signals.forEach((s) => s.removeEventListener('abort', onAbort));
    signals.forEach((s) => s.addEventListener('abort', onAbort, { once: true }));
    promise.then(
      (value) => {
        cleanup();
        resolve(value);
      },
      (error: unknown) => {
        cleanup();
        reject(error as Error);
      },
    );
  });
}

/** An error as fetch gives for a failed connection (the client's transport reads the code). */
function networkError(code: string, text: string): TypeError {
  return new TypeError('fetch failed', { cause: Object.assign(new Error(text), { code }) });
}

export function message(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
