import type { WatchEvent } from '../core/backend.js';
import { Backoff } from '../core/backoff.js';
import type { TimerHandle } from '../core/clock.js';
import type { Runtime } from '../core/runtime.js';
import { BackendUnavailableError, CompactedError } from '../core/errors.js';
import type { WireCompactedEvent, WireProgressEvent, WireWatchEvent } from '../api/wire.js';
import { fromWireKeyValue } from '../api/values.js';
import type { HttpTransport } from './http-transport.js';
import { keyPath, queryString } from './key-url.js';
import type { SseItem } from './sse-reader.js';
import { readSse } from './sse-reader.js';

/** What a watch reports about its connection, for callers that want to tell a person. */
export type WatchStatus =
  | { readonly type: 'connected'; readonly endpoint: string; readonly fromRevision: number }
  | { readonly type: 'disconnected'; readonly error: Error; readonly retryInMs: number };

export interface ClientWatchOptions {
  /** First revision to deliver; absent means only changes after the current revision. */
  readonly fromRevision?: number;
  /** Watch every key starting with `key`. @default true */
  readonly prefix?: boolean;
  /** Ends the watch: the iterator returns. */
  readonly signal?: AbortSignal;
  /** Called on every (re)connection and loss. */
  readonly onStatus?: (status: WatchStatus) => void;
  /** The longest wait between reconnection attempts. @default 5000 */
  readonly maxRetryDelayMs?: number;
  /**
   * A connection silent for this long is taken as lost and replaced: the server
   * sends a heartbeat every 15 s, and a dead peer (no FIN) is otherwise never noticed.
   * @default 45000
   */
  readonly idleTimeoutMs?: number;
}

const FIRST_RETRY_DELAY_MS = 100;

/**
 * Follow `GET /v1/watch/<key>` as an async iterator of events. Events are held back
 * until their revision is complete (the server marks the last event of a revision
 * with `id:`), so after a lost connection the watch resumes at the revision after
 * the last one it delivered: nothing missed, nothing repeated. Reconnects forever,
 * with backoff, until `signal` aborts or the consumer stops iterating; throws
 * CompactedError when the revision to resume from is no longer retained, and the
 * typed error of any 4xx answer.
 */
export async function* watchEvents(
  transport: HttpTransport,
  key: string,
  options: ClientWatchOptions,
  runtime: Runtime,
  currentRevision: () => Promise<number>,
): AsyncGenerator<WatchEvent, void, undefined> {
  const signal = options.signal;
  const idleTimeoutMs = options.idleTimeoutMs ?? 45_000;
  const backoff = new Backoff(runtime, { initialMs: FIRST_RETRY_DELAY_MS, maxMs: options.maxRetryDelayMs ?? 5000 });
  let next: number | undefined = options.fromRevision;

  while (!signal?.aborted) {
    let response: Response | null = null;
    let lost: Error | null = null;
    // Aborted by the idle timer to drop a silent connection; the watch itself goes on.
    const connection = new AbortController();
    const connectionSignal = signal ? AbortSignal.any([signal, connection.signal]) : connection.signal;
    let idle: TimerHandle | null = null;
    const clearIdle = (): void => {
      if (idle) runtime.clock.clearTimeout(idle);
      idle = null;
    };
    const resetIdle = (): void => {
      clearIdle();
      idle = runtime.clock.setTimeout(
        () => connection.abort(new BackendUnavailableError(`no answer from the server for ${idleTimeoutMs} ms`)),
        idleTimeoutMs,
      );
    };
    resetIdle();
    try {
      // "From now on" must mean the same thing after a reconnection: pin it to a revision first.
      next ??= (await currentRevision()) + 1;
      response = await transport.send({
        method: 'GET',
        path: keyPath('/v1/watch', key) + queryString({ fromRevision: next, prefix: options.prefix ?? true }),
        headers: { accept: 'text/event-stream' },
        idempotent: true,
        timeoutMs: 0,
        signal: connectionSignal,
        context: { subject: key },
      });
    } catch (error) {
      clearIdle();
      if (signal?.aborted) return;
      if (!(error instanceof BackendUnavailableError)) throw error;
      lost = error;
    }

    if (response !== null && next !== undefined) {
      options.onStatus?.({ type: 'connected', endpoint: transport.endpoint, fromRevision: next });
      const stream = new RevisionStream();
      const body = response.body;
      if (body === null) throw new BackendUnavailableError('the watch response has no body');
      try {
        for await (const item of readSse(body)) {
          stream.take(item);
          // The consumer's time with an event is not the server's silence.
          clearIdle();
          for (const revision of stream.takeComplete()) {
            for (const event of revision) yield event;
            next = (revision[0]?.revision ?? next - 1) + 1;
            backoff.reset();
          }
          // The server has delivered everything up to here: resume after it, even on a quiet prefix.
          const progress = stream.takeProgress();
          if (progress !== null && progress + 1 > next) next = progress + 1;
          if (stream.compacted) throw stream.compacted;
          if (stream.failure) throw stream.failure;
          resetIdle();
        }
        lost = new BackendUnavailableError('the server ended the watch stream');
      } catch (error) {
        if (signal?.aborted) return;
        if (error instanceof CompactedError) throw error;
        const reason: unknown = connection.signal.aborted ? connection.signal.reason : error;
        lost = new BackendUnavailableError(
          `the watch connection was lost: ${reason instanceof Error ? reason.message : String(reason)}`,
          { cause: reason },
        );
      }
    }

    clearIdle();
    const delay = backoff.next();
    options.onStatus?.({
      type: 'disconnected',
      error: lost ?? new BackendUnavailableError('the watch connection was lost'),
      retryInMs: Math.round(delay),
    });
    await backoff.wait(signal, delay).catch(() => undefined);
  }
}

