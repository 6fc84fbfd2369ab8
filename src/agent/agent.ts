/**
 * `muster agent`: one machine's end of muster (docs/agent.md). A state machine:
 *
 *   ENROLLING  no node token yet: spend one use of an enrolment token on one
 *              (POST /v1/enrol) and keep it in the state folder (0600);
 *   CONNECTING grant a session lease and keep it alive, register the node
 *              (tags, attributes, detected facts) bound to it;
 *   STREAMING  hold the one outbound stream of assignments; run what the
 *              allowlist allows, refuse the rest (`rejected`), stop what is aborted;
 *   BACKOFF    the server went away or the session was lost: wait (exponential,
 *              with jitter) and connect again, registering anew;
 *   STOPPING   SIGTERM: take no new work, let running commands finish up to the
 *              grace period, then stop them (SIGTERM, SIGKILL to their groups);
 *   STOPPED.
 *
 * Reports are numbered per job (seq) and kept in a journal in the state folder
 * until the server took them, so a report is never lost to a reconnect or an
 * agent restart, and never counted twice (the server drops a seq it has).
 */
import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { cpus, hostname, networkInterfaces, platform, release } from 'node:os';
import { join } from 'node:path';
import type { Assignment, AssignmentEvent, JobReport, ReportBody } from '../api/agent-protocol.js';
import { LOST_WITH_AGENT, reportRefusedForGood } from '../api/agent-protocol.js';
import { MusterClient } from '../client/muster-client.js';
import type { ClientTls } from '../client/tls-fetch.js';
import { Session } from '../core/session.js';
import type { Allowlist } from './allowlist.js';
import { resolveCommand } from './allowlist.js';
import { Execution } from './executor.js';

export type AgentState = 'ENROLLING' | 'CONNECTING' | 'STREAMING' | 'BACKOFF' | 'STOPPING' | 'STOPPED';

export interface AgentOptions {
  readonly server: string;
  readonly name: string;
  readonly tags: readonly string[];
  readonly attrs: Readonly<Record<string, string>>;
  readonly allowlist: Allowlist;
  /** Where the node token and the journal are kept. */
  readonly stateDir: string;
  /** A file with an enrolment token, used once when there is no node token yet. */
  readonly enrolTokenFile?: string;
  /** A node token given directly (instead of enrolling). */
  readonly token?: string;
  readonly tls?: ClientTls;
  /** The session TTL, seconds: the node is down this long after the agent dies. @default 10 */
  readonly ttlSeconds?: number;
  /** On stop, how long running commands get to finish, ms. @default 30000 */
  readonly graceMs?: number;
  readonly version?: string;
  readonly log?: (line: string) => void;
}

interface JournalEntry {
  /** The next seq to use. */
  next: number;
  /** Reports not yet taken by the server. */
  unsent: JobReport[];
  /** The command has ended (its exit or rejection is in `unsent` or was sent). */
  ended: boolean;
}

const NODE_TOKEN_FILE = 'node.token';
const JOURNAL_FILE = 'journal.json';

export class Agent {
  private stateValue: AgentState = 'ENROLLING';
  private readonly running = new Map<string, Execution>();
  private journal: Record<string, JournalEntry> = {};
  private readonly stopping = new AbortController();
  private client: MusterClient | null = null;
  private session: Session | null = null;
  private sending: Promise<void> = Promise.resolve();
  private lastRevision: number | undefined;
  private readonly listeners = new Set<(state: AgentState) => void>();

  constructor(private readonly options: AgentOptions) {}

  get state(): AgentState {
    return this.stateValue;
  }

