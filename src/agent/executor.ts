/**
 * Runs one allowlisted command for a job: its argument vector spawned without a
 * shell, in a process group of its own (detached), output streamed in chunks of
 * at most 64 KiB; on abort or timeout, SIGTERM to the whole group, then SIGKILL
 * after the grace period. Resolves once the command has exited and its group is
 * gone.
 */
import { spawn } from 'node:child_process';
import { constants } from 'node:os';
import type { AllowedCommand } from './allowlist.js';

export const MAX_CHUNK_BYTES = 64 * 1024;

export interface ExecOptions {
  readonly command: AllowedCommand;
  readonly argv: readonly string[];
  readonly timeoutMs: number;
  readonly graceMs: number;
  /** Aborting stops the command (SIGTERM to its group, SIGKILL after graceMs). */
  readonly abort: AbortSignal;
  onStarted(pid: number): void;
  onOutput(stream: 'stdout' | 'stderr', data: Buffer): void;
}

export interface ExecOutcome {
  readonly exitCode: number | null;
  readonly signal: string | null;
  readonly reason?: 'timed_out' | 'aborted';
  /** Set when the program could not be started (then exitCode is 127 or 126). */
  readonly error?: string;
}

function signalGroup(pgid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pgid, signal);
  } catch {
    // ESRCH: nobody left in the group.
  }
}

function groupAlive(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
    return true;
  } catch {
    return false;
  }
}

export function execute(options: ExecOptions): Promise<ExecOutcome> {
  const { command, argv } = options;
  return new Promise((resolve) => {
    const child = spawn(argv[0]!, argv.slice(1), {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, ...command.env },
      detached: true,
      ...(command.cwd ? { cwd: command.cwd } : {}),
      ...(command.user ? { uid: command.user.uid, gid: command.user.gid } : {}),
    });
    const group = child.pid;
    let reason: ExecOutcome['reason'];
    let killTimer: NodeJS.Timeout | null = null;
    const stop = (why: 'timed_out' | 'aborted') => {
      if (group === undefined || reason !== undefined) return;
      reason = why;
      signalGroup(group, 'SIGTERM');
      killTimer = setTimeout(() => signalGroup(group, 'SIGKILL'), options.graceMs);
    };
    const timer = setTimeout(() => stop('timed_out'), options.timeoutMs);
    const onAbort = () => stop('aborted');
    if (options.abort.aborted) onAbort();
    else options.abort.addEventListener('abort', onAbort, { once: true });
    if (group !== undefined) options.onStarted(group);
    const chunked = (stream: 'stdout' | 'stderr') => (data: Buffer) => {
      for (let at = 0; at < data.length; at += MAX_CHUNK_BYTES) {
        options.onOutput(stream, data.subarray(at, at + MAX_CHUNK_BYTES));
      }
    };
    child.stdout.on('data', chunked('stdout'));
    child.stderr.on('data', chunked('stderr'));
    let finished = false;
    const finish = async (outcome: ExecOutcome) => {
      if (finished) return;
      finished = true;
      clearTimeout(timer);
      options.abort.removeEventListener('abort', onAbort);
      // What the command started may outlive it: the rest of its group goes too.
      if (group !== undefined && groupAlive(group)) {
        signalGroup(group, 'SIGTERM');
        if (!killTimer) killTimer = setTimeout(() => signalGroup(group, 'SIGKILL'), options.graceMs);
        const until = Date.now() + options.graceMs + 5000;
        while (groupAlive(group) && Date.now() < until) await new Promise((r) => setTimeout(r, 50));
      }
      if (killTimer) clearTimeout(killTimer);
      resolve(outcome);
    };
    child.on('error', (error: NodeJS.ErrnoException) => {
      void finish({
        exitCode: error.code === 'ENOENT' ? 127 : 126,
        signal: null,
        error: `cannot run ${argv[0]}: ${error.message}`,
      });
    });
    // The command exited; what it started may hold its output open: stop the group.
    child.on('exit', () => {
      if (group !== undefined && groupAlive(group)) {
        signalGroup(group, 'SIGTERM');
        if (!killTimer) killTimer = setTimeout(() => signalGroup(group, 'SIGKILL'), options.graceMs);
      }
    });
    // 'close': the exit and the end of its output (the pipes), so no output is reported after the exit.
    child.on('close', (code, signal) => {
      void finish({
        exitCode: code,
        signal: signal ?? null,
        ...(reason ? { reason } : {}),
        ...(code === null && signal === null ? { exitCode: 128 + (constants.signals.SIGKILL ?? 9) } : {}),
      });
    });
  });
}
