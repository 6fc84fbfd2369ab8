import { spawn } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { constants } from 'node:os';
import type { MusterClient } from '../client/muster-client.js';
import type { Session } from '../client/session.js';
import { LostError } from './exit-codes.js';
import type { CliIo } from './io.js';

/** How a command run under a lock (or once, or an election) ended. */
export interface ChildOutcome {
  /** The command's exit code; 128+N when a signal N ended it; 127 when it could not start. */
  readonly exitCode: number;
  /** Why it was stopped, when what it ran under was lost. */
  readonly lost: Error | null;
  /** The tail of stdout and stderr, when `captureTail` was asked for. */
  readonly output: string;
}

export interface RunOptions {
  readonly argv: readonly string[];
  readonly env: Record<string, string>;
  /** Aborts when what the command runs under is lost: SIGTERM at once, SIGKILL after `graceMs`. */
  readonly lost: AbortSignal;
  readonly graceMs: number;
  readonly io: CliIo;
  /** Keep this many characters of output (while still passing it through). */
  readonly captureTail?: number;
}

/** Signals muster passes on to the command's process group. */
const FORWARDED: readonly NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGQUIT'];
/** How often the group is checked for members left behind while it is being stopped. */
const GROUP_POLL_MS = 50;

/**
 * Run a command as a child, passing its output through. The command runs in a
 * process group of its own, and everything aimed at it reaches the whole group
 * (the command and whatever it started): SIGINT, SIGTERM, SIGHUP and SIGQUIT sent to
 * muster, and SIGTERM when `lost` aborts; either is followed by SIGKILL after
 * `graceMs` if the group has not ended by then. When the
 * command exits but something it started is still running in its group, that is
 * stopped the same way (SIGTERM, SIGKILL after `graceMs`): nothing keeps doing the
 * work once the lock is given back. Resolves only once the group is gone.
 *
 * A terminal's stdin is passed through a pipe: a process group other than the
 * terminal's foreground one would be stopped (SIGTTIN) on reading it.
 */
export function runChild(options: RunOptions): Promise<ChildOutcome> {
  const [command, ...args] = options.argv;
  const stdinIsTty = process.stdin.isTTY === true;
  return new Promise((resolve) => {
    let output = '';
    const keep = (chunk: Buffer, stream: { write(c: Uint8Array): unknown }) => {
      stream.write(chunk);
      if (options.captureTail) output = (output + chunk.toString('utf8')).slice(-options.captureTail);
    };
    // Signals are caught before the command starts: under load, muster may be
    // descheduled right after the fork, while the command already runs and someone
    // signals muster. Node runs the handlers on a later turn of the loop, once
    // `group` is known.
    let group: number | undefined = undefined;
    const pending: NodeJS.Signals[] = [];
    const onSignal = (signal: NodeJS.Signals) => {
      if (group === undefined) pending.push(signal);
      else forward(signal);
    };
    for (const signal of FORWARDED) process.on(signal, onSignal);
    const child = spawn(command ?? '', args, {
      stdio: [
        stdinIsTty ? 'pipe' : 'inherit',
        options.captureTail ? 'pipe' : 'inherit',
        options.captureTail ? 'pipe' : 'inherit',
      ],
      env: { ...process.env, ...options.env },
      detached: true,
    });
    if (stdinIsTty && child.stdin) {
      child.stdin.on('error', () => undefined); // the command may exit without reading it
      process.stdin.pipe(child.stdin);
    }
    child.stdout?.on('data', (chunk: Buffer) => keep(chunk, options.io.stdout));
    child.stderr?.on('data', (chunk: Buffer) => keep(chunk, options.io.stderr));
    group = child.pid;
    let lostReason: Error | null = null;
    let killTimer: NodeJS.Timeout | null = null;
    /** SIGKILL to the group once the grace period has passed (armed once). */
    const killAfterGrace = () => {
      if (group === undefined || killTimer) return;
      killTimer = setTimeout(() => signalGroup(group, 'SIGKILL'), options.graceMs);
    };
    const stopGroup = () => {
      if (group === undefined || killTimer) return;
      signalGroup(group, 'SIGTERM');
      killAfterGrace();
    };
    const onLost = () => {
      lostReason = options.lost.reason instanceof Error ? options.lost.reason : new LostError('lost');
      stopGroup();
    };
    // muster was asked to stop: so is the command, with the same grace as on loss.
    const forward = (signal: NodeJS.Signals) => {
      if (group === undefined) return;
      signalGroup(group, signal);
      killAfterGrace();
    };
    if (options.lost.aborted) onLost();
    else options.lost.addEventListener('abort', onLost, { once: true });
    for (const signal of pending.splice(0)) forward(signal);
    let finished = false;
    const finish = async (exitCode: number, message?: string) => {
      if (finished) return;
      finished = true;
      if (stdinIsTty && child.stdin) {
        process.stdin.unpipe(child.stdin);
        process.stdin.pause();
      }
      if (message) options.io.stderr.write(message + '\n');
      // What the command started may outlive it: stop the rest of its group too.
      if (group !== undefined && groupAlive(group)) {
        // Whatever was sent before (a forwarded SIGINT that background jobs ignore),
        // the rest of the group now gets SIGTERM, and SIGKILL after the grace.
        signalGroup(group, 'SIGTERM');
        killAfterGrace();
        while (groupAlive(group)) await new Promise((r) => setTimeout(r, GROUP_POLL_MS));
      }
      options.lost.removeEventListener('abort', onLost);
      for (const signal of FORWARDED) process.off(signal, onSignal);
      if (killTimer) clearTimeout(killTimer);
      resolve({ exitCode, lost: lostReason, output });
    };
    child.on('error', (error: NodeJS.ErrnoException) => {
      void finish(error.code === 'ENOENT' ? 127 : 126, `muster: cannot run ${command}: ${error.message}`);
    });
    child.on('exit', (code, signal) => {
      void finish(code ?? 128 + (signal ? (constants.signals[signal] ?? 0) : 0));
    });
  });
}

