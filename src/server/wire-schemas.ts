/**
 * JSON schemas of the wire shapes of src/api/wire.ts, for the routes' response
 * schemas and so for the OpenAPI document. Keep them in step with wire.ts: a
 * field missing here is dropped by the response serializer.
 */

export const keyValueProperties = {
  key: { type: 'string' },
  value: { type: 'string', description: 'UTF-8 text, or base64 when `encoding` is "base64"' },
  encoding: { type: 'string', enum: ['base64'], description: 'Present only when `value` is base64' },
  createRevision: { type: 'integer' },
  modRevision: { type: 'integer' },
  version: { type: 'integer' },
  lease: { type: ['string', 'null'] },
} as const;

/** WireKeyValue */
export const keyValueSchema = {
  type: 'object',
  required: ['key', 'value', 'createRevision', 'modRevision', 'version', 'lease'],
  properties: keyValueProperties,
} as const;

const rangeProperties = {
  revision: { type: 'integer' },
  kvs: { type: 'array', items: keyValueSchema },
  more: { type: 'boolean' },
  count: { type: 'integer' },
} as const;

/** WireRangeResponse */
export const rangeResponseSchema = {
  type: 'object',
  required: ['revision', 'kvs', 'more', 'count'],
  properties: rangeProperties,
} as const;

/** `GET /v1/kv/<key>?meta=true`: WireKeyValue plus the store revision. */
export const keyMetaSchema = {
  type: 'object',
  required: [...keyValueSchema.required, 'revision'],
  properties: { ...keyValueProperties, revision: { type: 'integer' } },
} as const;

/** WireTxnOpResult */
export const txnOpResultSchema = {
  oneOf: [
    {
      type: 'object',
      required: ['type', 'revision', 'prevKv'],
      properties: {
        type: { type: 'string', enum: ['put'] },
        revision: { type: 'integer' },
        prevKv: { anyOf: [keyValueSchema, { type: 'null' }] },
      },
    },
    {
      type: 'object',
      required: ['type', 'revision', 'deleted'],
      properties: {
        type: { type: 'string', enum: ['delete'] },
        revision: { type: 'integer' },
        deleted: { type: 'integer' },
      },
    },
    {
      type: 'object',
      required: ['type', ...rangeResponseSchema.required],
      properties: { type: { type: 'string', enum: ['get'] }, ...rangeProperties },
    },
  ],
} as const;

/** WireTxnResponse */
export const txnResponseSchema = {
  type: 'object',
  required: ['succeeded', 'revision', 'results'],
  properties: {
    succeeded: { type: 'boolean' },
    revision: { type: 'integer' },
    results: { type: 'array', items: txnOpResultSchema },
  },
} as const;
