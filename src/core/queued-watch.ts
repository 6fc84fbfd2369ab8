import type { Watch, WatchBatch } from './backend.js';

/**
 * The reading side of a Watch, the same for every backend: batches queued for the
 * async iterator, at most one pending read, and the two ways it ends (`close`:
 * the iterator finishes; `fail`: the next read throws). A backend feeds it with
 * `deliver`, and may read more on demand in `refill` (from history, say).
 */
export abstract class QueuedWatch implements Watch {
  protected readonly queue: WatchBatch[] = [];
  protected ended = false;
  private waiter: { resolve: (r: IteratorResult<WatchBatch>) => void; reject: (e: unknown) => void } | null = null;
  private error: Error | null = null;

  close(): void {
    if (this.ended) return;
    this.end();
    const waiter = this.waiter;
    this.waiter = null;
    waiter?.resolve({ value: undefined, done: true });
  }

  abstract requestProgress(): void;

  /** End the watch with `error`: the consumer's next read throws it. */
  fail(error: Error): void {
    if (this.ended) return;
    this.error = error;
    this.end();
    const waiter = this.waiter;
    this.waiter = null;
    waiter?.reject(error);
  }

  [Symbol.asyncIterator](): AsyncIterator<WatchBatch> {
    return {
      next: () => this.pull(),
      return: () => {
        this.close();
        return Promise.resolve({ value: undefined, done: true });
      },
    };
  }

  /** Hand a batch to the pending read, or queue it (then `queued` runs). */
  protected deliver(batch: WatchBatch): void {
    if (this.waiter) {
      const waiter = this.waiter;
      this.waiter = null;
      waiter.resolve({ value: batch, done: false });
      return;
    }
    this.queue.push(batch);
    this.queued();
  }

  /** A batch was queued (a backend may bound the queue here). */
  protected queued(): void {}

  /** A queued batch was read. */
  protected taken(): void {}

  /**
   * The queue is empty and the watch goes on: a batch to answer the read with at
   * once, or null to wait for `deliver`. An error thrown here fails the watch.
   */
  protected refill(): WatchBatch | null {
    return null;
  }

  /** The watch ended (closed or failed): let go of what feeds it. */
  protected abstract release(): void;

  private end(): void {
    this.ended = true;
    this.queue.length = 0;
    this.release();
  }

  private pull(): Promise<IteratorResult<WatchBatch>> {
    const queued = this.queue.shift();
    if (queued) {
      this.taken();
      return Promise.resolve({ value: queued, done: false });
    }
    if (this.error) return Promise.reject(this.error);
    if (this.ended) return Promise.resolve({ value: undefined, done: true });
    try {
      const more = this.refill();
      if (more) return Promise.resolve({ value: more, done: false });
    } catch (error) {
      const failure = error instanceof Error ? error : new Error(String(error));
      this.fail(failure);
      return Promise.reject(failure);
    }
    return new Promise((resolve, reject) => {
      this.waiter = { resolve, reject };
    });
  }
}