/**
 * Parses the SSE body and groups events by revision. A revision is complete when
 * its last event (the one carrying `id:`) has arrived, or, defensively, when an
 * event of a later revision arrives.
 */
class RevisionStream {
  compacted: CompactedError | null = null;
  /** The server's `event: error` (such as its store closing): worth reconnecting for. */
  failure: Error | null = null;
  private pending: WatchEvent[] = [];
  private complete: WatchEvent[][] = [];
  private progress: number | null = null;

  take(item: SseItem): void {
    if (item.type === 'event') this.onMessage(item);
  }

  /** The revision of the last `event: progress` since the last call, or null. */
  takeProgress(): number | null {
    const progress = this.progress;
    this.progress = null;
    return progress;
  }

  takeComplete(): WatchEvent[][] {
    const complete = this.complete;
    this.complete = [];
    return complete;
  }

  private onMessage(message: { readonly event: string; readonly data: string; readonly id: string | undefined }): void {
    if (message.event === 'progress') {
      // Whole revisions only: a progress mark comes after the last event of its revision.
      this.flush();
      this.progress = (JSON.parse(message.data) as WireProgressEvent).revision;
      return;
    }
    if (message.event === 'compacted') {
      const data = JSON.parse(message.data) as WireCompactedEvent;
      this.compacted = new CompactedError(data.requestedRevision, data.oldestRevision);
      return;
    }
    if (message.event === 'error') {
      const data = JSON.parse(message.data) as { code?: unknown; message?: unknown };
      this.failure = new BackendUnavailableError(
        `the server ended the watch: ${typeof data.message === 'string' ? data.message : String(data.code)}`,
      );
      return;
    }
    if (message.event !== 'put' && message.event !== 'delete') return;
    const data = JSON.parse(message.data) as WireWatchEvent;
    const event: WatchEvent = {
      type: data.type,
      kv: fromWireKeyValue(data),
      ...(data.prevKv !== undefined ? { prevKv: data.prevKv === null ? null : fromWireKeyValue(data.prevKv) } : {}),
      revision: data.revision,
    };
    const pendingRevision = this.pending[0]?.revision;
    if (pendingRevision !== undefined && event.revision !== pendingRevision) this.flush();
    this.pending.push(event);
    if (message.id !== undefined) this.flush();
  }

  private flush(): void {
    if (this.pending.length > 0) this.complete.push(this.pending);
    this.pending = [];
  }
}
