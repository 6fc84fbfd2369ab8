import type { LeaseId, WatchEvent } from '../../core/backend.js';

/** A lease granted (`ttl` set) or ended (`ttl` null) by a write of the batch. */
export interface LeaseChange {
  readonly id: LeaseId;
  readonly ttl: number | null;
}

/** Where the staged state stood before one write of the batch; see `StagedBatch.atomically`. */
interface StageMark {
  readonly revision: number;
  readonly compactRevision: number;
  readonly events: number;
  readonly leases: number;
}

/**
 * What the batch being written has staged in memory beside its SQL: the revision
 * and compact revision it reached, its watch events and its lease changes. The
 * store applies it after the commit and drops it after a rollback.
 *
 * Each write of a batch runs in its own savepoint; `atomically` rolls this state
 * back with it, so a write that is refused (a txn whose later op fails) leaves no
 * event, revision or lease change behind for its neighbours' commit to publish.
 */
export class StagedBatch {
  events: WatchEvent[] = [];
  leases: LeaseChange[] = [];

  constructor(
    public revision: number,
    public compactRevision: number,
  ) {}

  /** Runs one write (inside its savepoint); if it throws, what it staged is undone too. */
  atomically<T>(write: () => T): T {
    const mark: StageMark = {
      revision: this.revision,
      compactRevision: this.compactRevision,
      events: this.events.length,
      leases: this.leases.length,
    };
    try {
      return write();
    } catch (error) {
      this.revision = mark.revision;
      this.compactRevision = mark.compactRevision;
      this.events.length = mark.events;
      this.leases.length = mark.leases;
      throw error;
    }
  }

  /** Whether a write of this batch granted the lease. */
  granted(id: LeaseId): boolean {
    return this.leases.some((l) => l.id === id && l.ttl !== null);
  }

  /** Whether a write of this batch ended the lease. */
  ended(id: LeaseId): boolean {
    return this.leases.some((l) => l.id === id && l.ttl === null);
  }

  /** Starts the next batch from the committed (or, after a rollback, the last committed) state. */
  reset(revision: number, compactRevision: number): void {
    this.revision = revision;
    this.compactRevision = compactRevision;
    this.events = [];
    this.leases = [];
  }
}