  onState(listener: (state: AgentState) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private moveTo(state: AgentState): void {
    if (this.stateValue === state) return;
    this.stateValue = state;
    this.log(`state ${state}`);
    for (const listener of this.listeners) listener(state);
  }

  private log(line: string): void {
    this.options.log?.(`muster agent ${this.options.name}: ${line}`);
  }

  /** Run until stop(): enrol if needed, then connect, stream, reconnect. */
  async run(): Promise<void> {
    mkdirSync(this.options.stateDir, { recursive: true, mode: 0o700 });
    this.loadJournal();
    const token = await this.nodeToken();
    this.client = new MusterClient({
      endpoints: this.options.server,
      token,
      ...(this.options.tls ? { tls: this.options.tls } : {}),
    });
    let delay = 500;
    while (!this.stopping.signal.aborted) {
      this.moveTo('CONNECTING');
      try {
        await this.connectAndStream();
        delay = 500;
      } catch (error) {
        if (this.stopping.signal.aborted) break;
        this.log(`connection: ${(error as Error).message}`);
      }
      if (this.stopping.signal.aborted) break;
      this.moveTo('BACKOFF');
      const wait = delay / 2 + Math.random() * (delay / 2);
      delay = Math.min(delay * 2, 30_000);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, wait);
        this.stopping.signal.addEventListener('abort', () => (clearTimeout(timer), resolve()), { once: true });
      });
    }
    await this.finish();
  }

  /** Stop: no new work; running commands get the grace period, then are stopped. */
  stop(): void {
    if (this.stopping.signal.aborted) return;
    this.moveTo('STOPPING');
    this.stopping.abort();
  }

  private async finish(): Promise<void> {
    this.moveTo('STOPPING');
    const grace = this.options.graceMs ?? 30_000;
    const all = Promise.all([...this.running.values()].map((e) => e.done));
    const timer = setTimeout(() => {
      for (const execution of this.running.values()) execution.stop('aborted');
    }, grace);
    await all;
    clearTimeout(timer);
    await this.flushReports(5_000);
    await this.session?.close().catch(() => undefined);
    this.moveTo('STOPPED');
  }

  private async nodeToken(): Promise<string> {
    if (this.options.token) return this.options.token;
    const file = join(this.options.stateDir, NODE_TOKEN_FILE);
    if (existsSync(file)) return readFileSync(file, 'utf8').trim();
    this.moveTo('ENROLLING');
    if (!this.options.enrolTokenFile) {
      throw new Error(
        `no node token in ${file} and no enrolment token: give --enrol-token-file (muster token create --role enrol)`,
      );
    }
    const enrolToken = readFileSync(this.options.enrolTokenFile, 'utf8').trim();
    const enroller = new MusterClient({
      endpoints: this.options.server,
      token: enrolToken,
      ...(this.options.tls ? { tls: this.options.tls } : {}),
    });
    const { token } = await enroller.enrol(this.options.name, { description: `muster agent on ${hostname()}` });
    writeFileSync(`${file}.tmp`, token + '\n', { mode: 0o600 });
    chmodSync(`${file}.tmp`, 0o600);
    renameSync(`${file}.tmp`, file);
    this.log(`enrolled; node token kept in ${file}`);
    return token;
  }

  /** The facts this agent detects about its machine. */
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
      agentVersion: this.options.version ?? 'unknown',
      commands: [...this.options.allowlist.keys()],
    };
  }

  private async connectAndStream(): Promise<void> {
    const client = this.client as MusterClient;
    const lost = new AbortController();
    const session = await Session.start(client, {
      ttlSeconds: this.options.ttlSeconds ?? 10,
      onLost: () => lost.abort(),
    });
    this.session = session;
    try {
      await client.registerNode(this.options.name, {
        lease: session.leaseId,
        tags: [...this.options.tags],
        attrs: { ...this.options.attrs },
        facts: this.facts(),
      });
      this.log(`registered (session ${session.leaseId})`);
      this.moveTo('STREAMING');
      void this.pump();
      const signal = AbortSignal.any([lost.signal, this.stopping.signal]);
      for await (const event of client.assignments(this.options.name, {
        signal,
        ...(this.lastRevision !== undefined ? { from: this.lastRevision + 1 } : {}),
      })) {
        this.lastRevision = event.revision;
        this.handle(event);
      }
      if (lost.signal.aborted) throw new Error('the session was lost');
    } finally {
      if (this.stopping.signal.aborted || lost.signal.aborted) session.stop();
      if (lost.signal.aborted) this.session = null;
    }
  }

  private handle(event: AssignmentEvent): void {
    const a: Assignment = event.assignment;
    if (a.state === 'abort') {
      this.running.get(a.jobId)?.stop('aborted');
      return;
    }
    if (this.journal[a.jobId] || this.running.has(a.jobId)) return; // Seen already (a replay after a reconnect).
    this.journal[a.jobId] = { next: 0, unsent: [], ended: false };
    if (this.stopping.signal.aborted) return;
    const resolved = resolveCommand(this.options.allowlist, a.command, a.args);
    if (!resolved.ok) {
      this.log(`job ${a.jobId}: rejected: ${resolved.reason}`);
      this.enqueue(a.jobId, { type: 'rejected', reason: resolved.reason }, true);
      return;
    }
    const timeoutMs = Math.min(a.timeoutMs, resolved.entry.timeoutMs ?? Number.MAX_SAFE_INTEGER);
    const execution = new Execution(
      a.jobId,
      this.options.name,
      resolved.entry,
      resolved.argv,
      timeoutMs,
      a.graceMs,
      (body) => this.enqueue(a.jobId, body, body.type === 'exit' || body.type === 'rejected'),
    );
    this.running.set(a.jobId, execution);
    this.log(`job ${a.jobId}: ${resolved.argv.join(' ')}`);
    execution.start();
    void execution.done.then(() => this.running.delete(a.jobId));
  }

  private enqueue(jobId: string, body: ReportBody, ends: boolean): void {
    const entry = (this.journal[jobId] ??= { next: 0, unsent: [], ended: false });
    entry.unsent.push({ ...body, seq: entry.next } as JobReport);
    entry.next++;
    if (ends) entry.ended = true;
    this.saveJournal();
    void this.pump();
  }

  /** Send what is unsent, in order per job; what fails stays for the next try. */
  private pump(): Promise<void> {
    this.sending = this.sending.then(async () => {
      const client = this.client;
      if (!client) return;
      for (const [jobId, entry] of Object.entries(this.journal)) {
        while (entry.unsent.length > 0) {
          const report = entry.unsent[0] as JobReport;
          try {
            await client.reportJob(jobId, this.options.name, report);
          } catch (error) {
            if (!reportRefusedForGood(error)) {
              setTimeout(() => void this.pump(), 1000).unref();
              return;
            }
          }
          entry.unsent.shift();
          this.saveJournal();
        }
        if (entry.ended && entry.unsent.length === 0 && !this.running.has(jobId)) {
          // Kept as a tombstone so that a replayed assignment is not run twice.
          entry.unsent = [];
        }
      }
    });
    return this.sending;
  }

  private async flushReports(timeoutMs: number): Promise<void> {
    await Promise.race([this.pump(), new Promise((r) => setTimeout(r, timeoutMs).unref())]);
  }

  private loadJournal(): void {
    const file = join(this.options.stateDir, JOURNAL_FILE);
    if (!existsSync(file)) return;
    try {
      this.journal = JSON.parse(readFileSync(file, 'utf8')) as Record<string, JournalEntry>;
    } catch {
      this.journal = {};
    }
    for (const [jobId, entry] of Object.entries(this.journal)) {
      if (!entry.ended) {
        // This agent died while the command ran: its process group was left behind, or died with it.
        entry.unsent.push({ seq: entry.next, ...LOST_WITH_AGENT });
        entry.next++;
        entry.ended = true;
        this.log(`job ${jobId}: was running when the agent stopped; reported as failed (how it ended is unknown)`);
      }
    }
  }

  private saveJournal(): void {
    const file = join(this.options.stateDir, JOURNAL_FILE);
    // Keep the last 1000 jobs' tombstones.
    const ids = Object.keys(this.journal);
    for (const id of ids.slice(0, Math.max(0, ids.length - 1000))) {
      if (this.journal[id]?.ended && this.journal[id]?.unsent.length === 0) delete this.journal[id];
    }
    writeFileSync(`${file}.tmp`, JSON.stringify(this.journal));
    renameSync(`${file}.tmp`, file);
  }
}
