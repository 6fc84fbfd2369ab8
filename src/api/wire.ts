/**
 * The JSON shapes of the HTTP API v1, written once as JSON schemas (TypeBox) with
 * their TypeScript types derived from them: the server's routes validate and
 * serialize with these schemas (and so the OpenAPI document shows them), and
 * client/ reads its answers as these types. A field added here reaches all three;
 * a field missing here cannot be sent. Values travel as UTF-8 text when they are
 * valid UTF-8, otherwise as base64 with `encoding: "base64"`.
 */
import Type from 'typebox';
import type { Static } from 'typebox';
import { LEASE_ID_PATTERN } from '../core/backend.js';
import { OnceResult } from '../primitives/result-schemas.js';
import { ROLES } from '../security/policy.js';

/** A lease id: 1 to 16 lowercase hex digits. */
export const WireLeaseId = Type.String({ pattern: LEASE_ID_PATTERN.source, description: 'A lease id (hex)' });
export const WireLeaseOrNull = Type.Union([WireLeaseId, Type.Null()]);
/** A revision, or a count of them. */
export const WireRevision = Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER });
/** A key in a JSON body (the URL routes take theirs from the path). */
export const WireKey = Type.String({ minLength: 1, maxLength: 1024 });

/**
 * Seconds, or a duration such as "30s". A JSON-schema type list, not an anyOf: with
 * the validator's type coercion an anyOf would turn the number 30 into "30".
 */
export const WireDuration = Type.Unsafe<string | number>({ type: ['string', 'number'] });

export const ValueEncoding = Type.Enum(['utf8', 'base64']);
export type ValueEncoding = Static<typeof ValueEncoding>;

export const CompareOp = Type.Enum(['=', '!=', '<', '>']);

const keyValueFields = {
  key: Type.String(),
  value: Type.String({ description: 'UTF-8 text, or base64 when `encoding` is "base64"' }),
  encoding: Type.Optional(Type.Enum(['base64'], { description: 'Present only when `value` is base64' })),
  createRevision: Type.Integer(),
  modRevision: Type.Integer(),
  version: Type.Integer({ description: '1 when created, +1 on every put since' }),
  lease: Type.Union([Type.String(), Type.Null()]),
};

/** A key and its metadata as the API shows it. */
export const WireKeyValue = Type.Object(keyValueFields);
export type WireKeyValue = Static<typeof WireKeyValue>;

/** `GET /v1/kv/<key>?meta=true`: the key plus the store revision. */
export const WireKeyMeta = Type.Object({ ...keyValueFields, revision: Type.Integer() });
export type WireKeyMeta = Static<typeof WireKeyMeta>;

/** `PUT /v1/kv/<key>` → 200 */
export const WirePutResponse = Type.Object({
  revision: Type.Integer(),
  key: Type.String(),
  createRevision: Type.Integer(),
  modRevision: Type.Integer(),
  version: Type.Integer(),
});
export type WirePutResponse = Static<typeof WirePutResponse>;

const rangeFields = {
  revision: Type.Integer(),
  kvs: Type.Array(WireKeyValue),
  more: Type.Boolean({ description: 'True when the limit cut the answer short' }),
  count: Type.Integer({ description: 'How many keys match, whatever the limit' }),
};

/** `GET /v1/kv/<prefix>?prefix=true` → 200 */
export const WireRangeResponse = Type.Object(rangeFields);
export type WireRangeResponse = Static<typeof WireRangeResponse>;

/** `DELETE /v1/kv/<key>` → 200 */
export const WireDeleteResponse = Type.Object({ revision: Type.Integer(), deleted: Type.Integer() });
export type WireDeleteResponse = Static<typeof WireDeleteResponse>;

/** A value inside a txn request: text, or base64 with `encoding`. */
export const WireValue = Type.Object({ value: Type.String(), encoding: Type.Optional(ValueEncoding) });
export type WireValue = Static<typeof WireValue>;

