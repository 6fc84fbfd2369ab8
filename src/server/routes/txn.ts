import type { FastifyPluginAsync } from 'fastify';
import { decodeValue, toWireKeyValue } from '../../api/wire.js';
import type { WireCompare, WireTxnOp, WireTxnOpResult, WireTxnRequest, WireTxnResponse } from '../../api/wire.js';
import type { Backend, Compare, TxnOp, TxnOpResult } from '../../core/backend.js';
import { LEASE_ID_PATTERN } from '../../core/backend.js';
import { InvalidArgumentError, ValueTooLargeError } from '../../core/errors.js';
import { validateKey, validatePrefix } from '../../core/key-path.js';
import { txnResponseSchema } from '../wire-schemas.js';
import { leaseIdSchema } from './primitive-schemas.js';

/** At most this many compares plus ops in one transaction. */
export const MAX_TXN_OPS = 128;

const op = { type: 'string', enum: ['=', '!=', '<', '>'] } as const;
const key = { type: 'string', minLength: 1, maxLength: 1024 } as const;
const encoding = { type: 'string', enum: ['utf8', 'base64'] } as const;
const lease = { anyOf: [leaseIdSchema, { type: 'null' }] } as const;

const compareSchema = {
  type: 'object',
  required: ['key', 'target', 'op', 'value'],
  additionalProperties: false,
  properties: {
    key,
    target: { type: 'string', enum: ['value', 'version', 'createRevision', 'modRevision', 'lease'] },
    op,
    value: { type: ['string', 'integer', 'null'] },
    encoding,
  },
} as const;

const opSchema = {
  type: 'object',
  required: ['type', 'key'],
  additionalProperties: false,
  properties: {
    type: { type: 'string', enum: ['put', 'delete', 'get'] },
    key,
    value: { type: 'string' },
    encoding,
    lease,
    prefix: { type: 'boolean' },
    limit: { type: 'integer', minimum: 0, maximum: Number.MAX_SAFE_INTEGER },
    revision: { type: 'integer', minimum: 0, maximum: Number.MAX_SAFE_INTEGER },
    keysOnly: { type: 'boolean' },
  },
} as const;

const bodySchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    compare: { type: 'array', items: compareSchema, maxItems: MAX_TXN_OPS },
    success: { type: 'array', items: opSchema, maxItems: MAX_TXN_OPS },
    failure: { type: 'array', items: opSchema, maxItems: MAX_TXN_OPS },
  },
} as const;

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/** Decode a value, refusing text that is not strict base64 when it says it is (Buffer would silently drop it). */
function valueOf(
  value: string,
  encoding: 'utf8' | 'base64' | undefined,
  at: string,
  maxValueBytes: number,
): Uint8Array {
  if (encoding === 'base64' && !BASE64.test(value)) {
    throw new InvalidArgumentError(`${at}: value is not valid base64 (encoding "base64")`, 'invalid_encoding');
  }
  const bytes = decodeValue(value, encoding);
  if (bytes.byteLength > maxValueBytes) throw new ValueTooLargeError(bytes.byteLength, maxValueBytes);
  return bytes;
}

function toCompare(c: WireCompare, index: number, maxValueBytes: number): Compare {
  const at = `compare[${index}]`;
  const k = validateKey(c.key);
  if (c.target === 'value') {
    if (typeof c.value !== 'string')
      throw new InvalidArgumentError(`${at}: a value compare takes a string value`, 'invalid_request');
    return { key: k, target: 'value', op: c.op, value: valueOf(c.value, c.encoding, at, maxValueBytes) };
  }
  if ('encoding' in c)
    throw new InvalidArgumentError(`${at}: encoding applies only to a value compare`, 'invalid_encoding');
  if (c.target === 'lease') {
    if (c.value !== null && (typeof c.value !== 'string' || !LEASE_ID_PATTERN.test(c.value))) {
      throw new InvalidArgumentError(`${at}: a lease compare takes a hex lease id or null`, 'invalid_request');
    }
    return { key: k, target: 'lease', op: c.op, value: c.value };
  }
  if (typeof c.value !== 'number' || !Number.isInteger(c.value)) {
    throw new InvalidArgumentError(`${at}: a ${c.target} compare takes a whole number`, 'invalid_request');
  }
  return { key: k, target: c.target, op: c.op, value: c.value };
}

const OP_FIELDS: Record<WireTxnOp['type'], readonly string[]> = {
  put: ['type', 'key', 'value', 'encoding', 'lease'],
  delete: ['type', 'key', 'prefix'],
  get: ['type', 'key', 'prefix', 'limit', 'revision', 'keysOnly'],
};

function toOp(o: WireTxnOp, at: string, maxValueBytes: number): TxnOp {
  const extra = Object.keys(o).filter((f) => !OP_FIELDS[o.type].includes(f));
  if (extra.length > 0)
    throw new InvalidArgumentError(`${at}: a ${o.type} takes no ${extra.join(', ')}`, 'invalid_request');
  if (o.type === 'put') {
    if (typeof o.value !== 'string')
      throw new InvalidArgumentError(`${at}: a put needs a string value`, 'invalid_request');
    return {
      type: 'put',
      key: validateKey(o.key),
      value: valueOf(o.value, o.encoding, at, maxValueBytes),
      lease: o.lease ?? null,
    };
  }
  const k = o.prefix ? validatePrefix(o.key) : validateKey(o.key);
  if (o.type === 'delete') return { type: 'delete', key: k, prefix: o.prefix ?? false };
  return {
    type: 'get',
    key: k,
    prefix: o.prefix ?? false,
    limit: o.limit ?? 0,
    revision: o.revision ?? 0,
    keysOnly: o.keysOnly ?? false,
  };
}

function toWireResult(r: TxnOpResult): WireTxnOpResult {
  if (r.type === 'put')
    return { type: 'put', revision: r.revision, prevKv: r.prevKv ? toWireKeyValue(r.prevKv) : null };
  if (r.type === 'delete') return { type: 'delete', revision: r.revision, deleted: r.deleted };
  return { type: 'get', revision: r.revision, kvs: r.kvs.map(toWireKeyValue), more: r.more, count: r.count };
}

/** Atomic multi-key compare-and-swap. */
export const txnRoutes: FastifyPluginAsync<{ backend: Backend; maxValueBytes: number }> = async (
  app,
  { backend, maxValueBytes },
) => {
  app.post<{ Body: WireTxnRequest }>(
    '/v1/txn',
    {
      schema: {
        summary: 'If every compare holds, apply `success`, else `failure`; all at one revision',
        body: bodySchema,
        // Documents the answer; it is sent already stringified (see below).
        response: { 200: txnResponseSchema },
      },
    },
    async (request, reply) => {
      const body = request.body;
      const compare = (body.compare ?? []).map((c, i) => toCompare(c, i, maxValueBytes));
      const success = (body.success ?? []).map((o, i) => toOp(o, `success[${i}]`, maxValueBytes));
      const failure = (body.failure ?? []).map((o, i) => toOp(o, `failure[${i}]`, maxValueBytes));
      if (compare.length + success.length + failure.length > MAX_TXN_OPS) {
        throw new InvalidArgumentError(
          `a transaction takes at most ${MAX_TXN_OPS} compares and ops in all`,
          'invalid_request',
        );
      }
      const result = await backend.txn({ compare, success, failure });
      const answer: WireTxnResponse = {
        succeeded: result.succeeded,
        revision: result.revision,
        results: result.results.map(toWireResult),
      };
      // A string skips the response serializer, whose oneOf over result types would cost more than JSON.stringify.
      return reply.type('application/json').send(JSON.stringify(answer));
    },
  );
};
