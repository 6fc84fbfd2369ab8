/**
 * Values between bytes and JSON: UTF-8 text when they are valid UTF-8, otherwise
 * base64 with `encoding: "base64"`. Apart from the shapes (wire.ts) so that the
 * client's code loads no schema library.
 */
import type { KeyValue } from '../core/backend.js';
import type { WireKeyValue, WireValue } from './wire.js';

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