/** One compare of a txn: what the key's target must be. */
export const WireCompare = Type.Union([
  Type.Object({
    key: WireKey,
    target: Type.Enum(['value']),
    op: CompareOp,
    value: Type.String(),
    encoding: Type.Optional(ValueEncoding),
  }),
  Type.Object({
    key: WireKey,
    target: Type.Enum(['version', 'createRevision', 'modRevision']),
    op: CompareOp,
    value: Type.Integer(),
  }),
  Type.Object({ key: WireKey, target: Type.Enum(['lease']), op: CompareOp, value: WireLeaseOrNull }),
]);
export type WireCompare = Static<typeof WireCompare>;

/** One op of a txn. */
export const WireTxnOp = Type.Union([
  Type.Object({
    type: Type.Enum(['put']),
    key: WireKey,
    value: Type.String(),
    encoding: Type.Optional(ValueEncoding),
    lease: Type.Optional(WireLeaseOrNull),
  }),
  Type.Object({ type: Type.Enum(['delete']), key: WireKey, prefix: Type.Optional(Type.Boolean()) }),
  Type.Object({
    type: Type.Enum(['get']),
    key: WireKey,
    prefix: Type.Optional(Type.Boolean()),
    limit: Type.Optional(WireRevision),
    revision: Type.Optional(WireRevision),
    keysOnly: Type.Optional(Type.Boolean()),
  }),
]);
export type WireTxnOp = Static<typeof WireTxnOp>;

/** `POST /v1/txn` body */
export const WireTxnRequest = Type.Object({
  compare: Type.Optional(Type.Array(WireCompare)),
  success: Type.Optional(Type.Array(WireTxnOp)),
  failure: Type.Optional(Type.Array(WireTxnOp)),
});
export type WireTxnRequest = Static<typeof WireTxnRequest>;

/** What one op of a txn did. */
export const WireTxnOpResult = Type.Union([
  Type.Object({ type: Type.Enum(['put']), revision: Type.Integer(), prevKv: Type.Union([WireKeyValue, Type.Null()]) }),
  Type.Object({ type: Type.Enum(['delete']), revision: Type.Integer(), deleted: Type.Integer() }),
  Type.Object({ type: Type.Enum(['get']), ...rangeFields }),
]);
export type WireTxnOpResult = Static<typeof WireTxnOpResult>;

/** `POST /v1/txn` → 200 */
export const WireTxnResponse = Type.Object({
  succeeded: Type.Boolean(),
  revision: Type.Integer(),
  results: Type.Array(WireTxnOpResult),
});
export type WireTxnResponse = Static<typeof WireTxnResponse>;

/** `POST /v1/leases` and `POST /v1/leases/<id>/keepalive` → 200 */
export const WireLeaseGrant = Type.Object({ id: Type.String(), ttl: Type.Integer({ description: 'Seconds' }) });
export type WireLeaseGrant = Static<typeof WireLeaseGrant>;

/** `GET /v1/leases/<id>` → 200 */
export const WireLeaseInfo = Type.Object({
  id: Type.String(),
  ttl: Type.Integer({ description: 'Seconds left' }),
  grantedTtl: Type.Integer({ description: 'Seconds it was granted for' }),
  keys: Type.Array(Type.String()),
});
export type WireLeaseInfo = Static<typeof WireLeaseInfo>;

/** `DELETE /v1/leases/<id>` → 200 */
export const WireLeaseRevoked = Type.Object({ revoked: Type.Boolean(), id: Type.String() });
export type WireLeaseRevoked = Static<typeof WireLeaseRevoked>;

/** `GET /v1/leases` → 200 */
export const WireLeaseList = Type.Object({ leases: Type.Array(Type.String()) });
export type WireLeaseList = Static<typeof WireLeaseList>;

/** One Server-Sent Event of `GET /v1/watch/<prefix>`: `data:` of an `event: put|delete`. */
export const WireWatchEvent = Type.Object({
  type: Type.Enum(['put', 'delete']),
  revision: Type.Integer(),
  ...keyValueFields,
  prevKv: Type.Optional(Type.Union([WireKeyValue, Type.Null()])),
});
export type WireWatchEvent = Static<typeof WireWatchEvent>;

/** `data:` of `event: compacted`, sent before the stream closes. */
export const WireCompactedEvent = Type.Object({ requestedRevision: Type.Integer(), oldestRevision: Type.Integer() });
export type WireCompactedEvent = Static<typeof WireCompactedEvent>;

