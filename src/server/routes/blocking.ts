// Brings @fastify/swagger's schema fields (summary, description, tags) into FastifySchema.
import type {} from '@fastify/swagger';
import type { FastifyReply } from 'fastify';
import { WireDuration } from '../../api/wire.js';
import type { Backend } from '../../core/backend.js';
import type { Clock } from '../../core/clock.js';
import { parseDurationWithin } from '../../core/duration.js';
import { CancelledError } from '../../core/errors.js';
import { deadlineSignal } from '../../primitives/deadline.js';

/** A blocking call waits this long when it names no timeout. */
export const DEFAULT_BLOCKING_TIMEOUT_MS = 60_000;
/** The longest a single blocking call may wait; clients wanting more call again. */
export const MAX_BLOCKING_TIMEOUT_MS = 24 * 3_600_000;

/** JSON schema of a `timeout` field or query parameter: seconds, or a duration such as "30s". */
export const timeoutSchema = WireDuration;

/** Parse a blocking call's timeout (default 60 s, at most 24 h). */
export function blockingTimeout(value: string | number | undefined): number {
  if (value === undefined) return DEFAULT_BLOCKING_TIMEOUT_MS;
  return parseDurationWithin(value, 'timeout', { aboveZero: true, maxMs: MAX_BLOCKING_TIMEOUT_MS, max: '24h' });
}

/**
 * The signal of a blocking request: aborts with TimeoutError when the timeout
 * passes, or with CancelledError when the client goes away (the primitives keep
 * a waiter's place in that case, so a retry with the same session finds it).
 */
export function blockingSignal(
  reply: FastifyReply,
  clock: Clock,
  timeoutMs: number,
  what: string,
  shutdown?: AbortSignal,
): { signal: AbortSignal; dispose: () => void } {
  const gone = new AbortController();
  const onClose = () => {
    if (!reply.raw.writableEnded) gone.abort(new CancelledError(`the client went away while waiting for ${what}`));
  };
  reply.raw.on('close', onClose);
  // The server lets a client half-close (build-app.ts), so its FIN alone does not
  // close the response: for a call that waits, it means the client went away, and
  // the connection is closed as it was before (no answer to a client that left).
  const socket = reply.raw.socket;
  const onEnd = () => {
    onClose();
    socket?.destroy();
  };
  socket?.on('end', onEnd);
  const parent = shutdown ? AbortSignal.any([gone.signal, shutdown]) : gone.signal;
  const deadline = deadlineSignal(clock, timeoutMs, what, parent);
  return {
    signal: deadline.signal,
    dispose: () => {
      reply.raw.off('close', onClose);
      socket?.off('end', onEnd);
      deadline.dispose();
    },
  };
}

/** What the routes of the primitives (the blocking calls) are given. */
export interface PrimitiveRouteDeps {
  backend: Backend;
  clock: Clock;
  /** Aborts when the server is closing: blocked calls answer 503 closed. */
  shutdown?: AbortSignal;
  /** Told +1 when a blocking call starts waiting and -1 when it ends (a metric). */
  onBlockedCount?: (delta: number) => void;
}

/** Run `body` with a blocking signal, always releasing the timer and listener. */
export async function blocking<T>(
  reply: FastifyReply,
  deps: Omit<PrimitiveRouteDeps, 'backend'>,
  timeout: string | number | undefined,
  what: string,
  body: (signal: AbortSignal) => Promise<T>,
): Promise<T> {
  // One of the token's blocked calls (429 limit_exceeded when it has none left).
  const release = reply.request.occupy('blocked');
  const { signal, dispose } = blockingSignal(reply, deps.clock, blockingTimeout(timeout), what, deps.shutdown);
  deps.onBlockedCount?.(1);
  try {
    return await body(signal);
  } finally {
    deps.onBlockedCount?.(-1);
    dispose();
    release();
  }
}
