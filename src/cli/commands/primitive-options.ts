import { hostname } from 'node:os';
import { InvalidArgumentError as CommanderArgumentError } from 'commander';
import type { Command } from 'commander';
import type { MusterClient } from '../../client/muster-client.js';
import { Session } from '../../client/session.js';
import { parseDuration } from '../../core/duration.js';
import { BackendUnavailableError, MusterError, TimeoutError } from '../../core/errors.js';
import { validateName } from '../../core/key-path.js';
import { ttlArgument } from '../arguments.js';

/** The longest one blocking request waits; longer waits are made of several. */
const MAX_REQUEST_MS = 24 * 3_600_000;

/** A primitive's name. */
export function nameArgument(text: string): string {
  try {
    return validateName(text);
  } catch (error) {
    if (error instanceof MusterError) throw new CommanderArgumentError(error.message);
    throw error;
  }
}

/** A duration such as 30s, 10m, 1h. Returns milliseconds. */
export function durationArgument(text: string): number {
  try {
    const ms = parseDuration(text);
    if (ms <= 0) throw new CommanderArgumentError(`expected a duration above 0, got ${JSON.stringify(text)}`);
    return ms;
  } catch (error) {
    if (error instanceof MusterError) throw new CommanderArgumentError(error.message);
    throw error;
  }
}

/** A whole number ≥ 1. */
export function positiveArgument(text: string): number {
  if (!/^\d+$/.test(text.trim()) || Number(text) < 1) {
    throw new CommanderArgumentError(`expected a whole number ≥ 1, got ${JSON.stringify(text)}`);
  }
  return Number(text);
}

/** Options shared by the commands that hold something under a session. */
export function sessionOptions(command: Command, defaultTtl = '15s'): Command {
  return command
    .option(
      '--ttl <duration>',
      `session TTL: what is held is released this long after muster dies (default ${defaultTtl})`,
      ttlArgument,
    )
    .option(
      '--timeout <duration>',
      'give up waiting after this long (exit 3); default: wait as long as it takes',
      durationArgument,
    )
    .option(
      '--grace <duration>',
      'after SIGTERM, how long the command has before SIGKILL when what it runs under is lost (default 10s)',
      durationArgument,
    );
}

export interface SessionFlags {
  ttl?: number;
  timeout?: number;
  grace?: number;
}

export const DEFAULT_GRACE_MS = 10_000;

/** This machine's name, the default participant id and runner label. */
export function thisHost(): string {
  return (
    hostname()
      .replace(/[^A-Za-z0-9._-]/g, '-')
      .replace(/^[^A-Za-z0-9]+/, '') || 'host'
  );
}

/** Start the session a command holds things under. */
export function startSession(client: MusterClient, flags: SessionFlags): Promise<Session> {
  return Session.start(client, { ttlSeconds: flags.ttl ?? 15 });
}

/**
 * Run a blocking call until it succeeds, its overall `timeoutMs` passes
 * (TimeoutError), or `session` is lost. A server that is briefly unreachable is
 * retried with the same session, which keeps the caller's place in the queue.
 */
export async function untilDone<T>(
  session: Session | null,
  timeoutMs: number | undefined,
  call: (requestTimeoutMs: number, signal: AbortSignal | undefined) => Promise<T>,
): Promise<T> {
  const deadline = timeoutMs === undefined ? Infinity : Date.now() + timeoutMs;
  for (;;) {
    const left = deadline - Date.now();
    if (left <= 0) throw new TimeoutError(`timed out after ${Math.round((timeoutMs ?? 0) / 1000)}s`);
    try {
      return await call(Math.min(left, MAX_REQUEST_MS), session?.lost);
    } catch (error) {
      if (session?.lost.aborted) throw session.lostReason ?? error;
      if (error instanceof TimeoutError && deadline === Infinity) continue;
      if (!(error instanceof BackendUnavailableError) || session === null) throw error;
      await new Promise((resolve) => setTimeout(resolve, 1000));
    }
  }
}
