/**
 * A lease belongs to the token that granted it: `/muster/auth/leases/<id>` holds
 * the token's id and is bound to the lease itself, so it vanishes with the lease.
 * Only that token (or an admin) may keep the lease alive, revoke it, bind keys to
 * it or take a primitive with it.
 */
import type { Backend, LeaseId } from '../core/backend.js';
import { AUTH_PREFIX } from './policy.js';

export const LEASE_OWNERS_PREFIX = `${AUTH_PREFIX}leases/`;

const encoder = new TextEncoder();
const decoder = new TextDecoder();

export async function recordLeaseOwner(backend: Backend, lease: LeaseId, tokenId: string): Promise<void> {
  await backend.put(LEASE_OWNERS_PREFIX + lease, encoder.encode(tokenId), { lease });
}

/** The id of the token that granted `lease`, or null (no such lease, or granted without auth). */
export async function leaseOwner(backend: Backend, lease: LeaseId): Promise<string | null> {
  const kv = await backend.get(LEASE_OWNERS_PREFIX + lease);
  return kv ? decoder.decode(kv.value) : null;
}
