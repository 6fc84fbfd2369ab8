import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import Type from 'typebox';
import { toWireKeyValue } from '../../api/values.js';
import type { WireCompactedEvent, WireProgressEvent, WireWatchEvent } from '../../api/wire.js';
import type { Backend, Watch, WatchEvent } from '../../core/backend.js';
import type { Clock } from '../../core/clock.js';
import { CompactedError, InvalidArgumentError } from '../../core/errors.js';
import { validateKey, validatePrefix } from '../../core/key-path.js';
import { openSse, sseError, sseEvent } from '../sse.js';
import { access, eventFilter } from '../access.js';

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
 * Last-Event-ID: N restarts at N+1 and never misses part of a revision. Every
 * heartbeat (15 s) is followed, once the store has delivered everything up to its
 * current revision R, by `id: R` + `event: progress` (`data: {"revision": R}`), so a
 * watch of a quiet prefix resumes after a reconnection from where it was, not from
 * "now". On etcd no progress is sent (etcd 3.4 may answer a progress request ahead
 * of events still due to a catching-up watch): a resume starts after the last event.
 */
export const watchRoutes: FastifyPluginAsyncTypebox<WatchRouteDeps> = async (
  app,
  { backend, clock, onWatchCount, shutdown },
) => {
  app.get(
    '/v1/watch/*',
    {
      config: {
        access: access.key('read', (request) => ({
          key: '/' + (request.params as { '*': string })['*'],
          prefix: (request.query as { prefix?: boolean }).prefix !== false,
          filtered: true,
        })),
      },
      schema: {
        summary:
          'Stream changes as Server-Sent Events (event: put|delete, id: revision; event: progress with id: the revision delivered so far, after heartbeats); ?fromRevision=N replays history first; Last-Event-ID resumes after that revision',
        params: Type.Object({ '*': Type.String() }),
        querystring: Type.Object(
          {
            fromRevision: Type.Optional(Type.Integer({ minimum: 1, maximum: Number.MAX_SAFE_INTEGER })),
            prefix: Type.Optional(Type.Boolean()),
            prevKv: Type.Optional(Type.Boolean()),
          },
          { additionalProperties: false },
        ),
        headers: Type.Object({ 'last-event-id': Type.Optional(Type.String({ pattern: '^[0-9]{1,15}$' })) }),
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
      const visible = eventFilter(request.principal, key);
      // One of the token's open watches (429 limit_exceeded when it has none left).
      const release = request.occupy('watches');
      let watch: Watch;
      try {
        watch = backend.watch(key, {
          prefix,
          prevKv: request.query.prevKv ?? false,
          ...(fromRevision ? { fromRevision } : {}),
        });
      } catch (error) {
        release();
        throw error;
      }

      const stream = openSse(reply, {
        clock,
        shutdown,
        stop: () => watch.close(),
        onBeat: () => watch.requestProgress(),
      });
      onWatchCount?.(1);
      try {
        for await (const batch of watch) {
          if (batch.progress !== undefined && batch.events.length === 0) {
            // Everything up to this revision has been sent: a client (a browser's
            // EventSource too) that reconnects with Last-Event-ID resumes after it.
            const progress: WireProgressEvent = { revision: batch.progress };
            await stream.write(sseEvent('progress', progress, batch.progress));
            continue;
          }
          // Events under a rule that hides them from this token are never sent.
          const events = visible ? batch.events.filter((e) => visible(e.kv.key)) : batch.events;
          if (events.length === 0) continue;
          let chunk = '';
          events.forEach((event, i) => {
            const lastOfRevision = events[i + 1]?.revision !== event.revision;
            chunk += sseEvent(event.type, wireEvent(event), lastOfRevision ? event.revision : undefined);
          });
          await stream.write(chunk);
          if (stream.gone) break;
        }
      } catch (error) {
        if (error instanceof CompactedError) {
          const data: WireCompactedEvent = {
            requestedRevision: error.requestedRevision,
            oldestRevision: error.oldestRevision,
          };
          await stream.write(sseEvent('compacted', data));
        } else {
          await stream.write(sseError(error));
        }
      } finally {
        watch.close();
        onWatchCount?.(-1);
        release();
        stream.end();
      }
    },
  );
};
