/**
 * What the coordination routes answer (issue 3), as the client returns them.
 * Election values and once output travel as UTF-8 text.
 */

/** A held lock, semaphore slot or leadership: `key` and `token` prove it. */
export interface Held {
  readonly key: string;
  /** The fencing token: the holder key's createRevision, strictly increasing across holders. */
  readonly token: number;
}

// The routes answer with the primitives' own results, as JSON: these are those
// types (type-only: the client never loads the primitives). Election values and
// waited-for values travel as text, so their types are the client's own below.
export type {
  LockHandle,
  SemaphoreHandle,
  Leadership,
  OnceResult,
  OnceTurn,
  LockStatus as LockState,
  SemaphoreStatus as SemaphoreState,
  BarrierStatus as BarrierState,
  OnceStatus as OnceState,
} from '../primitives/index.js';

/** An election's leader: its value as text. */
export type { WireLeader as LeaderInfo } from '../api/wire.js';

/** What `waitFor` waits for: exactly one condition. */
export type WaitCondition = { exists: true } | { deleted: true } | { equals: string } | { matches: string };

export interface WaitOutcome {
  readonly key: string;
  readonly revision: number;
  /** The key when the condition held (null for `deleted`). */
  readonly value: string | null;
  readonly modRevision: number | null;
}

/** Options of a blocking call. */
export interface BlockingOptions {
  /** How long the server may wait, in ms. @default 60000 (at most 24 h) */
  readonly timeoutMs?: number;
  readonly signal?: AbortSignal;
}

export interface AcquireLockOptions extends BlockingOptions {
  /**
   * Lock-delay, in ms (at most 1 h), as in Consul: should this caller's session be
   * lost while it holds the lock (rather than the lock be released), nobody gets
   * the lock for this long after a contender first finds it gone, so that this
   * holder's work has time to stop. @default 0
   */
  readonly lockDelayMs?: number;
}
