/**
 * What the coordination routes answer (issue 3), as the client returns them.
 * Election values and once output travel as UTF-8 text.
 */
import type { LeaseId } from '../core/backend.js';

/** A held lock, semaphore slot or leadership: `key` and `token` prove it. */
export interface Held {
  readonly key: string;
  /** The fencing token: the holder key's createRevision, strictly increasing across holders. */
  readonly token: number;
}

export interface LockHandle extends Held {
  readonly name: string;
  readonly lease: LeaseId;
}

export interface LockState {
  readonly name: string;
  readonly holder: { key: string; token: number; lease: LeaseId | null } | null;
  readonly waiting: number;
}

export interface SemaphoreHandle extends LockHandle {
  readonly limit: number;
}

export interface SemaphoreState {
  readonly name: string;
  readonly limit: number | null;
  readonly holders: { key: string; token: number; lease: LeaseId | null }[];
  readonly waiting: number;
}

export interface Leadership extends Held {
  readonly election: string;
  readonly lease: LeaseId;
}

export interface LeaderInfo {
  readonly key: string;
  readonly value: string;
  readonly token: number;
  readonly lease: LeaseId | null;
  readonly revision: number;
}

export interface BarrierState {
  readonly name: string;
  readonly count: number | null;
  readonly arrived: number;
  readonly ready: boolean;
}

export interface OnceResult {
  readonly exitCode: number;
  readonly output: string;
  readonly runner: string;
  readonly token: number;
  readonly startedAt: string;
  readonly finishedAt: string;
}

export type OnceTurn =
  | { readonly role: 'runner'; readonly key: string; readonly token: number; readonly startedAt: string }
  | { readonly role: 'done'; readonly result: OnceResult };

export interface OnceState {
  readonly name: string;
  readonly state: 'idle' | 'running' | 'done';
  readonly result: OnceResult | null;
  readonly runner: Held | null;
  readonly waiting: number;
}

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
