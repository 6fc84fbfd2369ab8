/**
 * `muster agent`: the node's side of push jobs (docs/agent.md). A state machine:
 *
 *   enrolling → connecting → registered → streaming → backoff → connecting …
 *                                  any state → stopping → stopped
 *
 * It enrols once (an enrolment token → a node token kept in the state folder,
 * 0600), keeps a session (a lease kept alive), registers the node on it, holds
 * one outbound assignment stream (resumed from the last revision seen), runs
 * allowlisted commands and reports on them (journalled until acknowledged). A
 * lost session or a broken stream leads to backoff (with jitter), then a new
 * session and a new registration.
 */
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { cpus, hostname, networkInterfaces, platform, release } from 'node:os';
import { join } from 'node:path';
import type { Assignment, AssignmentEvent } from '../api/agent-protocol.js';
import { MusterClient } from '../client/muster-client.js';
import { Backoff } from '../core/backoff.js';
import { sleep } from '../core/clock.js';
import { MusterError } from '../core/errors.js';
import type { Runtime } from '../core/runtime.js';
import { systemRuntime } from '../core/runtime.js';
import { Session } from '../core/session.js';
import type { Allowlist } from './allowlist.js';
import { resolveAssignment } from './allowlist.js';
import { execute } from './executor.js';
import { Journal } from './journal.js';
import type { PendingReport } from './journal.js';

export type AgentState = 'enrolling' | 'connecting' | 'registered' | 'streaming' | 'backoff' | 'stopping' | 'stopped';

export interface AgentOptions {
  /** Server URLs (tried in order). */
  readonly servers: readonly string[];
  readonly name: string;
  readonly tags: readonly string[];
  readonly attrs: Readonly<Record<string, string>>;
  readonly allowlist: Allowlist;
  readonly stateDir: string;
  /** A file holding an enrolment token, used once when the state folder has no node token. */
  readonly enrolTokenFile?: string;
  /** A node token given directly (instead of enrolling). */
  readonly token?: string;
  /** PEM of the CA that signed the server's certificate. */
  readonly ca?: string;
  /** The session's TTL, seconds. @default 10 */
  readonly sessionTtlSeconds?: number;
  /** On stop, how long a running command may go on before it is stopped. @default 30 s */
  readonly stopGraceMs?: number;
  readonly agentVersion?: string;
  readonly runtime?: Runtime;
  /** One line per state change and notable event. */
  readonly log?: (line: string) => void;
}

interface SavedState {
  lastRevision?: number;
  /** Jobs already run (or refused) here: an assignment replayed for one is not run again. */
  handled?: string[];
}

const MAX_HANDLED = 1000;

export class Agent {
  private currentState: AgentState = 'connecting';
  private readonly stopping = new AbortController();
  private readonly runtime: Runtime;
  private readonly journal: Journal;
  private saved: SavedState;
  private readonly handled: Set<string>;
  private readonly running = new Map<string, AbortController>();
  private readonly runs = new Set<Promise<void>>();
  private client: MusterClient | null = null;
  private wakeSender: (() => void) | null = null;
  private sender: Promise<void> | null = null;
  private done: Promise<void> | null = null;

  constructor(private readonly options: AgentOptions) {
    this.runtime = options.runtime ?? systemRuntime;
    mkdirSync(options.stateDir, { recursive: true, mode: 0o700 });
    this.journal = new Journal(options.stateDir);
    this.saved = this.readSaved();
    this.handled = new Set([...(this.saved.handled ?? []), ...this.journal.jobs()]);
  }

  get state(): AgentState {
    return this.currentState;
  }

  /** Run until `stop()`. Rejects only when it cannot start at all (no token, enrolment refused). */
  start(): Promise<void> {
    this.done ??= this.run();
    return this.done;
  }

  /**
   * Stop taking work; let running commands finish for up to stopGraceMs, then
   * stop them (SIGTERM, SIGKILL after their grace); send what is pending; end
   * the session (the node goes down at once).
   */
  async stop(): Promise<void> {
    if (!this.stopping.signal.aborted) {
      this.setState('stopping');
      this.stopping.abort(new Error('stopping'));
    }
    await this.done?.catch(() => undefined);
  }

  private setState(state: AgentState, detail = ''): void {
    if (this.currentState === state && !detail) return;
    this.currentState = state;
    this.options.log?.(`agent ${this.options.name}: ${state}${detail ? ` (${detail})` : ''}`);
  }

  private async run(): Promise<void> {
    const token = await this.nodeToken();
    this.client = new MusterClient({
      endpoints: [...this.options.servers],
      token,
      runtime: this.runtime,
      ...(this.options.ca ? { tls: { ca: this.options.ca } } : {}),
    });
    this.sender = this.sendReports(this.client);
    const backoff = new Backoff(this.runtime, { initialMs: 250, maxMs: 10_000 });
    while (!this.stopping.signal.aborted) {
      const broke = await this.connectOnce(this.client).then(
        () => null,
        (error: unknown) => error,
      );
      if (this.stopping.signal.aborted) break;
      if (broke === null) backoff.reset();
      const delay = backoff.next();
      this.setState('backoff', `${broke instanceof Error ? broke.message : 'stream ended'}; again in ${delay} ms`);
      await backoff.wait(this.stopping.signal, delay).catch(() => undefined);
    }
    await this.finish();
  }

