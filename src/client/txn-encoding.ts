import type { Compare, KeyValue, TxnOp } from '../core/backend.js';
import type {
  WireCompare,
  WireTxnOp,
  WireTxnOpResult,
  WireTxnRequest,
  WireTxnResponse,
  WireValue,
} from '../api/wire.js';
import { encodeValue, fromWireKeyValue } from '../api/values.js';

/** A value as a caller gives it: text (sent as UTF-8) or bytes. */
export type ClientValue = string | Uint8Array;

/** core/backend.ts's Compare, with a value compare taking text or bytes. */
export type ClientCompare = Compare<ClientValue>;

/** core/backend.ts's TxnOp, with a put taking text or bytes. */
export type ClientTxnOp = TxnOp<ClientValue>;

export interface ClientTxnRequest {
  readonly compare?: readonly ClientCompare[];
  readonly success?: readonly ClientTxnOp[];
  readonly failure?: readonly ClientTxnOp[];
}

/** One op's result as the API reports it, values decoded to bytes. */
export type ClientTxnOpResult =
  | { readonly type: 'put'; readonly revision: number; readonly prevKv: KeyValue | null }
  | { readonly type: 'delete'; readonly revision: number; readonly deleted: number }
  | {
      readonly type: 'get';
      readonly revision: number;
      readonly kvs: KeyValue[];
      readonly more: boolean;
      readonly count: number;
    };

export interface ClientTxnResult {
  readonly succeeded: boolean;
  readonly revision: number;
  readonly results: ClientTxnOpResult[];
}

/** Text or bytes as a JSON value: text stays text, bytes go as UTF-8 or base64. */
export function wireValue(value: ClientValue): WireValue {
  return typeof value === 'string' ? { value } : encodeValue(value);
}

/** A transaction in the shape `POST /v1/txn` takes. */
export function encodeTxnRequest(request: ClientTxnRequest): WireTxnRequest {
  return {
    compare: (request.compare ?? []).map(encodeCompare),
    success: (request.success ?? []).map(encodeOp),
    failure: (request.failure ?? []).map(encodeOp),
  };
}

function encodeCompare(compare: ClientCompare): WireCompare {
  if (compare.target === 'value') {
    return { key: compare.key, target: 'value', op: compare.op, ...wireValue(compare.value) };
  }
  return { ...compare };
}

function encodeOp(op: ClientTxnOp): WireTxnOp {
  switch (op.type) {
    case 'put':
      return {
        type: 'put',
        key: op.key,
        ...wireValue(op.value),
        ...(op.lease !== undefined ? { lease: op.lease } : {}),
      };
    case 'delete':
      return { type: 'delete', key: op.key, ...(op.prefix !== undefined ? { prefix: op.prefix } : {}) };
    case 'get': {
      const { type: _type, ...range } = op;
      return { type: 'get', ...range };
    }
  }
}

/** A `POST /v1/txn` answer with its values decoded. */
export function decodeTxnResponse(response: WireTxnResponse): ClientTxnResult {
  return {
    succeeded: response.succeeded,
    revision: response.revision,
    results: response.results.map(decodeOpResult),
  };
}

function decodeOpResult(result: WireTxnOpResult): ClientTxnOpResult {
  switch (result.type) {
    case 'put':
      return { type: 'put', revision: result.revision, prevKv: result.prevKv ? fromWireKeyValue(result.prevKv) : null };
    case 'delete':
      return { type: 'delete', revision: result.revision, deleted: result.deleted };
    case 'get':
      return {
        type: 'get',
        revision: result.revision,
        kvs: result.kvs.map(fromWireKeyValue),
        more: result.more,
        count: result.count,
      };
  }
}