/** Send `signal` to every process of the group `pgid` (gone already: nothing to do). */
function signalGroup(pgid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pgid, signal);
  } catch {
    // ESRCH: the group has no member left.
  }
}

/**
 * Whether a process of the group `pgid` is still running. On Linux, /proc tells
 * running members from zombies (an orphan's zombie lingers where nothing reaps
 * it, as in some containers); elsewhere, signal 0 to the group.
 */
function groupAlive(pgid: number): boolean {
  let entries: string[];
  try {
    entries = readdirSync('/proc');
  } catch {
    try {
      process.kill(-pgid, 0);
      return true;
    } catch {
      return false;
    }
  }
  for (const entry of entries) {
    if (!/^\d+$/.test(entry)) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
    } catch {
      continue; // ended meanwhile
    }
    // "pid (comm) state ppid pgrp ...": comm may hold spaces and parentheses.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (Number(fields[2]) === pgid && fields[0] !== 'Z' && fields[0] !== 'X') return true;
  }
  return false;
}

/**
 * A signal that aborts when `session` is lost or when `heldKey` (the lock,
 * slot or candidate key) is deleted by anyone, with a LostError saying which.
 */
export function lostSignal(
  client: MusterClient,
  session: Session,
  heldKey: string,
  token: number,
  what: string,
): {
  signal: AbortSignal;
  dispose: () => void;
} {
  const controller = new AbortController();
  const stopWatch = new AbortController();
  const onSessionLost = () =>
    controller.abort(new LostError(`${what}: the session ended (${session.lostReason?.message ?? 'lease lost'})`));
  if (session.lost.aborted) onSessionLost();
  else session.lost.addEventListener('abort', onSessionLost, { once: true });
  void (async () => {
    try {
      for await (const event of client.watch(heldKey, {
        prefix: false,
        fromRevision: token + 1,
        signal: stopWatch.signal,
      })) {
        if (event.type === 'delete') {
          controller.abort(new LostError(`${what}: ${heldKey} was deleted`));
          return;
        }
      }
      if (!stopWatch.signal.aborted) {
        controller.abort(
          new LostError(`${what}: cannot tell whether it is still held (the watch of ${heldKey} ended)`),
        );
      }
    } catch (error) {
      // Whatever ends the watch (its history compacted, a refusal) leaves no way to
      // tell whether the lock is still held: count it as lost.
      if (!stopWatch.signal.aborted) {
        const why = error instanceof Error ? error.message : String(error);
        controller.abort(new LostError(`${what}: cannot tell whether it is still held (watching ${heldKey}: ${why})`));
      }
    }
  })();
  return {
    signal: controller.signal,
    dispose: () => {
      stopWatch.abort();
      session.lost.removeEventListener('abort', onSessionLost);
    },
  };
}
