/**
 * Group commit: every write that arrives in the same turn of the event loop is
 * applied inside one SQLite transaction. A caller is answered only once its batch
 * is durable.
 *
 * With a `sync` hook (the file store) the commit itself does not wait for the disk
 * (SQLite's `synchronous = NORMAL` in WAL mode): the hook makes the WAL durable
 * (an fdatasync on libuv's thread pool) while the event loop goes on parsing
 * requests and committing the next batch. One sync covers every batch committed
 * before it started; batches committed while it runs wait for the next one. This
 * is the pipelined form of group commit: the disk is never idle while writes wait,
 * and the event loop never blocks on it.
 *
 * Without a `sync` hook (the in-memory store) a batch counts as durable when it
 * commits.
 */

interface Pending<T> {
  readonly apply: () => T;
  readonly resolve: (value: T) => void;
  readonly reject: (error: unknown) => void;
}

export interface BatchHooks {
  /** Runs `body` inside one transaction; throws if the commit fails. */
  readonly transaction: (body: () => void) => void;
  /** Runs one item atomically inside the batch (a savepoint): all or nothing. */
  readonly item: <T>(apply: () => T) => T;
  /** After a successful commit, before anything waits on durability. */
  readonly afterCommit: () => void;
  /** After a failed commit, to drop what the batch staged in memory. */
  readonly afterRollback: () => void;
  /**
   * Makes every batch committed so far durable. Called with no sync in flight; the
   * batches it covers are those committed before the call. Absent: commits are
   * durable as they are (or nothing is, in memory).
   */
  readonly sync?: () => Promise<void>;
  /**
   * After the batches a sync covered (or, without `sync`, a batch) are durable,
   * before their callers are answered. `upTo` is what `mark()` returned when that
   * sync started.
   */
  readonly afterDurable: (upTo: number) => void;
  /** The position reached by the commits so far (the store's revision). */
  readonly mark: () => number;
  /**
   * The disk refused a sync: what was committed may not be durable. The store must
   * stop taking writes; every waiting caller is rejected with the returned error.
   */
  readonly syncFailed: (error: unknown) => Error;
}

export class GroupCommit {
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- items of any result type share one queue
  private queue: Pending<any>[] = [];
  private scheduled = false;
  /** Callbacks of committed batches waiting for the next sync: `(error) => …`. */
  private committed: ((error: Error | null) => void)[] = [];
  /** Callbacks covered by the sync in flight, or null when none runs. */
  private syncing: ((error: Error | null) => void)[] | null = null;
  private failure: Error | null = null;
  /**
   * Number of batches committed and the writes accepted in them (a refused write
   * rolled back leaves no trace, here either), and syncs done, for metrics.
   */
  batches = 0;
  writes = 0;
  syncs = 0;

  constructor(private readonly hooks: BatchHooks) {}

  /** Queue a write; resolves with its result once its batch is durable. */
  submit<T>(apply: () => T): Promise<T> {
    if (this.failure) return Promise.reject(this.failure);
    return new Promise<T>((resolve, reject) => {
      this.queue.push({ apply, resolve, reject });
      if (!this.scheduled) {
        this.scheduled = true;
        setImmediate(() => this.flush());
      }
    });
  }

  /** Resolves once everything committed before this call is durable. */
  durable(): Promise<void> {
    if (this.failure) return Promise.reject(this.failure);
    const waiting = this.committed.length > 0 ? this.committed : this.syncing;
    if (waiting === null) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      waiting.push((error) => (error ? reject(error) : resolve()));
    });
  }

  /** Whether some committed batch is not durable yet. */
  get pending(): boolean {
    return this.committed.length > 0 || this.syncing !== null;
  }

  /** Commit whatever is queued now, synchronously; its callers are answered when it is durable. */
  flush(): void {
    this.scheduled = false;
    const batch = this.queue;
    if (batch.length === 0) return;
    this.queue = [];
    if (this.failure) {
      for (const pending of batch) pending.reject(this.failure);
      return;
    }
    const outcomes: ({ ok: true; value: unknown } | { ok: false; error: unknown })[] = [];
    try {
      this.hooks.transaction(() => {
        for (const pending of batch) {
          try {
            outcomes.push({ ok: true, value: this.hooks.item(pending.apply) });
          } catch (error) {
            outcomes.push({ ok: false, error });
          }
        }
      });
    } catch (error) {
      this.hooks.afterRollback();
      for (const pending of batch) pending.reject(error);
      return;
    }
    this.batches += 1;
    this.writes += outcomes.filter((outcome) => outcome.ok).length;
    this.hooks.afterCommit();
    const answer = (error: Error | null): void => {
      batch.forEach((pending, i) => {
        const outcome = outcomes[i];
        if (error) pending.reject(error);
        else if (outcome?.ok) pending.resolve(outcome.value);
        else pending.reject(outcome?.error);
      });
    };
    if (!this.hooks.sync) {
      this.hooks.afterDurable(this.hooks.mark());
      answer(null);
      return;
    }
    this.committed.push(answer);
    this.startSync();
  }

  private startSync(): void {
    const sync = this.hooks.sync;
    if (!sync || this.syncing !== null || this.committed.length === 0 || this.failure) return;
    const covered = this.committed;
    this.committed = [];
    this.syncing = covered;
    const upTo = this.hooks.mark();
    sync().then(
      () => {
        this.syncs += 1;
        this.syncing = null;
        this.hooks.afterDurable(upTo);
        for (const done of covered) done(null);
        this.startSync();
      },
      (error: unknown) => {
        this.syncing = null;
        this.failure = this.hooks.syncFailed(error);
        const waiting = [...covered, ...this.committed];
        this.committed = [];
        for (const done of waiting) done(this.failure);
      },
    );
  }
}
