import type { AssignmentEvent, JobReport, ReportBody } from '../api/agent-protocol.js';
import { LOST_WITH_AGENT, reportRefusedForGood } from '../api/agent-protocol.js';
import type { MusterClient } from '../client/muster-client.js';
import type { ChangeResult } from '../client/index.js';
import type { DesiredValue } from '../client/plan-types.js';
import { sleep } from '../core/clock.js';
import { BackendUnavailableError, KeyNotFoundError, LeaseNotFoundError, TimeoutError } from '../core/errors.js';
import type { Session } from '../core/session.js';
import { nodeMatcher } from '../nodes/query.js';
import { planKeys } from '../plans/plan-model.js';
import { describeValue, seconds } from './history.js';
import type { Release } from './scenario.js';
import { fill } from './scenario.js';
import type { PeerEnv } from './sim-peer.js';
import { SimPeer } from './sim-peer.js';

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
export interface AgentEnv extends PeerEnv {
  readonly release: Release;
  readonly recipe: RecipeImpl;
}

/** The longest one long poll of the desired state waits before it is asked again. */
const WATCH_CHUNK_MS = 60_000;

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
 * that was running when the node died is reported failed on its return (as `muster agent` reports it).
 */
export class AgentNode extends SimPeer<AgentEnv> {
  state: 'waiting' | 'up' | 'down' = 'waiting';
  /** Registering and the boot run under way. */
  booting = false;
  /** Chef-client runs, jobs and reactions to a change under way. */
  busy = 0;
  /** The groups this node is in (the scenario's group queries on its role). */
  readonly groups: readonly string[];
  private readonly journal = new Map<string, JournalEntry>();
  /** Jobs whose run is under way in this incarnation. */
  private readonly running = new Set<string>();
  /** Runs one at a time (chef-client takes a lock of its own). */
  private runs: Promise<void> = Promise.resolve();
  /** What the node last converged each group to (`state@version`). */
  private readonly converged = new Map<string, string>();

  constructor(index: number, name: string, role: string, random: () => number, env: AgentEnv) {
    super(index, name, role, random, env);
    const node = { name, up: true, tags: [], attrs: { role } };
    this.groups = env.release.groups.filter((g) => nodeMatcher(g.query)(node)).map((g) => g.name);
  }

  protected markDown(): void {
    this.state = 'down';
  }

  /** The crash timer marks the node down at once (before its incarnation has wound down). */
  protected override onCrash(): void {
    this.state = 'down';
  }

  /** Up, registered, and nothing under way (a node waiting on its streams and long polls). */
  get idle(): boolean {
    return this.state === 'up' && !this.booting && this.busy === 0;
  }

  /** Down, or idle: the run can end. */
  get settled(): boolean {
    return this.state === 'down' || this.idle;
  }

  describeUnsettled(): string {
    return this.state === 'waiting' ? 'not started' : 'busy';
  }

  protected prepareIncarnation(): void {
    this.state = 'up';
    this.converged.clear();
  }

  /** Sessions one after another until the incarnation dies (an agent is never done for good). */
  protected async serveIncarnation(client: MusterClient, death: AbortSignal): Promise<boolean> {
    const { history } = this.env;
    this.maybeFail();
    for (;;) {
      this.booting = true;
      const session = await this.openSession(client, death);
      this.session = session;
      const signal = AbortSignal.any([death, session.lost]);
      try {
        await this.serve(client, session, signal, death);
      } catch (error) {
        if (death.aborted) throw death.reason;
        if (!session.lost.aborted) throw error;
      }
      session.stop();
      history.record(this.name, `session lost (${session.lostReason?.message ?? 'ended'}): registering again`);
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
      await this.report(client, job, LOST_WITH_AGENT, signal);
      history.record(this.name, `job ${job}: reported failed (it was running when the node went down)`);
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
        // The node died: the journal says the job did not end (it is reported failed on return).
      } finally {
        this.running.delete(a.jobId);
        this.busy--;
      }
    })();
  }

  /** Long-poll a group's desired state; a change starts a run when it concerns this node. */
  private async watchDesired(client: MusterClient, group: string, signal: AbortSignal) {
    const key = planKeys.desired(group);
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
        if (target !== null && this.converged.get(group) !== describeValue(target))
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
      this.converged.set(group, describeValue(target));
      history.stateReports.push({
        node: this.name,
        group,
        state: target.state,
        version: target.version,
        at: this.env.now(),
      });
      history.record(this.name, `${group}: ${describeValue(target)}`);
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
  private async report(client: MusterClient, job: string, body: ReportBody, signal: AbortSignal): Promise<void> {
    const entry = this.journal.get(job);
    if (!entry) return;
    const report: JobReport = { seq: entry.next++, ...body };
    await this.retrying(signal, () =>
      client.reportJob(job, this.name, report, { signal }).catch((error: unknown) => {
        if (!reportRefusedForGood(error)) throw error;
      }),
    );
  }
}
