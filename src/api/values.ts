/**
 * Values between bytes and JSON: UTF-8 text when they are valid UTF-8, otherwise
 * base64 with `encoding: "base64"`. Apart from the shapes (wire.ts) so that the
 * client's code loads no schema library.
 */
import type { KeyValue } from '../core/backend.js';
import type { WireKeyValue, WireValue } from './wire.js';

const decoder = new TextDecoder('utf-8', { fatal: true });
const encoder = new TextEncoder();
/** What this file uses of Node's Buffer (declared here: the dashboard's build has no Node types). */
interface BufferCodec {
  from(buffer: ArrayBufferLike, offset: number, length: number): { toString(encoding: 'base64'): string };
  from(text: string, encoding: 'utf8' | 'base64'): Uint8Array;
}
/** Node's Buffer on the server (fast); the browser's codecs in the dashboard. */
const NodeBuffer = (globalThis as { Buffer?: BufferCodec }).Buffer;

function toBase64(bytes: Uint8Array): string {
  if (NodeBuffer) return NodeBuffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64');
  let binary = '';
  for (let i = 0; i < bytes.length; i += 0x8000) binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(binary);
}

function fromBase64(text: string): Uint8Array {
  if (NodeBuffer) return NodeBuffer.from(text, 'base64');
  return Uint8Array.from(atob(text), (c) => c.charCodeAt(0));
}

/** Encode bytes for JSON: UTF-8 text when valid, base64 otherwise. */
export function encodeValue(bytes: Uint8Array): WireValue {
  try {
    return { value: decoder.decode(bytes) };
  } catch {
    return { value: toBase64(bytes), encoding: 'base64' };
  }
}

/** Decode a value from JSON. Throws on an unknown encoding. */
export function decodeValue(value: string, encoding?: string): Uint8Array {
  if (encoding === undefined || encoding === 'utf8')
    return NodeBuffer ? NodeBuffer.from(value, 'utf8') : encoder.encode(value);
  if (encoding === 'base64') return fromBase64(value);
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