  /** One connection: session, registration, stream, until something breaks. */
  private async connectOnce(client: MusterClient): Promise<void> {
    this.setState('connecting');
    const connection = new AbortController();
    const onStop = () => connection.abort(new Error('stopping'));
    this.stopping.signal.addEventListener('abort', onStop, { once: true });
    let session: Session | null = null;
    try {
      session = await Session.start(client, {
        ttlSeconds: this.options.sessionTtlSeconds ?? 10,
        clock: this.runtime.clock,
        onLost: (reason) => connection.abort(reason),
      });
      await client.registerNode(
        this.options.name,
        { lease: session.leaseId, tags: [...this.options.tags], attrs: { ...this.options.attrs }, facts: this.facts() },
        { signal: connection.signal },
      );
      this.setState('registered', `lease ${session.leaseId}`);
      this.wakeSender?.();
      const from = this.saved.lastRevision !== undefined ? this.saved.lastRevision + 1 : undefined;
      this.setState('streaming');
      for await (const event of client.assignments(this.options.name, {
        signal: connection.signal,
        ...(from !== undefined ? { from } : {}),
      })) {
        this.onAssignment(event);
      }
      if (connection.signal.aborted && !this.stopping.signal.aborted) {
        throw connection.signal.reason instanceof Error ? connection.signal.reason : new Error('session lost');
      }
    } finally {
      this.stopping.signal.removeEventListener('abort', onStop);
      // While stopping, the session is kept until the running commands have ended (finish()).
      if (session && !this.stopping.signal.aborted) await session.close().catch(() => undefined);
      else if (session) this.closingSession = session;
    }
  }

  private closingSession: Session | null = null;

  private onAssignment(event: AssignmentEvent): void {
    const { assignment } = event;
    this.saved.lastRevision = Math.max(this.saved.lastRevision ?? 0, event.revision);
    if (assignment.state === 'abort') {
      const run = this.running.get(assignment.jobId);
      if (run) {
        this.options.log?.(`job ${assignment.jobId}: abort`);
        run.abort();
      }
      this.writeSaved();
      return;
    }
    if (this.handled.has(assignment.jobId)) {
      this.writeSaved();
      return;
    }
    this.handled.add(assignment.jobId);
    this.writeSaved();
    const run = this.runJob(assignment).catch((error: unknown) => {
      this.options.log?.(`job ${assignment.jobId}: ${(error as Error).message}`);
    });
    this.runs.add(run);
    void run.finally(() => this.runs.delete(run));
  }

  private report(jobId: string, report: Parameters<Journal['add']>[1]): void {
    this.journal.add(jobId, report);
    this.wakeSender?.();
  }

  private async runJob(assignment: Assignment): Promise<void> {
    const { jobId } = assignment;
    const resolved = resolveAssignment(this.options.allowlist, assignment);
    if (!resolved.ok) {
      this.options.log?.(`job ${jobId}: rejected: ${resolved.reason}`);
      this.report(jobId, { type: 'rejected', reason: resolved.reason });
      return;
    }
    if (this.stopping.signal.aborted) {
      this.report(jobId, { type: 'rejected', reason: 'the agent is stopping' });
      return;
    }
    const abort = new AbortController();
    this.running.set(jobId, abort);
    this.options.log?.(`job ${jobId}: run ${JSON.stringify(resolved.argv)}`);
    try {
      const outcome = await execute({
        command: resolved.command,
        argv: resolved.argv,
        timeoutMs: resolved.timeoutMs,
        graceMs: assignment.graceMs,
        abort: abort.signal,
        onStarted: (pid) => this.report(jobId, { type: 'started', pid }),
        onOutput: (stream, data) => {
          const text = data.toString('utf8');
          if (Buffer.from(text, 'utf8').equals(data)) this.report(jobId, { type: 'output', stream, data: text });
          else this.report(jobId, { type: 'output', stream, data: data.toString('base64'), encoding: 'base64' });
        },
      });
      if (outcome.error) {
        this.report(jobId, { type: 'output', stream: 'stderr', data: outcome.error + '\n' });
      }
      this.report(jobId, {
        type: 'exit',
        exitCode: outcome.signal !== null ? null : outcome.exitCode,
        signal: outcome.signal,
        ...(outcome.reason ? { reason: outcome.reason } : {}),
      });
      this.options.log?.(
        `job ${jobId}: exit ${outcome.exitCode ?? outcome.signal ?? '?'}${outcome.reason ? ` (${outcome.reason})` : ''}`,
      );
    } finally {
      this.running.delete(jobId);
    }
  }

