import type { AssignmentEvent, JobReport } from '../api/agent-protocol.js';
import type { FetchFunction } from '../client/http-transport.js';
import { MusterClient } from '../client/muster-client.js';
import type { ChangeResult } from '../client/index.js';
import type { DesiredValue } from '../client/plan-types.js';
import type { ManualClock, TimerHandle } from '../core/clock.js';
import { sleep } from '../core/clock.js';
import { BackendUnavailableError, KeyNotFoundError, LeaseNotFoundError, TimeoutError } from '../core/errors.js';
import { Session } from '../core/session.js';
import { nodeMatcher } from '../nodes/query.js';
import type { Faults } from './faults.js';
import type { History } from './history.js';
import type { DurationRange, Release, Scenario } from './scenario.js';
import { fill } from './scenario.js';
import type { Scheduler } from './scheduler.js';
import { SIM_ENDPOINT, SIM_NODE_HEADER, message, networkError, seconds, untilAborted } from './sim-node.js';

/**
 * What a simulated chef-client converges a group to on a node. The right
 * answer is the node's effective desired state (`GET /v1/desired/<group>?node=`);
 * a test plugs in a wrong one to see the checker catch it.
 */
export interface RecipeImpl {
  target(
    client: MusterClient,
    group: string,
    node: string,
    options: { readonly signal: AbortSignal },
  ): Promise<DesiredValue | null>;
}

/** The recipe as docs/plans.md tells a recipe to be written: converge to what the node is to be in now. */
export const effectiveRecipe: RecipeImpl = {
  target: (client, group, node, options) => client.effectiveDesired(group, node, options),
};

/** What every agent of one release simulation shares. */
export interface AgentEnv {
  readonly scenario: Scenario;
  readonly release: Release;
  readonly faults: Faults;
  readonly clock: ManualClock;
  readonly now: () => number;
  readonly scheduler: Scheduler;
  readonly history: History;
  readonly send: FetchFunction;
  readonly recipe: RecipeImpl;
}

/** How long after a failure (server unreachable) an agent tries again. */
const RETRY_MS = 1000;
/** The longest one long poll of the desired state waits before it is asked again. */
const WATCH_CHUNK_MS = 60_000;

/** The incarnation died (a crash fault) or the simulation ended. */
class Stopped extends Error {}

/** A job the agent was given, as its journal on disk keeps it (it survives a crash). */
interface JournalEntry {
  /** The next report's seq. */
  next: number;
  ended: boolean;
}

/**
 * One simulated node of a release scenario: a muster agent and a
 * chef-client. Each incarnation opens a session, registers the node (its alive
 * key bound to the session), converges every group it is in (a boot run), then
 * follows its assignment stream (the real protocol: a job's command runs as a
 * chef-client run, reported started and exited) and the desired state of its
 * groups (a change it is concerned by starts a run, as a recipe that watches
 * the key would). A chef-client run reads what the node is to be in, works for
 * a while, reports the state, and writes its health key. Crashes and
 * partitions are those of the scenario's faults; the agent's journal (which
 * jobs it was given) survives a crash, as the real agent's file does: a job
 * that was running when the node died is reported killed on its return.
 */
export class AgentNode {
  state: 'waiting' | 'up' | 'down' = 'waiting';
  incarnation = 0;
  /** Registering and the boot run under way. */
  booting = false;
  /** Chef-client runs, jobs and reactions to a change under way. */
  busy = 0;
  /** The groups this node is in (the scenario's group queries on its role). */
  readonly groups: readonly string[];
  private readonly journal = new Map<string, JournalEntry>();
  /** Jobs whose run is under way in this incarnation. */
  private readonly running = new Set<string>();
  private readonly over = new AbortController();
  private death: AbortController | null = null;
  private crashTimer: TimerHandle | null = null;
  private partitionTimer: TimerHandle | null = null;
  private partitioned = false;
  private cut = new AbortController();
  private session: Session | null = null;
  private downtime = 0;
  /** Runs one at a time (chef-client takes a lock of its own). */
  private runs: Promise<void> = Promise.resolve();
  /** What the node last converged each group to (`state@version`). */
  private readonly converged = new Map<string, string>();

