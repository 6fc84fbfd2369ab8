/**
 * Runs one allowlisted command for one job: its own process group (so a stop
 * reaches everything it started), output streamed in chunks, stopped with
 * SIGTERM then SIGKILL after the grace period on abort, timeout or agent stop.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { StringDecoder } from 'node:string_decoder';
import type { ReportBody } from '../api/agent-protocol.js';
import type { AllowedCommand } from './allowlist.js';

/** Output is sent in chunks of at most this many bytes, at most this often. */
const CHUNK_BYTES = 60 * 1024;
const FLUSH_MS = 100;

export class Execution {
  private child: ChildProcess | null = null;
  private stopReason: 'timed_out' | 'aborted' | null = null;
  private killTimer: NodeJS.Timeout | null = null;
  private timeoutTimer: NodeJS.Timeout | null = null;
  /** Resolves when the command has exited and its exit was reported. */
  readonly done: Promise<void>;
  private resolveDone!: () => void;

  constructor(
    readonly jobId: string,
    private readonly node: string,
    private readonly entry: AllowedCommand,
    private readonly argv: readonly string[],
    private readonly timeoutMs: number,
    private readonly graceMs: number,
    private readonly report: (body: ReportBody) => void,
  ) {
    this.done = new Promise((resolve) => (this.resolveDone = resolve));
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  start(): void {
    const [program, ...args] = this.argv as [string, ...string[]];
    let child: ChildProcess;
    try {
      child = spawn(program, args, {
        cwd: this.entry.cwd ?? undefined,
        env: { ...process.env, ...this.entry.env, MUSTER_JOB_ID: this.jobId, MUSTER_NODE: this.node },
        detached: true,
        stdio: ['ignore', 'pipe', 'pipe'],
        ...(this.entry.user ? { uid: this.entry.user.uid, gid: this.entry.user.gid } : {}),
      });
    } catch (error) {
      this.report({ type: 'rejected', reason: `cannot start ${program}: ${(error as Error).message}` });
      this.resolveDone();
      return;
    }
    this.child = child;
    let spawned = false;
    child.once('spawn', () => {
      spawned = true;
      this.report({ type: 'started', pid: child.pid ?? 0 });
    });
    const streams: [NodeJS.ReadableStream | null, 'stdout' | 'stderr'][] = [
      [child.stdout, 'stdout'],
      [child.stderr, 'stderr'],
    ];
    const pending: Record<'stdout' | 'stderr', string> = { stdout: '', stderr: '' };
    const decoders = { stdout: new StringDecoder('utf8'), stderr: new StringDecoder('utf8') };
    let flushTimer: NodeJS.Timeout | null = null;
    const flush = (): void => {
      if (flushTimer) clearTimeout(flushTimer);
      flushTimer = null;
      for (const stream of ['stdout', 'stderr'] as const) {
        let text = pending[stream];
        pending[stream] = '';
        while (text.length > 0) {
          const piece = text.slice(0, CHUNK_BYTES / 4);
          text = text.slice(piece.length);
          this.report({ type: 'output', stream, data: piece });
        }
      }
    };
    for (const [stream, name] of streams) {
      stream?.on('data', (chunk: Buffer) => {
        pending[name] += decoders[name].write(chunk);
        if (pending[name].length >= CHUNK_BYTES / 4) flush();
        else if (!flushTimer) flushTimer = setTimeout(flush, FLUSH_MS);
      });
    }
    if (this.timeoutMs > 0) this.timeoutTimer = setTimeout(() => this.stop('timed_out'), this.timeoutMs);
    child.once('error', (error) => {
      if (spawned) return;
      this.clearTimers();
      this.report({ type: 'rejected', reason: `cannot start ${program}: ${error.message}` });
      this.resolveDone();
    });
    child.once('close', (code, signal) => {
      if (!spawned) return;
      this.clearTimers();
      for (const name of ['stdout', 'stderr'] as const) pending[name] += decoders[name].end();
      flush();
      this.report({
        type: 'exit',
        exitCode: code,
        signal,
        ...(this.stopReason ? { reason: this.stopReason } : {}),
      });
      this.resolveDone();
    });
  }

  /** SIGTERM to the whole process group, SIGKILL after the grace period. */
  stop(reason: 'timed_out' | 'aborted'): void {
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null || this.stopReason) return;
    this.stopReason = reason;
    this.signalGroup('SIGTERM');
    this.killTimer = setTimeout(() => this.signalGroup('SIGKILL'), this.graceMs);
  }

  private signalGroup(signal: NodeJS.Signals): void {
    const pid = this.child?.pid;
    if (pid === undefined) return;
    try {
      process.kill(-pid, signal);
    } catch {
      // The group is gone already.
    }
  }

  private clearTimers(): void {
    if (this.timeoutTimer) clearTimeout(this.timeoutTimer);
    // The SIGKILL stays armed for whatever the command left running in its group.
    this.timeoutTimer = null;
  }
}
