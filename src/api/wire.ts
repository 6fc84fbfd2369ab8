/**
 * The JSON shapes of the HTTP API v1, shared by server/ (which writes them) and
 * client/ (which reads them). Values travel as UTF-8 text when they are valid
 * UTF-8, otherwise as base64 with `encoding: "base64"`.
 */
import type { CompareOp, KeyValue, LeaseId } from '../core/backend.js';

export type ValueEncoding = 'utf8' | 'base64';

/** A key and its metadata as the API shows it. */
export interface WireKeyValue {
  key: string;
  value: string;
  /** Present (as "base64") only when `value` is base64. */
  encoding?: 'base64';
  createRevision: number;
  modRevision: number;
  version: number;
  lease: LeaseId | null;
}

/** `PUT /v1/kv/<key>` → 200 */
export interface WirePutResponse {
  revision: number;
  key: string;
  createRevision: number;
  modRevision: number;
  version: number;
}

/** `GET /v1/kv/<prefix>?prefix=true` → 200 */
export interface WireRangeResponse {
  revision: number;
  kvs: WireKeyValue[];
  more: boolean;
  count: number;
}

/** `DELETE /v1/kv/<key>` → 200 */
export interface WireDeleteResponse {
  revision: number;
  deleted: number;
}

/** A value inside a txn request: text, or base64 with `encoding`. */
export interface WireValue {
  value: string;
  encoding?: ValueEncoding;
}

export type WireCompare =
  | ({ key: string; target: 'value'; op: CompareOp } & WireValue)
  | { key: string; target: 'version' | 'createRevision' | 'modRevision'; op: CompareOp; value: number }
  | { key: string; target: 'lease'; op: CompareOp; value: LeaseId | null };

export type WireTxnOp =
  | ({ type: 'put'; key: string; lease?: LeaseId | null } & WireValue)
  | { type: 'delete'; key: string; prefix?: boolean }
  | { type: 'get'; key: string; prefix?: boolean; limit?: number; revision?: number; keysOnly?: boolean };

/** `POST /v1/txn` body */
export interface WireTxnRequest {
  compare?: WireCompare[];
  success?: WireTxnOp[];
  failure?: WireTxnOp[];
}

export type WireTxnOpResult =
  | { type: 'put'; revision: number; prevKv: WireKeyValue | null }
  | { type: 'delete'; revision: number; deleted: number }
  | ({ type: 'get' } & WireRangeResponse);

/** `POST /v1/txn` → 200 */
export interface WireTxnResponse {
  succeeded: boolean;
  revision: number;
  results: WireTxnOpResult[];
}

/** `POST /v1/leases` and `POST /v1/leases/<id>/keepalive` → 200 */
export interface WireLeaseGrant {
  id: LeaseId;
  ttl: number;
}

/** `GET /v1/leases/<id>` → 200 */
export interface WireLeaseInfo {
  id: LeaseId;
  ttl: number;
  grantedTtl: number;
  keys: string[];
}

/** One Server-Sent Event of `GET /v1/watch/<prefix>`: `data:` of an `event: put|delete`. */
export interface WireWatchEvent extends WireKeyValue {
  type: 'put' | 'delete';
  revision: number;
  prevKv?: WireKeyValue | null;
}

/** `data:` of `event: compacted`, sent before the stream closes. */
export interface WireCompactedEvent {
  requestedRevision: number;
  oldestRevision: number;
}

/** Every 4xx/5xx body. Extra fields (such as `currentModRevision`) add context. */
export interface WireErrorBody {
  error: { code: string; message: string; [field: string]: unknown };
}

const decoder = new TextDecoder('utf-8', { fatal: true });

/** Encode bytes for JSON: UTF-8 text when valid, base64 otherwise. */
export function encodeValue(bytes: Uint8Array): WireValue {
  try {
    return { value: decoder.decode(bytes) };
  } catch {
    return { value: Buffer.from(bytes).toString('base64'), encoding: 'base64' };
  }
}

/** Decode a value from JSON. Throws on an unknown encoding. */
export function decodeValue(value: string, encoding?: string): Uint8Array {
  if (encoding === undefined || encoding === 'utf8') return Buffer.from(value, 'utf8');
  if (encoding === 'base64') return Buffer.from(value, 'base64');
  throw new Error(`unknown encoding ${JSON.stringify(encoding)} (use "utf8" or "base64")`);
}

export function toWireKeyValue(kv: KeyValue): WireKeyValue {
  const { value, encoding } = encodeValue(kv.value);
  return {
    key: kv.key,
    value,
    ...(encoding === 'base64' ? { encoding } : {}),
    createRevision: kv.createRevision,
    modRevision: kv.modRevision,
    version: kv.version,
    lease: kv.lease,
  };
}

export function fromWireKeyValue(kv: WireKeyValue): KeyValue {
  return {
    key: kv.key,
    value: decodeValue(kv.value, kv.encoding),
    createRevision: kv.createRevision,
    modRevision: kv.modRevision,
    version: kv.version,
    lease: kv.lease,
  };
}