  constructor(
    readonly index: number,
    readonly name: string,
    readonly role: string,
    private readonly random: () => number,
    private readonly env: AgentEnv,
  ) {
    const node = { name, up: true, tags: [], attrs: { role } };
    this.groups = env.release.groups.filter((g) => nodeMatcher(g.query)(node)).map((g) => g.name);
  }

  /** The node's whole life; resolves when the simulation ended. Never rejects. */
  async live(): Promise<void> {
    const { clock, scenario } = this.env;
    try {
      await sleep(clock, this.pick(scenario.start), this.over.signal);
      for (;;) {
        await this.incarnate();
        this.state = 'down';
        await sleep(clock, this.downtime, this.over.signal);
      }
    } catch (error) {
      if (this.over.signal.aborted) return;
      this.env.history.problem('node', `${this.name} failed: ${message(error)}`);
    }
  }

  stop(): void {
    this.over.abort(new Stopped('the simulation ended'));
    this.session?.stop();
    this.clearFaultTimers();
  }

  /** Up, registered, and nothing under way (a node waiting on its streams and long polls). */
  get idle(): boolean {
    return this.state === 'up' && !this.booting && this.busy === 0;
  }

  /** One incarnation, until it crashes (or the simulation ends). */
  private async incarnate(): Promise<void> {
    const { history, clock } = this.env;
    this.incarnation++;
    this.state = 'up';
    this.converged.clear();
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
    this.maybeFail();
    try {
      for (;;) {
        this.booting = true;
        const session = await this.openSession(client, death.signal);
        this.session = session;
        const signal = AbortSignal.any([death.signal, session.lost]);
        try {
          await this.serve(client, session, signal, death.signal);
        } catch (error) {
          if (death.signal.aborted) throw death.signal.reason;
          if (!session.lost.aborted) throw error;
        }
        session.stop();
        history.record(this.name, `session lost (${session.lostReason?.message ?? 'ended'}): registering again`);
      }
    } catch (error) {
      this.session?.stop();
      this.session = null;
      if (death.signal.aborted) return;
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

  /**
   * Register, catch up, then follow the assignments and the desired states until
   * the session ends (`signal`). Runs and their job reports belong to the
   * incarnation (`alive`): a session lost to a partition does not stop them.
   */
  private async serve(client: MusterClient, session: Session, signal: AbortSignal, alive: AbortSignal): Promise<void> {
    const { history, release } = this.env;
    await this.retrying(signal, () =>
      client.registerNode(
        this.name,
        { lease: session.leaseId, tags: [], attrs: { role: this.role }, facts: { commands: [release.agent.command] } },
        { signal },
      ),
    );
    history.record(this.name, `registered (session ${session.leaseId}, ttl ${session.ttlSeconds}s)`);
    // Jobs that were running when the node died: the process died with it.
    for (const [job, entry] of this.journal) {
      if (entry.ended || this.running.has(job)) continue;
      entry.ended = true;
      await this.report(client, job, { type: 'exit', exitCode: null, signal: 'SIGKILL' }, signal);
      history.record(this.name, `job ${job}: reported killed (it was running when the node went down)`);
    }
    // The boot run: whatever happened while the node was away, it converges to what it is to be in now.
    await this.enqueueRun(client, signal, 'boot');
    this.booting = false;
    const follow = this.followAssignments(client, signal, alive);
    const watches = this.groups.map((group) => this.watchDesired(client, group, signal));
    await Promise.all([follow, ...watches]);
  }

  private async followAssignments(client: MusterClient, signal: AbortSignal, alive: AbortSignal): Promise<void> {
    for await (const event of client.assignments(this.name, { signal })) this.onAssignment(client, event, alive);
    signal.throwIfAborted();
  }

  private onAssignment(client: MusterClient, event: AssignmentEvent, signal: AbortSignal): void {
    const { history, release } = this.env;
    const a = event.assignment;
    if (a.state === 'abort' || this.journal.has(a.jobId)) return;
    const entry: JournalEntry = { next: 0, ended: false };
    this.journal.set(a.jobId, entry);
    history.jobsSeen.push({ job: a.jobId, node: this.name, at: this.env.now() });
    if (a.command !== release.agent.command) {
      entry.ended = true;
      history.record(this.name, `job ${a.jobId}: ${a.command} rejected (not in the allowlist)`);
      void this.report(
        client,
        a.jobId,
        { type: 'rejected', reason: `${a.command} is not in the allowlist` },
        signal,
      ).catch(() => undefined);
      return;
    }
    history.record(this.name, `job ${a.jobId}: ${a.command}`);
    this.busy++;
    this.running.add(a.jobId);
    void (async () => {
      try {
        await this.report(client, a.jobId, { type: 'started', pid: 1000 + this.incarnation }, signal);
        await this.enqueueRun(client, signal, `job ${a.jobId}`);
        entry.ended = true;
        await this.report(client, a.jobId, { type: 'exit', exitCode: 0, signal: null }, signal);
      } catch {
        // The node died: the journal says the job did not end (it is reported killed on return).
      } finally {
        this.running.delete(a.jobId);
        this.busy--;
      }
    })();
  }

  /** Long-poll a group's desired state; a change starts a run when it concerns this node. */
  private async watchDesired(client: MusterClient, group: string, signal: AbortSignal) {
    const key = `/muster/desired/${group}`;
    let revision: number | null = null;
    for (;;) {
      if (revision === null) {
        const kv = await this.retrying(signal, () =>
          client.get(key, { signal }).catch((error: unknown) => {
            if (error instanceof KeyNotFoundError) return null;
            throw error;
          }),
        );
        if (kv === null) {
          // No desired state yet: wait for one.
          await this.retrying(signal, () =>
            client.waitFor(key, { exists: true }, { timeoutMs: WATCH_CHUNK_MS, signal }).catch((error: unknown) => {
              if (!(error instanceof TimeoutError)) throw error;
            }),
          );
          continue;
        }
        revision = kv.modRevision;
      } else {
        const at: number = revision;
        const change: ChangeResult = await this.retrying(signal, () =>
          client.waitForChange(key, at, WATCH_CHUNK_MS, { signal }),
        );
        if (change.type === 'timeout') continue;
        revision = change.type === 'changed' ? change.kv.modRevision : null;
      }
      this.busy++;
      try {
        const target = await this.retrying(signal, () => this.env.recipe.target(client, group, this.name, { signal }));
        if (target !== null && this.converged.get(group) !== tag(target))
          await this.enqueueRun(client, signal, `the desired state of ${group} changed`);
      } finally {
        this.busy--;
      }
    }
  }

  /** A chef-client run, after the ones before it (chef-client runs one at a time). */
  private enqueueRun(client: MusterClient, signal: AbortSignal, why: string): Promise<void> {
    this.busy++;
    const run = this.runs.then(() => this.chefRun(client, signal, why));
    this.runs = run.catch(() => undefined);
    return run.finally(() => this.busy--);
  }

  /** One chef-client run: every group the node is in converges to what the node is to be in, and is reported. */
  private async chefRun(client: MusterClient, signal: AbortSignal, why: string): Promise<void> {
    const { history, release, clock, recipe } = this.env;
    signal.throwIfAborted();
    this.maybeFail();
    const ms = this.pick(release.agent.converge);
    history.record(this.name, `chef-client (${why}): ${seconds(ms)}`);
    const targets: [string, DesiredValue | null][] = [];
    for (const group of this.groups)
      targets.push([group, await this.retrying(signal, () => recipe.target(client, group, this.name, { signal }))]);
    await sleep(clock, ms, signal);
    for (const [group, target] of targets) {
      if (target === null) continue;
      await this.retrying(signal, () => client.reportState(group, this.name, target.state, target.version, { signal }));
      this.converged.set(group, tag(target));
      history.stateReports.push({
        node: this.name,
        group,
        state: target.state,
        version: target.version,
        at: this.env.now(),
      });
      history.record(this.name, `${group}: ${tag(target)}`);
    }
    const health = release.agent.health;
    if (health) {
      await sleep(clock, this.pick(health.after), signal);
      const key = fill(health.key, { node: this.name, role: this.role, random: '' });
      const value = fill(health.value, { node: this.name, role: this.role, random: '' });
      // Bound to the node's session of the moment (a partition may have replaced the one the run began under).
      await this.retrying(signal, async () => {
        const lease = this.session?.leaseId;
        if (lease === undefined) throw new BackendUnavailableError('no session');
        try {
          return await client.put(key, value, { lease, signal });
        } catch (error) {
          if (error instanceof LeaseNotFoundError) throw new BackendUnavailableError('the session was lost');
          throw error;
        }
      });
    }
  }

  /** A job report: the next seq of the job's journal entry; retried while the server cannot be reached. */
  private async report(
    client: MusterClient,
    job: string,
    body: Omit<JobReport, 'seq'> & Record<string, unknown>,
    signal: AbortSignal,
  ): Promise<void> {
    const entry = this.journal.get(job);
    if (!entry) return;
    const report = { seq: entry.next++, ...body } as JobReport;
    await this.retrying(signal, () =>
      client.reportJob(job, this.name, report, { signal }).catch((error: unknown) => {
        const code = (error as { code?: string }).code;
        // The server will never take it (the job ended the node's part already).
        if (code === 'job_not_found' || code === 'job_conflict' || code === 'invalid_request') return;
        throw error;
      }),
    );
  }

  /** A call, tried again a second later while the server cannot be reached (a partition). */
  private async retrying<T>(signal: AbortSignal, call: () => Promise<T>): Promise<T> {
    for (;;) {
      signal.throwIfAborted();
      try {
        return await call();
      } catch (error) {
        if (signal.aborted) throw signal.reason;
        if (!(error instanceof BackendUnavailableError)) throw error;
        await sleep(this.env.clock, RETRY_MS, signal);
      }
    }
  }

  /** At each incarnation and each run: maybe a crash or a partition, at a random moment within a TTL. */
  private maybeFail(): void {
    const { faults, clock, history, scenario } = this.env;
    const ttlMs = scenario.ttlSeconds * 1000;
    if (faults.crash > 0 && this.crashTimer === null && this.random() < faults.crash) {
      this.crashTimer = clock.setTimeout(() => {
        this.crashTimer = null;
        history.crashes++;
        this.downtime = this.pick(faults.downtime);
        history.record(this.name, `crash: down for ${seconds(this.downtime)}, its lease left to expire`);
        this.state = 'down';
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
    if (this.partitionTimer && !this.partitioned) {
      this.env.clock.clearTimeout(this.partitionTimer);
      this.partitionTimer = null;
    }
  }

  /**
   * This incarnation's `fetch`, as a SimNode's (the delay fault, then a turn
   * from the scheduler; cut by a partition, dropped by a crash). The
   * assignment stream stays open after its answer: its body ends when the
   * node dies, the caller aborts, or a partition cuts it.
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
        const cut = this.cut.signal;
        const headers = { ...(init.headers as Record<string, string> | undefined), [SIM_NODE_HEADER]: this.name };
        const streaming = new URL(input).pathname.endsWith('/assignments');
        // A stream outlives this call: it ends with the incarnation, a partition, or its caller.
        const signal = streaming ? AbortSignal.any([death, cut, ...(init.signal ? [init.signal] : [])]) : null;
        const answer = this.env.send(input, { ...init, headers, signal });
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
}

function tag(target: DesiredValue): string {
  return target.version === null ? target.state : `${target.state}@${target.version}`;
}
