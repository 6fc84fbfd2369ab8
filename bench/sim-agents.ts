/**
 * Lightweight simulated agents: the real agent protocol over HTTP (the assignment
 * stream, `GET /v1/nodes/<node>/assignments`, and reports, `POST
 * /v1/jobs/<id>/nodes/<node>/report`), many per process, with "commands" that
 * are scripted behaviours instead of processes. The scheduler tests and `npm run
 * bench -- agents` drive fleets of them.
 */
import { Agent, request } from 'node:http';
import type { IncomingMessage } from 'node:http';
import type { Assignment, AssignmentEvent, JobReport } from '../src/api/agent-protocol.js';

/** What a simulated command does. */
export interface SimBehaviour {
  /** @default 0 */
  readonly exitCode?: number;
  /** Lines written to stdout, one report each. */
  readonly output?: readonly string[];
  /** How long it "runs", ms. @default 0 */
  readonly durationMs?: number;
  /** Refuse it, as an agent does a command that is not allowlisted. */
  readonly reject?: string;
  /**
   * What the command does besides its output (a recipe reporting its state, for
   * plans): runs before it exits; a number returned is its exit code, a throw is 1.
   */
  readonly effect?: (node: string, assignment: Assignment) => Promise<number | void>;
}

export interface SimAgentOptions {
  readonly url: string;
  readonly name: string;
  readonly token?: string;
  /** Command name → behaviour; a name not here is rejected ("not in the allowlist"). */
  readonly commands: Readonly<Record<string, SimBehaviour>>;
  /** Shared keep-alive pool for reports. */
  readonly agent?: Agent;
}

interface Running {
  timer: NodeJS.Timeout | null;
  finished: boolean;
}

/** One simulated node. */
export class SimAgent {
  readonly name: string;
  /** Every assignment event received, in order. */
  readonly received: AssignmentEvent[] = [];
  /** Jobs started (in order), for tests of concurrency. */
  readonly started: string[] = [];
  private readonly seqs = new Map<string, number>();
  private readonly running = new Map<string, Running>();
  private response: IncomingMessage | null = null;
  private lastRevision: number | undefined;
  private stopped = false;
  private paused = false;
  private reconnecting = false;
  private connected: Promise<void> | null = null;
  /** Largest number of commands it ran at once. */
  maxConcurrent = 0;
  /** When the server took each report (performance.now()), by `<jobId>:<type>`. */
  readonly acked = new Map<string, number>();

  constructor(private readonly options: SimAgentOptions) {
    this.name = options.name;
  }

  /** Open the assignment stream (resuming after the last revision seen); resolves once the server answered. */
  connect(): Promise<void> {
    this.stopped = false;
    this.paused = false;
    this.connected = new Promise((resolve, reject) => {
      const query = this.lastRevision !== undefined ? `?from=${this.lastRevision + 1}` : '';
      const req = request(
        `${this.options.url}/v1/nodes/${encodeURIComponent(this.name)}/assignments${query}`,
        {
          headers: {
            accept: 'text/event-stream',
            ...(this.options.token ? { authorization: `Bearer ${this.options.token}` } : {}),
          },
          agent: false,
        },
        (res) => {
          if (res.statusCode !== 200) {
            let body = '';
            res.on('data', (d: Buffer) => (body += d.toString()));
            res.on('end', () => reject(new Error(`assignments: HTTP ${res.statusCode}: ${body}`)));
            return;
          }
          this.response = res;
          res.setEncoding('utf8');
          let buffer = '';
          res.on('data', (text: string) => {
            buffer += text;
            let end: number;
            while ((end = buffer.indexOf('\n\n')) >= 0) {
              const block = buffer.slice(0, end);
              buffer = buffer.slice(end + 2);
              this.onBlock(block);
            }
          });
          res.on('error', () => undefined);
          res.on('close', () => {
            if (this.response === res) this.response = null;
            this.reconnectLater();
          });
          resolve();
        },
      );
      req.on('error', (error) => {
        this.reconnectLater();
        reject(error);
      });
      req.end();
    });
    return this.connected;
  }

  /** After the stream ended without `kill()`/`disconnect()`: connect again (the server restarted). */
  private reconnectLater(): void {
    if (this.stopped || this.paused || this.reconnecting) return;
    this.reconnecting = true;
    setTimeout(() => {
      this.reconnecting = false;
      if (this.stopped || this.paused || this.response) return;
      this.connect().catch(() => undefined);
    }, 200);
  }

  private onBlock(block: string): void {
    let event = '';
    let data = '';
    for (const line of block.split('\n')) {
      if (line.startsWith('event: ')) event = line.slice(7);
      else if (line.startsWith('data: ')) data += line.slice(6);
    }
    if (event !== 'assignment') return;
    const parsed = JSON.parse(data) as AssignmentEvent;
    this.received.push(parsed);
    this.lastRevision = parsed.revision;
    this.handle(parsed.assignment);
  }

