import { InvalidArgumentError, InvalidKeyError } from './errors.js';

/** Keys are at most this many bytes (UTF-8). */
export const MAX_KEY_BYTES = 1024;

const CONTROL = /[\u0000-\u001f\u007f]/;
const LONE_SURROGATE = /\p{Cs}/u;

/**
 * Check a key: it starts with `/`, has no empty segment (`//`, or a trailing
 * `/`), no `.` or `..` segment, no control character, and is at most 1 KiB.
 * Throws InvalidKeyError naming the rule broken.
 */
export function validateKey(key: string): string {
  checkCommon(key);
  if (key === '/') throw new InvalidKeyError(key, 'the root "/" is not a key (use it as a prefix)');
  if (key.endsWith('/')) throw new InvalidKeyError(key, 'a key must not end with "/" (that is a prefix)');
  checkSegments(key, key.split('/').slice(1));
  return key;
}

/**
 * Check a prefix: the same rules as a key, except that it may end with `/`
 * (meaning "everything in this folder"), and `/` alone means everything.
 */
export function validatePrefix(prefix: string): string {
  checkCommon(prefix);
  if (prefix === '/') return prefix;
  const body = prefix.endsWith('/') ? prefix.slice(0, -1) : prefix;
  checkSegments(prefix, body.split('/').slice(1));
  return prefix;
}

/** UTF-8 length: Node's Buffer on the server, TextEncoder in the dashboard. */
function utf8Length(text: string): number {
  const NodeBuffer = (globalThis as { Buffer?: { byteLength(text: string, encoding: 'utf8'): number } }).Buffer;
  return NodeBuffer ? NodeBuffer.byteLength(text, 'utf8') : new TextEncoder().encode(text).length;
}

function checkCommon(key: string): void {
  if (key.length === 0) throw new InvalidKeyError(key, 'it is empty');
  if (!key.startsWith('/')) throw new InvalidKeyError(key, 'it must start with "/"');
  if (key.length * 3 > MAX_KEY_BYTES && utf8Length(key) > MAX_KEY_BYTES) {
    throw new InvalidKeyError(key, `it is longer than ${MAX_KEY_BYTES} bytes`);
  }
  if (CONTROL.test(key)) throw new InvalidKeyError(key, 'it contains a control character');
  // A lone UTF-16 surrogate has no UTF-8 form: stored, it could never be named again.
  if (LONE_SURROGATE.test(key)) throw new InvalidKeyError(key, 'it is not valid Unicode (a lone surrogate)');
}

function checkSegments(key: string, segments: string[]): void {
  for (const segment of segments) {
    if (segment === '') throw new InvalidKeyError(key, 'it has an empty segment ("//")');
    if (segment === '.' || segment === '..') {
      throw new InvalidKeyError(key, `it has a "${segment}" segment`);
    }
  }
}

/** The smallest string greater than every string that starts with `prefix`. */
export function prefixEnd(prefix: string): string {
  // Keys are compared as UTF-8 bytes by both backends; for the ASCII separators
  // used here, incrementing the last UTF-16 unit gives the same bound.
  if (prefix.length === 0) return '\u{10ffff}';
  const last = prefix.charCodeAt(prefix.length - 1);
  return prefix.slice(0, -1) + String.fromCharCode(last + 1);
}

const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

/** A coordination primitive's name (a lock, an election…): letters, digits, `.`, `_`, `-`; 1–128 characters; not starting with punctuation. */
export function validateName(name: string, what = 'name'): string {
  if (!NAME.test(name)) {
    throw new InvalidArgumentError(
      `invalid ${what} ${JSON.stringify(name.slice(0, 80))}: use 1-128 letters, digits, ".", "_" or "-", starting with a letter or digit`,
      'invalid_name',
    );
  }
  return name;
}
