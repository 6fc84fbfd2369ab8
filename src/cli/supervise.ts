import { spawn } from 'node:child_process';
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

/**
 * Run a command as a child, passing its output through. SIGINT and SIGTERM sent
 * to muster are forwarded to it; when `lost` aborts, it is stopped at once.
 */
export function runChild(options: RunOptions): Promise<ChildOutcome> {
  const [command, ...args] = options.argv;
  return new Promise((resolve) => {
    let output = '';
    const keep = (chunk: Buffer, stream: { write(c: Uint8Array): unknown }) => {
      stream.write(chunk);
      if (options.captureTail) output = (output + chunk.toString('utf8')).slice(-options.captureTail);
    };
    const child = spawn(command ?? '', args, {
      stdio: options.captureTail ? ['inherit', 'pipe', 'pipe'] : 'inherit',
      env: { ...process.env, ...options.env },
    });
    child.stdout?.on('data', (chunk: Buffer) => keep(chunk, options.io.stdout));
    child.stderr?.on('data', (chunk: Buffer) => keep(chunk, options.io.stderr));
    let lostReason: Error | null = null;
    let killTimer: NodeJS.Timeout | null = null;
    const onLost = () => {
      lostReason = options.lost.reason instanceof Error ? options.lost.reason : new LostError('lost');
      child.kill('SIGTERM');
      killTimer = setTimeout(() => child.kill('SIGKILL'), options.graceMs);
    };
    const forward = (signal: NodeJS.Signals) => child.kill(signal);
    if (options.lost.aborted) onLost();
    else options.lost.addEventListener('abort', onLost, { once: true });
    process.on('SIGINT', forward);
    process.on('SIGTERM', forward);
    const finish = (exitCode: number, message?: string) => {
      options.lost.removeEventListener('abort', onLost);
      process.off('SIGINT', forward);
      process.off('SIGTERM', forward);
      if (killTimer) clearTimeout(killTimer);
      if (message) options.io.stderr.write(message + '\n');
      resolve({ exitCode, lost: lostReason, output });
    };
    child.on('error', (error: NodeJS.ErrnoException) => {
      finish(error.code === 'ENOENT' ? 127 : 126, `muster: cannot run ${command}: ${error.message}`);
    });
    child.on('exit', (code, signal) => {
      finish(code ?? 128 + (signal ? (constants.signals[signal] ?? 0) : 0));
    });
  });
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
    } catch {
      // The watch failing (server gone) is covered by the session's own loss.
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