/** `data:` of `event: progress`: every event up to `revision` has been sent (its `id:` is that revision). */
export const WireProgressEvent = Type.Object({ revision: Type.Integer() });
export type WireProgressEvent = Static<typeof WireProgressEvent>;

/** `GET /healthz` → 200 */
export const WireHealth = Type.Object({
  status: Type.Enum(['ok']),
  backend: Type.String({ description: '"sqlite" or "etcd"' }),
  revision: Type.Integer(),
});
export type WireHealth = Static<typeof WireHealth>;

/** An election's leader as the API shows it (the value as UTF-8 text). */
export const WireLeader = Type.Object({
  key: Type.String({ description: 'The candidate key' }),
  value: Type.String(),
  token: Type.Integer({ description: 'The candidate key’s createRevision' }),
  lease: Type.Union([Type.String(), Type.Null()]),
  revision: Type.Integer({ description: 'The revision at which this leader was observed' }),
});
export type WireLeader = Static<typeof WireLeader>;

/** `GET /v1/elections/<name>/leader` → 200, and the `data:` of each `event: leader` of observe. */
export const WireLeaderAnswer = Type.Object({ leader: Type.Union([WireLeader, Type.Null()]) });
export type WireLeaderAnswer = Static<typeof WireLeaderAnswer>;

/** `GET /v1/wait/<key>` → 200: the condition held at `revision`. */
export const WireWaitAnswer = Type.Object({
  key: Type.String(),
  satisfied: Type.Literal(true),
  revision: Type.Integer(),
  kv: Type.Union([WireKeyValue, Type.Null()], { description: 'The key when the condition held (null for deleted)' }),
});
export type WireWaitAnswer = Static<typeof WireWaitAnswer>;

/** `POST /v1/elections/<name>/proclaim` → 200: the revision of the new value. */
export const WireProclaimed = Type.Object({ revision: Type.Integer() });
export type WireProclaimed = Static<typeof WireProclaimed>;

/** `DELETE /v1/barriers/<name>` → 200: `deleted` participant and state keys. */
export const WireBarrierReset = Type.Object({ reset: Type.Boolean(), deleted: Type.Integer() });
export type WireBarrierReset = Static<typeof WireBarrierReset>;

/** `POST /v1/once/<name>/complete` → 200: the result as recorded. */
export const WireOnceCompleted = Type.Object({ result: OnceResult });
export type WireOnceCompleted = Static<typeof WireOnceCompleted>;

/** `DELETE /v1/once/<name>` → 200: whether there was a result to forget. */
export const WireOnceReset = Type.Object({ reset: Type.Boolean() });
export type WireOnceReset = Static<typeof WireOnceReset>;

/** `GET /v1/auth/whoami` → 200: the token a request carries. */
export const WireWhoAmI = Type.Object({
  auth: Type.Boolean({ description: 'False when the server runs with --insecure-no-auth' }),
  tokenId: Type.String(),
  role: Type.Enum([...ROLES]),
  policy: Type.String({ description: 'The role, and for node and cluster tokens their name' }),
});
export type WireWhoAmI = Static<typeof WireWhoAmI>;

/** Every 4xx/5xx body. Extra fields (such as `currentModRevision`) add context. */
export const WireErrorBody = Type.Object({
  error: Type.Object({ code: Type.String(), message: Type.String() }, { additionalProperties: true }),
});
export type WireErrorBody = Static<typeof WireErrorBody> & { error: Record<string, unknown> };

/** The kinds of coordination primitive, as `GET /v1/primitives` names them. */
export const PRIMITIVE_KINDS = ['lock', 'semaphore', 'election', 'barrier', 'once'] as const;
export type WirePrimitiveKind = (typeof PRIMITIVE_KINDS)[number];

/** `GET /v1/primitives` → 200 */
export const WirePrimitiveList = Type.Object({
  revision: Type.Integer(),
  primitives: Type.Array(
    Type.Object({
      kind: Type.Enum([...PRIMITIVE_KINDS]),
      name: Type.String(),
      keys: Type.Integer({ description: 'Its keys now: holders, waiters, candidates, results' }),
    }),
  ),
});
export type WirePrimitiveList = Static<typeof WirePrimitiveList>;
