import type { Watch, WatchBatch, WatchEvent, WatchOptions } from '../../core/backend.js';
import { CompactedError } from '../../core/errors.js';
import { QueuedWatch } from '../../core/queued-watch.js';

/** What a watch reads when it is behind the live stream. */
export interface HistorySource {
  currentRevision(): number;
  /** The oldest revision a watch may start from. */
  oldestRevision(): number;
  /**
   * Events from `fromRevision` to `toRevision` inclusive matching the filter, in
   * order, whole revisions only, at most about `maxEvents`. Returns the events
   * and the revision to read from next.
   */
  readHistory(
    filter: KeyFilter,
    fromRevision: number,
    toRevision: number,
    maxEvents: number,
    prevKv: boolean,
  ): { events: WatchEvent[]; next: number };
}

export interface KeyFilter {
  readonly key: string;
  readonly prefix: boolean;
}

/** Batches a live watcher may hold unread before it falls back to reading history. */
const MAX_QUEUED_BATCHES = 1024;
const REPLAY_EVENTS_PER_READ = 1000;

/**
 * Every open watch of one SQLite backend. Commits are published here; a watch
 * that is caught up takes events straight from the commit, one that is behind (a
 * replay, or a slow consumer) reads them from the history table, so nothing is
 * missed and memory stays bounded.
 */
export class WatchHub {
  private readonly watches = new Set<SqliteWatch>();

  constructor(private readonly source: HistorySource) {}

  get size(): number {
    return this.watches.size;
  }

  open(key: string, options: WatchOptions = {}): Watch {
    const from = options.fromRevision && options.fromRevision > 0 ? options.fromRevision : undefined;
    const watch = new SqliteWatch(
      this.source,
      { key, prefix: options.prefix ?? false },
      options.prevKv ?? false,
      from ?? this.source.currentRevision() + 1,
      () => this.watches.delete(watch),
    );
    this.watches.add(watch);
    return watch;
  }

  /** Events committed at revisions `first`..`last` (all of them, in order). */
  publish(events: readonly WatchEvent[], first: number, last: number): void {
    for (const watch of this.watches) watch.offer(events, first, last);
  }

  /** End every watch with `error`. */
  closeAll(error: Error): void {
    for (const watch of [...this.watches]) watch.fail(error);
  }
}

class SqliteWatch extends QueuedWatch {
  constructor(
    private readonly source: HistorySource,
    private readonly filter: KeyFilter,
    private readonly withPrevKv: boolean,
    /** The next revision this watch has not yet taken in. */
    private next: number,
    private readonly onClose: () => void,
  ) {
    super();
  }

  /**
   * Offered the events of revisions `first`..`last` as they become durable; taken
   * when this watch is caught up (its next revision falls in the range, which may
   * cover several commits), from its next revision on.
   */
  offer(events: readonly WatchEvent[], first: number, last: number): void {
    if (this.ended || this.next < first || this.next > last) return;
    const from = this.next;
    this.next = last + 1;
    const matched = events.filter((e) => e.revision >= from && this.matches(e.kv.key));
    if (matched.length === 0) return;
    this.deliver({ events: this.withPrevKv ? matched : matched.map(({ prevKv: _prevKv, ...rest }) => rest) });
  }

  /** Caught up with the store: everything before `next` is queued or delivered. Behind: ask again later. */
  requestProgress(): void {
    if (this.ended || this.next <= this.source.currentRevision()) return;
    this.deliver({ events: [], progress: this.next - 1 });
  }

  protected override queued(): void {
    if (this.queue.length > MAX_QUEUED_BATCHES) {
      // A slow consumer: forget what is queued and read it again from history.
      this.next = this.queue.find((batch) => batch.events.length > 0)?.events[0]?.revision ?? this.next;
      this.queue.length = 0;
    }
  }

  /** Behind the live stream (a replay, or after a slow patch): read history. */
  protected override refill(): WatchBatch | null {
    for (;;) {
      const current = this.source.currentRevision();
      if (this.next > current) return null;
      const oldest = this.source.oldestRevision();
      if (this.next < oldest) throw new CompactedError(this.next, oldest);
      const read = this.source.readHistory(this.filter, this.next, current, REPLAY_EVENTS_PER_READ, this.withPrevKv);
      this.next = read.next;
      if (read.events.length > 0) return { events: read.events };
    }
  }

  protected override release(): void {
    this.onClose();
  }

  private matches(key: string): boolean {
    return this.filter.prefix ? key.startsWith(this.filter.key) : key === this.filter.key;
  }
}
