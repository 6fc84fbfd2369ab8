import type { MusterClient } from '../../client/muster-client.js';
import type { Session } from '../../client/session.js';
import type { CliContext } from '../context.js';
import { LostError } from '../exit-codes.js';
import { aborted, untilInterrupted } from '../interrupt.js';
import { lostSignal, runChild } from '../supervise.js';
import type { SessionFlags } from './primitive-options.js';
import { DEFAULT_GRACE_MS, startSession, untilDone } from './primitive-options.js';

export interface HoldOptions {
  readonly client: MusterClient;
  readonly session: Session;
  readonly held: { readonly key: string; readonly token: number };
  /** Names what is held, for messages: "lock db-migrate". */
  readonly what: string;
  /** Environment for the command (MUSTER_LOCK_TOKEN, ...). */
  readonly env: Record<string, string>;
  /** The command after `--`; empty: hold until interrupted. */
  readonly argv: readonly string[];
  readonly graceMs?: number;
  /** Give back what is held (release, resign). */
  readonly release: () => Promise<void>;
  /** Printed when holding without a command. */
  readonly heldMessage: string;
}

/**
 * Run the command while holding something (a lock, a slot, the leadership), or
 * hold it until interrupted; then give it back and end the session. If it is
 * lost meanwhile, the command is stopped and this throws LostError (exit 5).
 * Resolves to the exit code.
 */
export async function holdAndRun(ctx: CliContext, options: HoldOptions): Promise<number> {
  const { client, session, held, what } = options;
  const lost = lostSignal(client, session, held.key, held.token, what);
  try {
    let exitCode = 0;
    if (options.argv.length > 0) {
      const outcome = await runChild({
        argv: options.argv,
        env: options.env,
        lost: lost.signal,
        graceMs: options.graceMs ?? DEFAULT_GRACE_MS,
        io: ctx.io,
      });
      if (outcome.lost) throw outcome.lost;
      exitCode = outcome.exitCode;
    } else {
      ctx.print(options.heldMessage);
      const interrupt = untilInterrupted();
      try {
        await Promise.race([aborted(interrupt.signal), aborted(lost.signal)]);
      } finally {
        interrupt.dispose();
      }
      if (lost.signal.aborted) throw lost.signal.reason instanceof Error ? lost.signal.reason : new LostError(what);
    }
    lost.dispose();
    await options
      .release()
      .catch((error: unknown) => ctx.warn(`muster: could not release ${what}: ${(error as Error).message}`));
    return exitCode;
  } finally {
    lost.dispose();
    await session.close().catch(() => undefined);
  }
}

/** What `acquireAndHold` takes, given the session once it exists. */
export interface AcquireSpec<H extends { readonly key: string; readonly token: number }> {
  readonly what: string;
  readonly argv: readonly string[];
  /** One try at acquiring (retried by `untilDone` until --timeout). */
  readonly acquire: (lease: string, timeoutMs: number, signal: AbortSignal | undefined) => Promise<H>;
  readonly env: (held: H, lease: string) => Record<string, string>;
  readonly release: (held: H) => Promise<void>;
  readonly heldMessage: (held: H) => string;
  /** Once acquired, before the command starts. */
  readonly onAcquired?: (held: H) => void;
}

/**
 * The whole life of `muster lock|semaphore|elect`: open a session, acquire under
 * it (until --timeout), then `holdAndRun`, which gives it back and ends the
 * session. Resolves to the exit code.
 */
export async function acquireAndHold<H extends { readonly key: string; readonly token: number }>(
  ctx: CliContext,
  client: MusterClient,
  flags: SessionFlags,
  spec: AcquireSpec<H>,
): Promise<number> {
  const session = await startSession(client, flags);
  let held: H;
  try {
    held = await untilDone(session, flags.timeout, (timeoutMs, signal) =>
      spec.acquire(session.leaseId, timeoutMs, signal),
    );
  } catch (error) {
    await session.close().catch(() => undefined);
    throw error;
  }
  spec.onAcquired?.(held);
  return holdAndRun(ctx, {
    client,
    session,
    held,
    what: spec.what,
    env: spec.env(held, session.leaseId),
    argv: spec.argv,
    ...(flags.grace !== undefined ? { graceMs: flags.grace } : {}),
    release: () => spec.release(held),
    heldMessage: spec.heldMessage(held),
  });
}
