import type { FastifyReply } from 'fastify';
import type { Clock, TimerHandle } from '../core/clock.js';

/** A comment line goes out this often, so proxies and clients see the stream alive. */
const HEARTBEAT_MS = 15_000;

/** One Server-Sent Event: `id:` (when given), `event:`, and the data as JSON. */
export function sseEvent(event: string, data: unknown, id?: number): string {
  return `${id === undefined ? '' : `id: ${id}\n`}event: ${event}\ndata: ${JSON.stringify(data)}\n\n`;
}

/** An `event: error` naming the error's code (`internal` when it has none). */
export function sseError(error: unknown): string {
  const code = (error as { code?: string }).code ?? 'internal';
  return sseEvent('error', { code, message: error instanceof Error ? error.message : String(error) });
}

export interface SseStream {
  /** Write events; resolves once the socket takes more (or is gone). */
  write(chunk: string): Promise<void>;
  /** True once the client went away. */
  readonly gone: boolean;
  /** Stop the heartbeat and end the response. */
  end(): void;
}

/**
 * Take the reply over as an event stream: headers, an opening comment, heartbeats
 * on the injected clock. `stop` runs once when the client goes away or the server
 * shuts down, so the route can end what feeds the stream.
 */
export function openSse(
  reply: FastifyReply,
  deps: {
    clock: Clock;
    shutdown?: AbortSignal | undefined;
    stop: () => void;
    /** Runs at each heartbeat (the watch route asks its watch for progress here). */
    onBeat?: () => void;
  },
): SseStream {
  const { clock, shutdown, stop, onBeat } = deps;
  reply.hijack();
  const out = reply.raw;
  out.writeHead(200, {
    'content-type': 'text/event-stream; charset=utf-8',
    'cache-control': 'no-cache',
    connection: 'keep-alive',
    'x-accel-buffering': 'no',
  });
  out.write(': watching\n\n');
  let heartbeat: TimerHandle | null = null;
  const beat = () => {
    if (out.writableEnded || out.destroyed) return;
    out.write(': keep-alive\n\n');
    onBeat?.();
    heartbeat = clock.setTimeout(beat, HEARTBEAT_MS);
  };
  heartbeat = clock.setTimeout(beat, HEARTBEAT_MS);
  out.on('close', stop);
  // A client's FIN ends the stream too (the server lets clients half-close: build-app.ts).
  const socket = out.socket;
  socket?.on('end', stop);
  shutdown?.addEventListener('abort', stop, { once: true });
  return {
    get gone() {
      return out.destroyed;
    },
    async write(chunk) {
      if (out.write(chunk) || out.destroyed) return;
      // Wait for whichever comes first, and leave no listener behind: a slow reader
      // meets backpressure on every write, for as long as the stream lives.
      await new Promise<void>((resolve) => {
        const done = () => {
          out.off('drain', done);
          out.off('close', done);
          resolve();
        };
        out.on('drain', done);
        out.on('close', done);
      });
    },
    end() {
      if (heartbeat) clock.clearTimeout(heartbeat);
      heartbeat = null;
      shutdown?.removeEventListener('abort', stop);
      out.off('close', stop);
      socket?.off('end', stop);
      out.end();
    },
  };
}