  private handle(assignment: Assignment): void {
    const id = assignment.jobId;
    if (assignment.state === 'abort') {
      const run = this.running.get(id);
      if (run && !run.finished) {
        if (run.timer) clearTimeout(run.timer);
        run.finished = true;
        this.running.delete(id);
        void this.report(id, { type: 'exit', exitCode: null, signal: 'SIGTERM', reason: 'aborted' });
      }
      return;
    }
    if (this.running.has(id) || this.seqs.has(id)) return;
    const behaviour = this.options.commands[assignment.command];
    if (!behaviour || behaviour.reject) {
      this.seqs.set(id, 0);
      void this.report(id, {
        type: 'rejected',
        reason: behaviour?.reject ?? `${assignment.command} is not in the allowlist`,
      });
      return;
    }
    const run: Running = { timer: null, finished: false };
    this.running.set(id, run);
    this.started.push(id);
    this.maxConcurrent = Math.max(this.maxConcurrent, this.running.size);
    void (async () => {
      await this.report(id, { type: 'started', pid: 1000 });
      for (const line of behaviour.output ?? []) {
        await this.report(id, { type: 'output', stream: 'stdout', data: line + '\n' });
      }
      let exitCode = behaviour.exitCode ?? 0;
      if (behaviour.effect) {
        const code = await behaviour.effect(this.name, assignment).catch(() => 1);
        if (typeof code === 'number') exitCode = code;
      }
      const finish = () => {
        if (run.finished) return;
        run.finished = true;
        this.running.delete(id);
        void this.report(id, { type: 'exit', exitCode, signal: null });
      };
      if (behaviour.durationMs) run.timer = setTimeout(finish, behaviour.durationMs);
      else finish();
    })();
  }

  /** Send a report (the next seq of this job); retried a few times on network errors. */
  private async report(jobId: string, body: Omit<JobReport, 'seq'> & Record<string, unknown>): Promise<void> {
    const seq = this.seqs.get(jobId) ?? 0;
    this.seqs.set(jobId, seq + 1);
    const payload = JSON.stringify({ seq, ...body });
    for (let attempt = 0; attempt < 30 && !this.stopped; attempt++) {
      try {
        const status = await this.post(`/v1/jobs/${jobId}/nodes/${encodeURIComponent(this.name)}/report`, payload);
        if (status < 300) this.acked.set(`${jobId}:${body.type}`, performance.now());
        if (status < 500) return;
      } catch {
        // Retried below.
      }
      await new Promise((resolve) => setTimeout(resolve, Math.min(1000, 100 * (attempt + 1))));
    }
  }

  private post(path: string, payload: string): Promise<number> {
    return new Promise((resolve, reject) => {
      const req = request(
        `${this.options.url}${path}`,
        {
          method: 'POST',
          headers: {
            'content-type': 'application/json',
            'content-length': Buffer.byteLength(payload),
            ...(this.options.token ? { authorization: `Bearer ${this.options.token}` } : {}),
          },
          ...(this.options.agent ? { agent: this.options.agent } : {}),
        },
        (res) => {
          res.resume();
          res.on('end', () => resolve(res.statusCode ?? 0));
        },
      );
      req.on('error', reject);
      req.end(payload);
    });
  }

  /** Cut the stream and stop whatever "runs" without reporting (as a killed agent would). */
  kill(): void {
    this.stopped = true;
    this.response?.destroy();
    this.response = null;
    for (const run of this.running.values()) if (run.timer) clearTimeout(run.timer);
    this.running.clear();
  }

  /** Cut the stream only (commands go on and report); `connect()` resumes it. */
  disconnect(): void {
    this.paused = true;
    this.response?.destroy();
    this.response = null;
  }

  /** How many commands run now. */
  get busy(): number {
    return this.running.size;
  }
}

/** Many simulated agents sharing one keep-alive pool for reports. */
export class SimFleet {
  readonly agents: SimAgent[] = [];
  readonly pool: Agent;

  constructor(
    private readonly url: string,
    options: { sockets?: number } = {},
  ) {
    this.pool = new Agent({ keepAlive: true, maxSockets: options.sockets ?? 32 });
  }

  add(name: string, commands: Readonly<Record<string, SimBehaviour>>, token?: string): SimAgent {
    const agent = new SimAgent({
      url: this.url,
      name,
      commands,
      agent: this.pool,
      ...(token !== undefined ? { token } : {}),
    });
    this.agents.push(agent);
    return agent;
  }

  get(name: string): SimAgent {
    const agent = this.agents.find((a) => a.name === name);
    if (!agent) throw new Error(`no simulated agent ${name}`);
    return agent;
  }

  /** Connect every agent, `parallel` at a time. */
  async connectAll(parallel = 200): Promise<void> {
    for (let i = 0; i < this.agents.length; i += parallel) {
      await Promise.all(this.agents.slice(i, i + parallel).map((a) => a.connect()));
    }
  }

  close(): void {
    for (const agent of this.agents) agent.kill();
    this.pool.destroy();
  }
}
