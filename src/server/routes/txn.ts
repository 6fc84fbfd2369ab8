import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import Type from 'typebox';
import type { Static } from 'typebox';
import { CompareOp, ValueEncoding, WireKey, WireLeaseOrNull, WireRevision, WireTxnResponse } from '../../api/wire.js';
import { decodeValue, toWireKeyValue } from '../../api/values.js';
import type { WireTxnOpResult } from '../../api/wire.js';
import type { Backend, Compare, TxnOp, TxnOpResult } from '../../core/backend.js';
import { LEASE_ID_PATTERN } from '../../core/backend.js';
import { InvalidArgumentError, ValueTooLargeError } from '../../core/errors.js';
import { validateKey, validatePrefix } from '../../core/key-path.js';
import { access } from '../access.js';
import type { KeyNeed } from '../access.js';

/** At most this many compares plus ops in one transaction. */
export const MAX_TXN_OPS = 128;

// The body is checked field by field here (so a bad field is named in the 400),
// and its shape per target and op type in toCompare and toOp below: the exact
// shapes are WireCompare and WireTxnOp of api/wire.ts (the client's types).
const compareSchema = Type.Object(
  {
    key: WireKey,
    target: Type.Enum(['value', 'version', 'createRevision', 'modRevision', 'lease']),
    op: CompareOp,
    // A type list, not an anyOf, so that type coercion leaves 0 a number.
    value: Type.Unsafe<string | number | null>({ type: ['string', 'integer', 'null'] }),
    encoding: Type.Optional(ValueEncoding),
  },
  { additionalProperties: false },
);

const opSchema = Type.Object(
  {
    type: Type.Enum(['put', 'delete', 'get']),
    key: WireKey,
    value: Type.Optional(Type.String()),
    encoding: Type.Optional(ValueEncoding),
    lease: Type.Optional(WireLeaseOrNull),
    prefix: Type.Optional(Type.Boolean()),
    limit: Type.Optional(WireRevision),
    revision: Type.Optional(WireRevision),
    keysOnly: Type.Optional(Type.Boolean()),
  },
  { additionalProperties: false },
);
type BodyCompare = Static<typeof compareSchema>;
type BodyOp = Static<typeof opSchema>;

const bodySchema = Type.Object(
  {
    compare: Type.Optional(Type.Array(compareSchema, { maxItems: MAX_TXN_OPS })),
    success: Type.Optional(Type.Array(opSchema, { maxItems: MAX_TXN_OPS })),
    failure: Type.Optional(Type.Array(opSchema, { maxItems: MAX_TXN_OPS })),
  },
  { additionalProperties: false },
);

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

function toCompare(c: BodyCompare, index: number, maxValueBytes: number): Compare {
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

const OP_FIELDS: Record<BodyOp['type'], readonly string[]> = {
  put: ['type', 'key', 'value', 'encoding', 'lease'],
  delete: ['type', 'key', 'prefix'],
  get: ['type', 'key', 'prefix', 'limit', 'revision', 'keysOnly'],
};

function toOp(o: BodyOp, at: string, maxValueBytes: number): TxnOp {
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

/** Every key a txn compares (read), gets (read), puts or deletes (write), in both branches. */
function txnNeeds(body: Static<typeof bodySchema>): KeyNeed[] {
  const ops = [...(body.success ?? []), ...(body.failure ?? [])];
  return [
    ...(body.compare ?? []).map((c) => ({ key: c.key, prefix: false, mode: 'read' as const })),
    ...ops.map((o) => ({
      key: o.key,
      prefix: o.type !== 'put' && o.prefix === true,
      mode: o.type === 'get' ? ('read' as const) : ('write' as const),
      lease: o.type === 'put' ? o.lease : undefined,
    })),
  ];
}

function toWireResult(r: TxnOpResult): WireTxnOpResult {
  if (r.type === 'put')
    return { type: 'put', revision: r.revision, prevKv: r.prevKv ? toWireKeyValue(r.prevKv) : null };
  if (r.type === 'delete') return { type: 'delete', revision: r.revision, deleted: r.deleted };
  return { type: 'get', revision: r.revision, kvs: r.kvs.map(toWireKeyValue), more: r.more, count: r.count };
}

/** Atomic multi-key compare-and-swap. */
export const txnRoutes: FastifyPluginAsyncTypebox<{ backend: Backend; maxValueBytes: number }> = async (
  app,
  { backend, maxValueBytes },
) => {
  app.post(
    '/v1/txn',
    {
      config: { access: access.keys((request) => txnNeeds(request.body as Static<typeof bodySchema>)) },
      schema: {
        summary: 'If every compare holds, apply `success`, else `failure`; all at one revision',
        body: bodySchema,
        // Documents the answer; it is sent already stringified (see below).
        response: { 200: WireTxnResponse },
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
      // JSON.stringify instead of the schema's serializer, whose anyOf over result types costs more.
      return reply.type('application/json; charset=utf-8').serializer(JSON.stringify).send(answer);
    },
  );
};
