import type { IDuplexStream, IEvent, IWatchRequest, IWatchResponse } from 'etcd3';
import type { WatchEvent } from '../../core/backend.js';
import { QueuedWatch } from '../../core/queued-watch.js';
import { BackendUnavailableError, CompactedError } from '../../core/errors.js';
import type { EtcdKeyspace } from './etcd-keyspace.js';
import { translateError } from './translate-error.js';

export type WatchStream = IDuplexStream<IWatchRequest, IWatchResponse>;

/** What a watch needs from its backend. */
export interface WatchDeps {
  readonly keyspace: EtcdKeyspace;
  /** Open a new gRPC watch stream on some endpoint. */
  openStream(): Promise<WatchStream>;
  /** How long a broken stream may take to come back before the watch fails. */
  readonly reconnectWindowMs: number;
  /** Called once when the watch ends, however it ends. */
  onEnd(watch: EtcdWatch): void;
}

/** Batches held unread before the stream is paused (gRPC flow control then holds etcd back). */
const HIGH_WATER = 256;
const LOW_WATER = 64;

/**
 * One muster watch on one etcd watch stream. etcd delivers whole revisions per
 * response (it only cuts a response between revisions), so each response with
 * events becomes one WatchBatch. When the stream breaks (a member dies, the
 * connection drops), the watch opens a new one on any endpoint, starting at the
 * revision after the last one delivered, so nothing is missed or repeated; it
 * fails with BackendUnavailableError only when etcd stays unreachable for
 * `reconnectWindowMs`.
 */
export class EtcdWatch extends QueuedWatch {
  /** Settles when etcd has created the watch (or the watch ended first). */
  readonly created: Promise<void>;

  private stream: WatchStream | null = null;
  private paused = false;
  /** The first revision not yet delivered; null until etcd fixes "now" for a watch without a start. */
  private next: number | null;
  private brokenSince: number | null = null;
  private attempts = 0;
  private retryTimer: NodeJS.Timeout | null = null;
  private markCreated: () => void = () => undefined;

  constructor(
    private readonly deps: WatchDeps,
    private readonly key: string,
    private readonly prefix: boolean,
    fromRevision: number | undefined,
    private readonly withPrevKv: boolean,
  ) {
    super();
    this.next = fromRevision !== undefined && fromRevision > 0 ? fromRevision : null;
    this.created = new Promise((resolve) => {
      this.markCreated = resolve;
    });
    this.connect();
  }

  protected override taken(): void {
    if (this.paused && this.queue.length <= LOW_WATER) this.setPaused(false);
  }

  protected override queued(): void {
    if (!this.paused && this.queue.length >= HIGH_WATER) this.setPaused(true);
  }

  private connect(): void {
    this.deps.openStream().then(
      (stream) => {
        if (this.ended) {
          stopStream(stream);
          return;
        }
        this.attach(stream);
      },
      (error: unknown) => this.broken(error),
    );
  }

  private attach(stream: WatchStream): void {
    this.stream = stream;
    this.paused = false;
    stream.on('data', (response) => {
      if (this.stream === stream) this.receive(response);
    });
    stream.on('error', (error) => {
      if (this.stream === stream) this.broken(error);
    });
    stream.on('end', () => {
      if (this.stream === stream) this.broken(new Error('etcd ended the watch stream'));
    });
    const range = this.deps.keyspace.range(this.key, this.prefix);
    stream.write({
      create_request: {
        key: range.key,
        ...(range.range_end ? { range_end: range.range_end } : {}),
        start_revision: this.next ?? 0,
        prev_kv: this.withPrevKv,
      },
    });
  }

  /**
   * Not answered on etcd: etcd 3.4 may answer a progress request with its current
   * revision while this watch is still catching up (events below that revision still
   * to come), and a progress mark ahead of an event would let a client resume past
   * it. Heartbeats on etcd therefore carry no progress; a watch resumes from the
   * last event it delivered.
   */
  requestProgress(): void {}

  private receive(response: IWatchResponse): void {
    if (this.ended) return;
    const compactRevision = Number(response.compact_revision);
    if (compactRevision > 0) {
      // etcd cancels a watch whose start has been compacted and names the oldest revision left.
      this.fail(new CompactedError(this.next ?? compactRevision, compactRevision));
      return;
    }
    if (response.created) {
      this.brokenSince = null;
      this.attempts = 0;
      // A watch without a start follows from the revision etcd had when it created it.
      if (this.next === null) this.next = Number(response.header.revision) + 1;
      this.markCreated();
    }
    if (response.canceled) {
      this.fail(
        translateError(new Error(response.cancel_reason || 'etcd cancelled the watch'), { revision: this.next ?? 0 }),
      );
      return;
    }
    if (response.events.length === 0) return;
    const events = response.events.map((event) => this.event(event));
    const last = events[events.length - 1];
    if (last) this.next = last.revision + 1;
    this.deliver({ events });
  }

  private event(event: IEvent): WatchEvent {
    const kv = this.deps.keyspace.keyValue(event.kv);
    const type = event.type === 'Delete' ? 'delete' : 'put';
    if (!this.withPrevKv) return { type, kv, revision: kv.modRevision };
    const prevKv = event.prev_kv ? this.deps.keyspace.keyValue(event.prev_kv) : null;
    return { type, kv, prevKv, revision: kv.modRevision };
  }

  private setPaused(paused: boolean): void {
    // The etcd3 typings hide it, but the stream is a Node duplex: pausing it stops
    // reading, and HTTP/2 flow control makes etcd hold the rest (it never drops).
    const stream = this.stream as (WatchStream & { pause?: () => void; resume?: () => void }) | null;
    if (!stream?.pause || !stream.resume) return;
    this.paused = paused;
    if (paused) stream.pause();
    else stream.resume();
  }

  /** The stream failed: open a new one after a short backoff, or give up after the window. */
  private broken(error: unknown): void {
    if (this.ended) return;
    this.detach();
    const now = Date.now();
    this.brokenSince ??= now;
    if (now - this.brokenSince >= this.deps.reconnectWindowMs) {
      const translated = translateError(error);
      this.fail(
        translated instanceof BackendUnavailableError
          ? translated
          : new BackendUnavailableError(`the watch on ${this.key} lost etcd: ${translated.message}`, { cause: error }),
      );
      return;
    }
    this.attempts++;
    const delay = Math.min(1000, 25 * 2 ** this.attempts);
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      if (!this.ended) this.connect();
    }, delay);
  }

  /** Let go of the current stream; its late events are ignored, as it is no longer `this.stream`. */
  private detach(): void {
    const stream = this.stream;
    this.stream = null;
    if (stream) stopStream(stream);
  }

  protected override release(): void {
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = null;
    this.detach();
    this.markCreated();
    this.deps.onEnd(this);
  }
}

/**
 * Close a gRPC stream without upsetting the etcd3 connection pool: end() first, so
 * the stream is no longer writable and the pool does not take the CANCELLED that
 * cancel() raises for a host failure (which would reset every call on that host).
 */
export function stopStream(stream: {
  end(): void;
  cancel(): void;
  on(event: 'error', fn: (err: Error) => void): unknown;
}): void {
  stream.on('error', () => undefined);
  try {
    stream.end();
  } catch {
    // Already ended.
  }
  stream.cancel();
}
