import type { FetchFunction } from '../client/http-transport.js';
import type { Held, LeaseId } from '../client/index.js';
import { MusterClient } from '../client/muster-client.js';
import { Session } from '../core/session.js';
import type { ManualClock, TimerHandle } from '../core/clock.js';
import { sleep } from '../core/clock.js';
import { BackendUnavailableError, TimeoutError } from '../core/errors.js';
import type { Faults } from './faults.js';
import type { History, OnceRun } from './history.js';
import type { DurationRange, Role, Scenario, Step } from './scenario.js';
import { fill } from './scenario.js';
import type { Scheduler } from './scheduler.js';

/** The endpoint the simulated nodes' clients name (their requests never leave the process). */
export const SIM_ENDPOINT = 'http://muster.sim';
/** The header a simulated node's requests carry its name in (the simulator's own bookkeeping reads it). */
export const SIM_NODE_HEADER = 'x-muster-sim-node';

/** How a simulated node takes a lock: the server's lock, or (in tests) a deliberately broken one. */
export interface LockImpl {
  acquire(
    client: MusterClient,
    name: string,
    lease: LeaseId,
    options: { readonly timeoutMs: number; readonly signal: AbortSignal },
  ): Promise<Held>;
  release(client: MusterClient, name: string, held: Held, options: { readonly signal: AbortSignal }): Promise<void>;
}

/** The server's lock, over the API. */
export const serverLock: LockImpl = {
  acquire: (client, name, lease, options) => client.acquireLock(name, lease, options),
  release: (client, name, held, options) => client.releaseLock(name, held, options),
};

/** What every node of one simulation shares. */
export interface NodeEnv {
  readonly scenario: Scenario;
  readonly faults: Faults;
  readonly clock: ManualClock;
  /** Virtual ms since the start. */
  readonly now: () => number;
  readonly scheduler: Scheduler;
  readonly history: History;
  /** Hands a request to the in-process server. */
  readonly send: FetchFunction;
  readonly lockImpl: LockImpl;
  /** How many nodes take each step (a barrier's `count: all`). */
  readonly takers: readonly number[];
}

export type NodeState = 'waiting' | 'up' | 'down' | 'finished';

/** The longest a node's single blocking call waits on the server before it asks again. */
const BLOCKING_CHUNK_MS = 60_000;
/** How long a candidate waits to lead before it counts itself a follower. */
const CAMPAIGN_TIMEOUT_MS = 1000;
/** How long after a failure (server unreachable) a node tries again. */
const RETRY_MS = 1000;

/** The incarnation died (a crash fault) or the simulation ended. */
class Stopped extends Error {}

/**
 * One simulated node: it starts after a random delay, opens a session (a lease
 * kept alive every TTL/3 by the client's Session, as a real client's is), runs
 * the scenario's steps through a MusterClient whose requests reach the
 * in-process server through the scheduler, and suffers the faults: a crash
 * ends its incarnation (its lease is left to expire; it returns after a
 * downtime and starts over), a partition cuts its requests and keepalives for
 * a while (its session may then be lost: it starts over with a new one).
 */
export class SimNode {
  state: NodeState = 'waiting';
  incarnation = 0;
  /** The step being run (index into the scenario's steps). */
  step = 0;
  private readonly over = new AbortController();
  private death: AbortController | null = null;
  private crashTimer: TimerHandle | null = null;
  private partitionTimer: TimerHandle | null = null;
  private partitioned = false;
  /** Aborted when a partition starts: the requests then in flight are cut. */
  private cut = new AbortController();
  private session: Session | null = null;
  private electionRole: Role | null = null;
  private election: { readonly name: string; readonly step: number } | null = null;
  /** Recorded when the put of `key` reaches the server (so it shows before the waiters it wakes). */
  private onSent: { readonly key: string; readonly note: () => void } | null = null;
  /** How long the node stays down after its crash. */
  private downtime = 0;

  constructor(
    readonly index: number,
    readonly name: string,
    readonly role: string,
    private readonly random: () => number,
    private readonly env: NodeEnv,
  ) {}

