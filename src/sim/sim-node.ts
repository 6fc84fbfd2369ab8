import type { Held, LeaseId } from '../client/index.js';
import type { MusterClient } from '../client/muster-client.js';
import type { Session } from '../core/session.js';
import { sleep } from '../core/clock.js';
import { TimeoutError } from '../core/errors.js';
import type { OnceRun } from './history.js';
import { seconds } from './history.js';
import type { Role, Step } from './scenario.js';
import { fill } from './scenario.js';
import type { PeerEnv } from './sim-peer.js';
import { RETRY_MS, SimPeer, message } from './sim-peer.js';

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
export interface NodeEnv extends PeerEnv {
  readonly lockImpl: LockImpl;
  /** How many nodes take each step (a barrier's `count: all`). */
  readonly takers: readonly number[];
}

export type NodeState = 'waiting' | 'up' | 'down' | 'finished';

/** The longest a node's single blocking call waits on the server before it asks again. */
const BLOCKING_CHUNK_MS = 60_000;
/** How long a candidate waits to lead before it counts itself a follower. */
const CAMPAIGN_TIMEOUT_MS = 1000;

/**
 * One simulated node: it starts after a random delay, opens a session (a lease
 * kept alive every TTL/3 by the client's Session, as a real client's is), runs
 * the scenario's steps through a MusterClient whose requests reach the
 * in-process server through the scheduler, and suffers the faults: a crash
 * ends its incarnation (its lease is left to expire; it returns after a
 * downtime and starts over), a partition cuts its requests and keepalives for
 * a while (its session may then be lost: it starts over with a new one).
 */
export class SimNode extends SimPeer<NodeEnv> {
  state: NodeState = 'waiting';
  /** The step being run (index into the scenario's steps). */
  step = 0;
  private electionRole: Role | null = null;
  private election: { readonly name: string; readonly step: number } | null = null;
  /** Recorded when the put of `key` reaches the server (so it shows before the waiters it wakes). */
  private onSent: { readonly key: string; readonly note: () => void } | null = null;

  protected markDown(): void {
    this.state = 'down';
  }

  /** Finished every step: the run can end. */
  get settled(): boolean {
    return this.state === 'finished';
  }

  /** Down, or the step the node is at. */
  describeUnsettled(): string {
    if (this.state === 'down') return 'down';
    const step = this.env.scenario.steps[this.step];
    return step ? `${step.kind} at ${step.where}` : 'start';
  }

  protected prepareIncarnation(): void {
    this.state = 'up';
    this.onSent = null;
  }

  /** The steps, session after session, until it finished every one (true). */
  protected async serveIncarnation(client: MusterClient, death: AbortSignal): Promise<boolean> {
    const { history } = this.env;
    for (;;) {
      const session = await this.openSession(client, death);
      this.session = session;
      history.record(this.name, `session ${session.leaseId} (ttl ${session.ttlSeconds}s)`);
      if (await this.runSteps(client, session, death)) {
        this.state = 'finished';
        this.clearFaultTimers();
        history.record(this.name, 'finished');
        return true;
      }
      session.stop();
      history.record(this.name, `session lost (${session.lostReason?.message ?? 'ended'}): starting over`);
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

  /** A put of the key the node waits to see sent is noted as it reaches the server. */
  protected override onRequest(input: string, init: RequestInit): void {
    const pending = this.onSent;
    if (pending && init.method === 'PUT' && new URL(input).pathname === '/v1/kv' + pending.key) {
      this.onSent = null;
      pending.note();
    }
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
