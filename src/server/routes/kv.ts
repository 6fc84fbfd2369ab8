import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { FastifyReply } from 'fastify';
import Type from 'typebox';
import {
  WireDeleteResponse,
  WireDuration,
  WireKeyMeta,
  WireLeaseId,
  WirePutResponse,
  WireRangeResponse,
  WireRevision,
} from '../../api/wire.js';
import { toWireKeyValue } from '../../api/values.js';
import type { Backend, KeyValue, TxnOp, TxnOpResult } from '../../core/backend.js';
import type { Clock } from '../../core/clock.js';
import { parseDurationWithin } from '../../core/duration.js';
import {
  CompactedError,
  InvalidArgumentError,
  KeyNotFoundError,
  RevisionConflictError,
  ValueTooLargeError,
} from '../../core/errors.js';
import { validateKey, validatePrefix } from '../../core/key-path.js';
import { blockingSignal } from './blocking.js';
import { errorResponse } from '../error-handler.js';
import { access, visibleRange } from '../access.js';

interface Deps {
  backend: Backend;
  clock: Clock;
  maxValueBytes: number;
  /** Aborts when the server is closing: long polls end. */
  shutdown?: AbortSignal;
}

const keyParams = Type.Object({ '*': Type.String() });
const LONG_POLL_DEFAULT_MS = 30_000;
const LONG_POLL_MAX_MS = 600_000;

const putQuery = Type.Object(
  { lease: Type.Optional(WireLeaseId), prevRevision: Type.Optional(WireRevision) },
  { additionalProperties: false },
);

const getQuery = Type.Object(
  {
    meta: Type.Optional(Type.Boolean()),
    prefix: Type.Optional(Type.Boolean()),
    limit: Type.Optional(WireRevision),
    revision: Type.Optional(WireRevision),
    keysOnly: Type.Optional(Type.Boolean()),
    waitAfter: Type.Optional(WireRevision),
    timeout: Type.Optional(WireDuration),
  },
  { additionalProperties: false },
);

const deleteQuery = Type.Object(
  { prefix: Type.Optional(Type.Boolean()), prevRevision: Type.Optional(WireRevision) },
  { additionalProperties: false },
);

/** The key named by the path after `/v1/kv`, decoded segment by segment. */
export function keyFromPath(rest: string): string {
  return '/' + rest;
}

/** Send a key the way GET does: the raw value with metadata headers, or JSON with ?meta=true. */
function sendKey(reply: FastifyReply, kv: KeyValue, revision: number, meta: boolean | undefined) {
  reply.header('x-muster-revision', revision);
  reply.header('x-muster-mod-revision', kv.modRevision);
  reply.header('x-muster-create-revision', kv.createRevision);
  reply.header('x-muster-version', kv.version);
  if (kv.lease) reply.header('x-muster-lease', kv.lease);
  if (meta) {
    const body: WireKeyMeta = { ...toWireKeyValue(kv), revision };
    return reply.type('application/json').send(JSON.stringify(body));
  }
  return reply
    .type('application/octet-stream')
    .send(Buffer.from(kv.value.buffer, kv.value.byteOffset, kv.value.byteLength));
}