  /** Send journalled reports in order, for as long as the agent runs (and until drained on stop). */
  private async sendReports(client: MusterClient): Promise<void> {
    const backoff = new Backoff(this.runtime, { initialMs: 200, maxMs: 5000 });
    for (;;) {
      const next: PendingReport | undefined = this.journal.pending[0];
      if (!next) {
        if (this.drained) return;
        await new Promise<void>((resolve) => (this.wakeSender = resolve));
        this.wakeSender = null;
        continue;
      }
      try {
        await client.reportJob(next.jobId, this.options.name, next.report, { timeoutMs: 10_000 });
        backoff.reset();
        this.journal.ack(next);
        if (next.report.type === 'exit' || next.report.type === 'rejected') this.journal.forget(next.jobId);
      } catch (error) {
        if (
          error instanceof MusterError &&
          !error.retryable &&
          error.code !== 'unavailable' &&
          error.code !== 'closed'
        ) {
          // The server will never take it (the job was pruned, the node has no part in it): drop it.
          this.options.log?.(`report ${next.jobId}#${next.report.seq} dropped: ${error.message}`);
          this.journal.ack(next);
          continue;
        }
        if (this.drained && this.giveUpSending) return;
        await backoff.wait(undefined).catch(() => undefined);
      }
    }
  }

  private drained = false;
  private giveUpSending = false;

  private async finish(): Promise<void> {
    const grace = this.options.stopGraceMs ?? 30_000;
    if (this.running.size > 0) {
      this.options.log?.(`agent ${this.options.name}: waiting up to ${grace} ms for ${this.running.size} command(s)`);
      const all = Promise.all([...this.runs]);
      const timedOut = await Promise.race([all.then(() => false), sleep(this.runtime.clock, grace).then(() => true)]);
      if (timedOut) for (const run of this.running.values()) run.abort();
      await all;
    }
    // Send what is pending, for a few seconds at most.
    this.drained = true;
    this.wakeSender?.();
    const sent = await Promise.race([
      (this.sender ?? Promise.resolve()).then(() => true),
      sleep(this.runtime.clock, 5000).then(() => false),
    ]);
    if (!sent) this.giveUpSending = true;
    await this.closingSession?.close().catch(() => undefined);
    this.setState('stopped');
  }

  private async nodeToken(): Promise<string> {
    if (this.options.token) return this.options.token;
    const file = join(this.options.stateDir, 'node.token');
    if (existsSync(file)) return readFileSync(file, 'utf8').trim();
    this.setState('enrolling');
    if (!this.options.enrolTokenFile) {
      throw new Error(`no node token in ${file} and no --enrol-token-file to enrol with`);
    }
    const enrolToken = readFileSync(this.options.enrolTokenFile, 'utf8').trim();
    const enroller = new MusterClient({
      endpoints: [...this.options.servers],
      token: enrolToken,
      runtime: this.runtime,
      ...(this.options.ca ? { tls: { ca: this.options.ca } } : {}),
    });
    const backoff = new Backoff(this.runtime, { initialMs: 250, maxMs: 10_000 });
    for (;;) {
      try {
        const { token } = await enroller.enrol(this.options.name, { description: `muster agent on ${hostname()}` });
        writeFileSync(file + '.tmp', token + '\n', { mode: 0o600 });
        renameSync(file + '.tmp', file);
        this.options.log?.(`agent ${this.options.name}: enrolled; node token kept in ${file}`);
        return token;
      } catch (error) {
        // A refusal (a spent or wrong enrolment token) will not change: stop with it.
        if (error instanceof MusterError && error.code !== 'unavailable' && error.code !== 'closed') throw error;
        if (this.stopping.signal.aborted) throw new Error('stopped before enrolling');
        await backoff.wait(this.stopping.signal).catch(() => undefined);
      }
    }
  }

  /** What the agent detects about its machine (and the names of its allowlisted commands). */
  facts(): Record<string, unknown> {
    const addresses = Object.values(networkInterfaces())
      .flat()
      .filter((a) => a !== undefined && !a.internal)
      .map((a) => a!.address);
    return {
      hostname: hostname(),
      addresses,
      os: platform(),
      osRelease: release(),
      cpus: cpus().length,
      agentVersion: this.options.agentVersion ?? 'unknown',
      commands: [...this.options.allowlist.keys()],
    };
  }

  private readSaved(): SavedState {
    try {
      return JSON.parse(readFileSync(join(this.options.stateDir, 'state.json'), 'utf8')) as SavedState;
    } catch {
      return {};
    }
  }

  private writeSaved(): void {
    const handled = [...this.handled].slice(-MAX_HANDLED);
    this.saved = { ...this.saved, handled };
    const file = join(this.options.stateDir, 'state.json');
    writeFileSync(file + '.tmp', JSON.stringify(this.saved), { mode: 0o600 });
    renameSync(file + '.tmp', file);
  }
}
