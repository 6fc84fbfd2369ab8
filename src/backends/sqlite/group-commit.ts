/**
 * Group commit: every write that arrives in the same turn of the event loop is
 * applied inside one SQLite transaction, and each caller is answered only after
 * that transaction (and its fsync) has returned.
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
  /** After a successful commit, before callers are answered. */
  readonly afterCommit: () => void;
  /** After a failed commit, to drop what the batch staged in memory. */
  readonly afterRollback: () => void;
}

export class GroupCommit {
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- items of any result type share one queue
  private queue: Pending<any>[] = [];
  private scheduled = false;
  /** Number of batches committed and the writes in them, for metrics. */
  batches = 0;
  writes = 0;

  constructor(private readonly hooks: BatchHooks) {}

  /** Queue a write; resolves with its result once its batch is durable. */
  submit<T>(apply: () => T): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.queue.push({ apply, resolve, reject });
      if (!this.scheduled) {
        this.scheduled = true;
        setImmediate(() => this.flush());
      }
    });
  }

  /** Commit whatever is queued now, synchronously. */
  flush(): void {
    this.scheduled = false;
    const batch = this.queue;
    if (batch.length === 0) return;
    this.queue = [];
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
    this.writes += batch.length;
    this.hooks.afterCommit();
    batch.forEach((pending, i) => {
      const outcome = outcomes[i];
      if (outcome?.ok) pending.resolve(outcome.value);
      else pending.reject(outcome?.error);
    });
  }
}
