import type { FastifyPluginAsync } from 'fastify';
import { toWireKeyValue } from '../../api/wire.js';
import type { WireCompactedEvent, WireWatchEvent } from '../../api/wire.js';
import type { Backend, WatchEvent } from '../../core/backend.js';
import type { Clock, TimerHandle } from '../../core/clock.js';
import { CompactedError, InvalidArgumentError } from '../../core/errors.js';
import { validateKey, validatePrefix } from '../../core/key-path.js';

/** A comment line this often keeps proxies from closing an idle stream. */
const HEARTBEAT_MS = 15_000;

export interface WatchRouteDeps {
  backend: Backend;
  /** Times the heartbeat. */
  clock: Clock;
  /** Aborts when the server is closing: open streams end. */
  shutdown?: AbortSignal;
  /** Told when a stream opens (+1) and closes (-1), for the open-watches gauge. */
  onWatchCount?: (delta: number) => void;
}

function wireEvent(event: WatchEvent): WireWatchEvent {
  return {
    type: event.type,
    revision: event.revision,
    ...toWireKeyValue(event.kv),
    ...(event.prevKv !== undefined ? { prevKv: event.prevKv ? toWireKeyValue(event.prevKv) : null } : {}),
  };
}

/**
 * Server-Sent Events of every change under a prefix. `id:` (the revision) is
 * written only on the last event of each revision, so a client resuming with
 * Last-Event-ID: N restarts at N+1 and never misses part of a revision.
 */
export const watchRoutes: FastifyPluginAsync<WatchRouteDeps> = async (app, { backend, clock, onWatchCount, shutdown }) => {
  app.get<{ Params: { '*': string }; Querystring: { fromRevision?: number; prefix?: boolean; prevKv?: boolean } }>(
    '/v1/watch/*',
    {
      schema: {
        summary:
          'Stream changes as Server-Sent Events (event: put|delete, id: revision); ?fromRevision=N replays history first; Last-Event-ID resumes',
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: {
            fromRevision: { type: 'integer', minimum: 1 },
            prefix: { type: 'boolean' },
            prevKv: { type: 'boolean' },
          },
        },
        headers: { type: 'object', properties: { 'last-event-id': { type: 'string', pattern: '^[0-9]{1,15}$' } } },
      },
    },
    async (request, reply) => {
      const path = '/' + request.params['*'];
      const prefix = request.query.prefix ?? true;
      const key = prefix ? validatePrefix(path) : validateKey(path);
      const lastEventId = request.headers['last-event-id'];
      if (typeof lastEventId === 'string' && !/^[0-9]+$/.test(lastEventId)) {
        throw new InvalidArgumentError('Last-Event-ID must be a revision number', 'invalid_request');
      }
      const fromRevision = typeof lastEventId === 'string' ? Number(lastEventId) + 1 : request.query.fromRevision;
      const watch = backend.watch(key, { prefix, prevKv: request.query.prevKv ?? false, ...(fromRevision ? { fromRevision } : {}) });

      reply.hijack();
      const out = reply.raw;
      out.writeHead(200, {
        'content-type': 'text/event-stream; charset=utf-8',
        'cache-control': 'no-cache',
        connection: 'keep-alive',
        'x-accel-buffering': 'no',
      });
      out.write(': watching\n\n');
      onWatchCount?.(1);
      let heartbeat: TimerHandle | null = null;
      const beat = () => {
        if (out.writableEnded || out.destroyed) return;
        out.write(': keep-alive\n\n');
        heartbeat = clock.setTimeout(beat, HEARTBEAT_MS);
      };
      heartbeat = clock.setTimeout(beat, HEARTBEAT_MS);
      out.on('close', () => watch.close());
      const onShutdown = () => watch.close();
      shutdown?.addEventListener('abort', onShutdown, { once: true });
      try {
        for await (const batch of watch) {
          let chunk = '';
          batch.events.forEach((event, i) => {
            const lastOfRevision = batch.events[i + 1]?.revision !== event.revision;
            chunk += `${lastOfRevision ? `id: ${event.revision}\n` : ''}event: ${event.type}\ndata: ${JSON.stringify(wireEvent(event))}\n\n`;
          });
          if (!out.write(chunk)) {
            await new Promise((resolve) => {
              out.once('drain', resolve);
              out.once('close', resolve);
            });
          }
          if (out.destroyed) break;
        }
      } catch (error) {
        if (error instanceof CompactedError) {
          const data: WireCompactedEvent = { requestedRevision: error.requestedRevision, oldestRevision: error.oldestRevision };
          out.write(`event: compacted\ndata: ${JSON.stringify(data)}\n\n`);
        } else {
          const code = (error as { code?: string }).code ?? 'internal';
          out.write(`event: error\ndata: ${JSON.stringify({ code, message: (error as Error).message })}\n\n`);
        }
      } finally {
        if (heartbeat) clock.clearTimeout(heartbeat);
        shutdown?.removeEventListener('abort', onShutdown);
        watch.close();
        onWatchCount?.(-1);
        out.end();
      }
    },
  );
};