/** Keys and values: put (with compare-and-swap), get, range, delete, long poll. */
export const kvRoutes: FastifyPluginAsyncTypebox<Deps> = async (app, { backend, clock, maxValueBytes, shutdown }) => {
  // Values are bytes whatever their content type: take every body as a Buffer.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'buffer', bodyLimit: maxValueBytes }, (_request, body, done) =>
    done(null, body),
  );
  // A body over the limit is a value over the limit: say so in those terms.
  app.setErrorHandler((error: unknown, request, reply) => {
    // Anything else goes on to the app's one handler (which logs internal errors).
    if (errorResponse(error).body.error.code !== 'body_too_large') throw error;
    // A chunked body has no length up front: the parser stopped at the limit.
    const length = request.headers['content-length'];
    const size = length === undefined ? undefined : Number(length);
    const tooLarge = new ValueTooLargeError(size ?? maxValueBytes + 1, maxValueBytes);
    const message = size === undefined ? `value exceeds the limit of ${maxValueBytes} bytes` : tooLarge.message;
    return reply
      .status(413)
      .send({ error: { code: tooLarge.code, message, ...(size === undefined ? {} : { size }), limit: maxValueBytes } });
  });

  app.put(
    '/v1/kv/*',
    {
      bodyLimit: maxValueBytes,
      config: {
        access: access.key('write', (request) => ({
          key: keyFromPath((request.params as { '*': string })['*']),
          prefix: false,
          lease: (request.query as { lease?: string }).lease,
        })),
      },
      schema: {
        summary:
          'Write a key; the body is the value. prevRevision=N writes only if the key is at modRevision N (0: only if absent)',
        params: keyParams,
        querystring: putQuery,
        response: { 200: WirePutResponse },
      },
    },
    async (request) => {
      const key = validateKey(keyFromPath(request.params['*']));
      // The body is the value, as bytes (the content-type parser above), so it has no schema.
      const value = (request.body as Buffer | undefined) ?? Buffer.alloc(0);
      if (value.byteLength > maxValueBytes) throw new ValueTooLargeError(value.byteLength, maxValueBytes);
      const lease = request.query.lease ?? null;
      const expected = request.query.prevRevision;
      if (expected === undefined) {
        const { revision, prevKv } = await backend.put(key, value, { lease });
        return put(key, revision, prevKv);
      }
      const { revision, result } = await compareAndSwap(key, expected, { type: 'put', key, value, lease });
      return put(key, revision, result?.type === 'put' ? result.prevKv : null);
    },
  );

  app.get(
    '/v1/kv/*',
    {
      config: {
        access: access.key('read', (request) => ({
          key: keyFromPath((request.params as { '*': string })['*']),
          prefix: (request.query as { prefix?: boolean }).prefix === true,
          filtered: true,
        })),
      },
      schema: {
        summary:
          'Read a key (raw value; ?meta=true for JSON), list a prefix (?prefix=true), or long-poll (?waitAfter=N&timeout=30s)',
        params: keyParams,
        querystring: getQuery,
        // JSON answers are sent already stringified (two shapes on one status), so
        // this schema documents them without a oneOf serializer on the read path.
        response: {
          200: {
            description: 'The raw value with X-Muster-* headers; JSON with ?meta=true (key) or ?prefix=true (range)',
            content: {
              'application/octet-stream': { schema: { type: 'string', format: 'binary' } },
              'application/json': { schema: Type.Union([WireKeyMeta, WireRangeResponse]) },
            },
          },
          204: { description: 'A long poll (?waitAfter) reached its timeout first', type: 'null' },
        },
      },
    },
    async (request, reply) => {
      const q = request.query;
      const path = keyFromPath(request.params['*']);
      if (q.prefix) {
        if (q.waitAfter !== undefined)
          throw new InvalidArgumentError('waitAfter takes a single key, not a prefix', 'invalid_request');
        const all = await backend.range({
          key: validatePrefix(path),
          prefix: true,
          limit: q.limit ?? 0,
          revision: q.revision ?? 0,
          keysOnly: q.keysOnly ?? false,
        });
        // Keys under a rule that hides them from this token are left out.
        const range = await visibleRange(backend, request.principal, path, all);
        const body: WireRangeResponse = {
          revision: range.revision,
          kvs: range.kvs.map(toWireKeyValue),
          more: range.more,
          count: range.count,
        };
        return reply.type('application/json').send(JSON.stringify(body));
      }
      const key = validateKey(path);
      if (q.waitAfter !== undefined) {
        const ms =
          q.timeout === undefined
            ? LONG_POLL_DEFAULT_MS
            : parseDurationWithin(q.timeout, 'timeout', { aboveZero: true, maxMs: LONG_POLL_MAX_MS, max: '10m' });
        return longPoll(reply, key, q.waitAfter, clock.now() + ms, q.meta);
      }
      if (q.timeout !== undefined)
        throw new InvalidArgumentError('timeout takes waitAfter (a long poll)', 'invalid_request');
      const range = await backend.range({ key, revision: q.revision ?? 0 });
      const kv = range.kvs[0];
      if (!kv) throw new KeyNotFoundError(key);
      return sendKey(reply, kv, range.revision, q.meta);
    },
  );

  app.delete(
    '/v1/kv/*',
    {
      config: {
        access: access.key('write', (request) => ({
          key: keyFromPath((request.params as { '*': string })['*']),
          prefix: (request.query as { prefix?: boolean }).prefix === true,
        })),
      },
      schema: {
        summary: 'Delete a key, or every key under a prefix (?prefix=true); prevRevision=N deletes only if at N',
        params: keyParams,
        querystring: deleteQuery,
        response: { 200: WireDeleteResponse },
      },
    },
    async (request) => {
      const path = keyFromPath(request.params['*']);
      const prefix = request.query.prefix ?? false;
      const key = prefix ? validatePrefix(path) : validateKey(path);
      const expected = request.query.prevRevision;
      if (expected === undefined) {
        const { revision, deleted } = await backend.delete({ key, prefix });
        return { revision, deleted };
      }
      if (prefix) throw new InvalidArgumentError('prevRevision takes a single key, not a prefix', 'invalid_request');
      const { revision, result } = await compareAndSwap(key, expected, { type: 'delete', key });
      return { revision, deleted: result?.type === 'delete' ? result.deleted : 0 };
    },
  );

  /**
   * Apply `op` only if `key` is still at modRevision `expected` (0: absent);
   * RevisionConflictError with the key's current modRevision otherwise.
   */
  async function compareAndSwap(
    key: string,
    expected: number,
    op: TxnOp,
  ): Promise<{ revision: number; result: TxnOpResult | undefined }> {
    const txn = await backend.txn({
      compare: [{ key, target: 'modRevision', op: '=', value: expected }],
      success: [op],
      failure: [{ type: 'get', key, keysOnly: true }],
    });
    const first = txn.results[0];
    if (!txn.succeeded)
      throw new RevisionConflictError(key, first?.type === 'get' ? (first.kvs[0]?.modRevision ?? 0) : 0, expected);
    return { revision: txn.revision, result: first };
  }

  /**
   * Answer when the key's modRevision passes `after` (200, as GET) or it is
   * deleted after it (404), or with 204 when the timeout passes first.
   */
  async function longPoll(reply: FastifyReply, key: string, after: number, deadline: number, meta?: boolean) {
    const ms = Math.max(1, deadline - clock.now());
    const now = await backend.range({ key });
    const current = now.kvs[0];
    if (current && current.modRevision > after) return sendKey(reply, current, now.revision, meta);
    const { signal, dispose } = blockingSignal(reply, clock, ms, `the change of ${key}`, shutdown);
    const from = Math.min(after, now.revision) + 1;
    const watch = (() => {
      try {
        return backend.watch(key, { fromRevision: from });
      } catch {
        return backend.watch(key, { fromRevision: now.revision + 1 });
      }
    })();
    signal.addEventListener('abort', () => watch.close(), { once: true });
    try {
      for await (const batch of watch) {
        const event = batch.events[batch.events.length - 1];
        if (!event || event.revision <= after) continue;
        if (event.type === 'put') return sendKey(reply, event.kv, event.revision, meta);
        reply.header('x-muster-revision', event.revision);
        throw new KeyNotFoundError(key);
      }
    } catch (error) {
      if (!(error instanceof CompactedError)) throw error;
      // History since `after` is gone: the current state was already checked above.
      return longPoll(reply, key, now.revision, deadline, meta);
    } finally {
      dispose();
      watch.close();
    }
    return reply.status(204).send();
  }
};

function put(key: string, revision: number, prevKv: KeyValue | null): WirePutResponse {
  return {
    revision,
    key,
    createRevision: prevKv ? prevKv.createRevision : revision,
    modRevision: revision,
    version: (prevKv?.version ?? 0) + 1,
  };
}
