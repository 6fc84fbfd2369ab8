/**
 * Token secrets: `mst_<id>_<secret>`, where the id (12 hex digits) names the token
 * in lists, audit records and `muster token revoke`, and the secret (32 random
 * bytes, base64url) proves it. Only a SHA-256 of the secret is stored, and it is
 * compared in constant time. A token given by automation in another form (for the
 * first admin) is accepted whole as the secret of the id `bootstrap`.
 */
import { createHash, timingSafeEqual } from 'node:crypto';

export const TOKEN_PREFIX = 'mst_';
/** The id of an admin token provided by automation in a form of its own. */
export const BOOTSTRAP_TOKEN_ID = 'bootstrap';
/** A provided admin token must be at least this long. */
export const MIN_PROVIDED_TOKEN_LENGTH = 24;

const TOKEN_FORM = /^mst_([0-9a-f]{12})_([A-Za-z0-9_-]{43})$/;
export const TOKEN_ID_PATTERN = /^(?:[0-9a-f]{12}|bootstrap)$/;

export interface TokenParts {
  readonly id: string;
  readonly secret: string;
}

/** A new token from `random` bytes: its id, its secret, and the text a user keeps. */
export function newToken(random: (size: number) => Uint8Array): TokenParts & { readonly text: string } {
  const id = Buffer.from(random(6)).toString('hex');
  const secret = Buffer.from(random(32)).toString('base64url');
  return { id, secret, text: `${TOKEN_PREFIX}${id}_${secret}` };
}

/** Split a presented token into id and secret, or null when it cannot be one. */
export function parseToken(text: string): TokenParts | null {
  const match = TOKEN_FORM.exec(text);
  if (match) return { id: match[1] as string, secret: match[2] as string };
  if (text.length >= MIN_PROVIDED_TOKEN_LENGTH && text.length <= 512 && /^[\x21-\x7e]+$/.test(text)) {
    return { id: BOOTSTRAP_TOKEN_ID, secret: text };
  }
  return null;
}

export function hashSecret(secret: string): string {
  return createHash('sha256').update(secret, 'utf8').digest('hex');
}

/** Decoded stored hashes, one per hex string (a token's hash is read on every request). */
const storedHashes = new Map<string, Buffer>();

/** True when `secret` hashes to `storedHash`, in time that does not depend on where they differ. */
export function secretMatches(secret: string, storedHash: string): boolean {
  const presented = createHash('sha256').update(secret, 'utf8').digest();
  let stored = storedHashes.get(storedHash);
  if (!stored) {
    stored = Buffer.from(storedHash, 'hex');
    if (storedHashes.size > 10_000) storedHashes.clear();
    storedHashes.set(storedHash, stored);
  }
  return stored.length === presented.length && timingSafeEqual(presented, stored);
}

/**
 * True when `a` and `b` are the same string, in time that depends on their lengths
 * only, never on where they differ (for a secret already proven by its hash).
 */
export function sameString(a: string, b: string): boolean {
  if (a.length !== b.length) return false;
  let difference = 0;
  for (let i = 0; i < a.length; i++) difference |= a.charCodeAt(i) ^ b.charCodeAt(i);
  return difference === 0;
}