  /** The node's whole life; resolves when it finished its steps or the simulation ended. Never rejects. */
  async live(): Promise<void> {
    const { clock, scenario } = this.env;
    try {
      await sleep(clock, this.pick(scenario.start), this.over.signal);
      for (;;) {
        if (await this.incarnate()) return;
        this.state = 'down';
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

  /** The step the node is at, for reports. */
  describeStep(): string {
    const step = this.env.scenario.steps[this.step];
    return step ? `${step.kind} at ${step.where}` : 'start';
  }

  /** One incarnation: true when it finished every step, false when it crashed. */
  private async incarnate(): Promise<boolean> {
    const { history, clock } = this.env;
    this.incarnation++;
    this.state = 'up';
    const death = new AbortController();
    this.death = death;
    this.onSent = null;
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
    try {
      for (;;) {
        const session = await this.openSession(client, death.signal);
        this.session = session;
        history.record(this.name, `session ${session.leaseId} (ttl ${session.ttlSeconds}s)`);
        if (await this.runSteps(client, session, death.signal)) {
          this.state = 'finished';
          this.clearFaultTimers();
          history.record(this.name, 'finished');
          return true;
        }
        session.stop();
        history.record(this.name, `session lost (${session.lostReason?.message ?? 'ended'}): starting over`);
      }
    } catch (error) {
      this.session?.stop();
      this.session = null;
      if (death.signal.aborted) return false;
      throw error;
    } finally {
      this.over.signal.removeEventListener('abort', onOver);
    }
  }

  private async openSession(client: MusterClient, signal: AbortSignal): Promise<Session> {
    const { clock, scenario } = this.env;
    for (;;) {
      try {
        return await Session.start(client, { ttlSeconds: scenario.ttlSeconds, clock });
      } catch (error) {
        if (signal.aborted) throw signal.reason;
        if (!(error instanceof BackendUnavailableError)) throw error;
        await sleep(clock, RETRY_MS, signal);
      }
    }
  }

  /** The steps from the first: true when all are done, false when the session was lost. */
  private async runSteps(client: MusterClient, session: Session, death: AbortSignal): Promise<boolean> {
    const { scenario, history, clock } = this.env;
    const signal = AbortSignal.any([death, session.lost]);
    this.electionRole = null;
    this.election = null;
    let i = 0;
    while (i < scenario.steps.length) {
      const step = scenario.steps[i] as Step;
      if (!this.takes(step)) {
        i++;
        continue;
      }
      this.step = i;
      this.maybeFail();
      try {
        i = await this.runStep(step, i, client, session, signal);
      } catch (error) {
        if (death.aborted) throw death.reason;
        if (session.lost.aborted) return false;
        // Against a correct server a scenario never fails this way: report it and start over.
        history.problem('node', `${this.name} ${step.where} ${step.kind}: ${message(error)}`);
        history.record(this.name, `${step.kind} failed: ${message(error)}`);
        await session.close().catch(() => undefined);
        await sleep(clock, RETRY_MS, death);
        return false;
      }
    }
    return true;
  }

  private takes(step: Step): boolean {
    if (step.roles !== null && !step.roles.includes(this.role)) return false;
    return step.when === null || step.when === this.electionRole;
  }

  /** Run one step; the index of the next step. */
  private async runStep(
    step: Step,
    index: number,
    client: MusterClient,
    session: Session,
    signal: AbortSignal,
  ): Promise<number> {
    const { history, clock, now } = this.env;
    const lease = session.leaseId;
    const record = (what: string) => history.record(this.name, what);
    switch (step.kind) {
      case 'sleep': {
        const ms = this.pick(step.duration);
        record(`sleep ${seconds(ms)}`);
        await sleep(clock, ms, signal);
        return index + 1;
      }
      case 'put': {
        const key = this.fill(step.key);
        const value = this.fill(step.value);
        await this.retrying(signal, () =>
          this.noting(
            key,
            () => {
              this.leaderAction(step, lease, `put ${key}`);
              record(`put ${key} = ${value}`);
            },
            () => client.put(key, value, { signal }),
          ),
        );
        return index + 1;
      }
      case 'wait': {
        const key = this.fill(step.key);
        const equals = step.equals === null ? null : this.fill(step.equals);
        const since = now();
        record(`wait for ${key}${equals === null ? '' : ` = ${equals}`}`);
        const follower = step.when === 'follower' && this.election !== null;
        const chunk = follower ? 3 * this.env.scenario.ttlSeconds * 1000 : BLOCKING_CHUNK_MS;
        for (;;) {
          try {
            await this.retrying(signal, () =>
              client.waitFor(key, equals === null ? { exists: true } : { equals }, { timeoutMs: chunk, signal }),
            );
            break;
          } catch (error) {
            if (!(error instanceof TimeoutError)) throw error;
            const election = this.election;
            if (!follower || election === null) continue;
            const leader = await this.retrying(signal, () => client.leader(election.name, { signal }));
            if (leader !== null) continue;
            record(`no leader of ${election.name} any more: campaigning again`);
            return election.step;
          }
        }
        history.waited(now() - since);
        record(`${key} is there after ${seconds(now() - since)}`);
        return index + 1;
      }
      case 'lock': {
        const since = now();
        const held = await this.blocking(signal, () =>
          this.env.lockImpl.acquire(client, step.name, lease, { timeoutMs: BLOCKING_CHUNK_MS, signal }),
        );
        const holding = { name: step.name, node: this.name, lease, start: now(), end: null as number | null };
        history.lockHolds.push(holding);
        history.waited(now() - since);
        const hold = this.pick(step.hold);
        record(
          `lock ${step.name} acquired after ${seconds(now() - since)} (token ${held.token}); holding ${seconds(hold)}`,
        );
        await sleep(clock, hold, signal);
        await this.retrying(signal, () => this.env.lockImpl.release(client, step.name, held, { signal }));
        holding.end = now();
        record(`lock ${step.name} released`);
        return index + 1;
      }
      case 'elect': {
        this.election = { name: step.name, step: index };
        try {
          const leadership = await this.retrying(signal, () =>
            client.campaign(step.name, this.name, lease, { timeoutMs: CAMPAIGN_TIMEOUT_MS, signal }),
          );
          history.leaderships.push({ name: step.name, node: this.name, lease, start: now(), end: null });
          this.electionRole = 'leader';
          record(`elect ${step.name}: leader (token ${leadership.token})`);
        } catch (error) {
          if (!(error instanceof TimeoutError)) throw error;
          const leader = await this.retrying(signal, () => client.leader(step.name, { signal }));
          this.electionRole = 'follower';
          record(`elect ${step.name}: follower (leader ${leader?.value ?? 'none right now'})`);
        }
        return index + 1;
      }
      case 'once': {
        const since = now();
        const turn = await this.blocking(signal, () =>
          client.beginOnce(step.name, lease, { timeoutMs: BLOCKING_CHUNK_MS, signal }),
        );
        history.waited(now() - since);
        if (turn.role === 'done') {
          history.onceSeen.push({ name: step.name, node: this.name, token: turn.result.token, at: now() });
          record(`once ${step.name}: done by ${turn.result.runner} (run ${turn.result.token})`);
          return index + 1;
        }
        const run: OnceRun = {
          name: step.name,
          node: this.name,
          lease,
          start: now(),
          end: null,
          token: turn.token,
          completed: false,
        };
        history.onceRuns.push(run);
        const ms = this.pick(step.run);
        record(`once ${step.name}: running (run ${turn.token}, ${seconds(ms)})`);
        await sleep(clock, ms, signal);
        const put = step.put;
        if (put !== null) {
          const key = this.fill(put.key);
          const value = this.fill(put.value);
          await this.retrying(signal, () =>
            this.noting(
              key,
              () => record(`put ${key} = ${value}`),
              () => client.put(key, value, { signal }),
            ),
          );
        }
        await this.retrying(signal, () =>
          client.completeOnce(step.name, turn, { exitCode: 0, output: '', runner: this.name }, { signal }),
        );
        run.end = now();
        run.completed = true;
        history.onceSeen.push({ name: step.name, node: this.name, token: turn.token, at: now() });
        record(`once ${step.name}: completed (run ${turn.token})`);
        return index + 1;
      }
      case 'barrier': {
        const count = step.count === 'all' ? (this.env.takers[index] ?? 1) : step.count;
        const since = now();
        record(`barrier ${step.name}: arrive (${count} needed)`);
        const state = await this.blocking(signal, () =>
          client.enterBarrier(step.name, count, lease, { id: this.name, timeoutMs: BLOCKING_CHUNK_MS, signal }),
        );
        history.releases.push({ name: step.name, node: this.name, count, at: now() });
        history.waited(now() - since);
        record(`barrier ${step.name}: released after ${seconds(now() - since)} (${state.arrived} arrived)`);
        return index + 1;
      }
    }
  }

  /** A write made under a `when: leader` step is made as the leader: the checker holds it to that. */
  private leaderAction(step: Step, lease: string, what: string): void {
    if (step.when !== 'leader' || this.election === null) return;
    this.env.history.leaderActions.push({
      name: this.election.name,
      node: this.name,
      lease,
      at: this.env.now(),
      what,
    });
  }

  /** Make the put of `key`, calling `note` when (if) it reaches the server. */
  private async noting<T>(key: string, note: () => void, put: () => Promise<T>): Promise<T> {
    this.onSent = { key, note };
    try {
      return await put();
    } finally {
      this.onSent = null;
    }
  }

  /** A blocking call, asked again whenever the server's wait times out. */
  private async blocking<T>(signal: AbortSignal, call: () => Promise<T>): Promise<T> {
    for (;;) {
      try {
        return await this.retrying(signal, call);
      } catch (error) {
        if (!(error instanceof TimeoutError)) throw error;
      }
    }
  }

  /** A call, tried again a second later while the server cannot be reached (a partition). */
  private async retrying<T>(signal: AbortSignal, call: () => Promise<T>): Promise<T> {
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

  /** At each step: maybe a crash or a partition, at a random moment within a TTL. */
  private maybeFail(): void {
    const { faults, clock, history, scenario } = this.env;
    const ttlMs = scenario.ttlSeconds * 1000;
    if (faults.crash > 0 && this.crashTimer === null && this.random() < faults.crash) {
      this.crashTimer = clock.setTimeout(() => {
        this.crashTimer = null;
        history.crashes++;
        this.downtime = this.pick(faults.downtime);
        history.record(this.name, `crash: down for ${seconds(this.downtime)}, its lease left to expire`);
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

  private clearFaultTimers(): void {
    if (this.crashTimer) this.env.clock.clearTimeout(this.crashTimer);
    this.crashTimer = null;
    // A partition under way runs its course (its healing timer stays); one not yet started is dropped.
    if (this.partitionTimer && !this.partitioned) {
      this.env.clock.clearTimeout(this.partitionTimer);
      this.partitionTimer = null;
    }
  }

  /**
   * This incarnation's `fetch`: a request waits (the delay fault, then its turn
   * from the scheduler), fails at once during a partition, and is otherwise
   * handed to the server; the node stops waiting for the answer when it dies,
   * when the call is aborted, or when a partition cuts it (the server still
   * answers, to nobody). A request's own wall-clock timeout is ignored: time
   * here is virtual.
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
        const pending = this.onSent;
        if (pending && init.method === 'PUT' && new URL(input).pathname === '/v1/kv' + pending.key) {
          this.onSent = null;
          pending.note();
        }
        const cut = this.cut.signal;
        const headers = { ...(init.headers as Record<string, string> | undefined), [SIM_NODE_HEADER]: this.name };
        const answer = this.env.send(input, { ...init, headers, signal: null });
        return await untilAborted(answer, [stop.signal, cut]);
      } finally {
        death.removeEventListener('abort', onDeath);
        init.signal?.removeEventListener('abort', onCaller);
      }
    };
  }

  private pick(range: DurationRange): number {
    return Math.round(range.min + this.random() * (range.max - range.min));
  }

  private fill(template: string): string {
    if (!template.includes('{')) return template;
    const random = Array.from({ length: 4 }, () =>
      Math.floor(this.random() * 0x10000)
        .toString(16)
        .padStart(4, '0'),
    ).join('');
    return fill(template, { node: this.name, role: this.role, random });
  }
}

/** `promise`, or the reason of the first of `signals` to abort. */
export function untilAborted<T>(promise: Promise<T>, signals: readonly AbortSignal[]): Promise<T> {
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
export function networkError(code: string, text: string): TypeError {
  return new TypeError('fetch failed', { cause: Object.assign(new Error(text), { code }) });
}

export function message(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

export function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(3)}s`;
}
