import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import Type from 'typebox';
import { WireDuration, WireLeaseGrant, WireLeaseInfo, WireLeaseList, WireLeaseRevoked } from '../../api/wire.js';
import type { Backend } from '../../core/backend.js';
import { parseDuration } from '../../core/duration.js';
import { InvalidArgumentError } from '../../core/errors.js';
import { leaseIdSchema } from './primitive-schemas.js';
import { NO_AUTH_PRINCIPAL, access } from '../access.js';
import { LEASE_OWNERS_PREFIX, recordLeaseOwner } from '../../security/lease-owners.js';

/** Lease TTLs are whole seconds from 1 s to one day. */
export const MAX_LEASE_TTL = 86_400;

const idParams = Type.Object({ id: leaseIdSchema }, { additionalProperties: false });

function ttlSeconds(ttl: string | number): number {
  const ms = parseDuration(ttl, 'ttl');
  const seconds = Math.ceil(ms / 1000);
  if (seconds < 1 || seconds > MAX_LEASE_TTL) {
    throw new InvalidArgumentError(
      `lease ttl must be from 1s to ${MAX_LEASE_TTL}s (one day), got ${JSON.stringify(ttl)}`,
      'invalid_ttl',
    );
  }
  return seconds;
}

/** Leases: grant, keep alive, revoke, inspect, list. */
export const leaseRoutes: FastifyPluginAsyncTypebox<{ backend: Backend }> = async (app, { backend }) => {
  app.post(
    '/v1/leases',
    {
      config: { access: access.lease('grant') },
      schema: {
        summary: 'Grant a lease of `ttl` (seconds, or a duration such as "15s"); keys bound to it vanish when it ends',
        body: Type.Object({ ttl: WireDuration }, { additionalProperties: false }),
        response: { 200: WireLeaseGrant },
      },
    },
    async (request) => {
      const lease = await backend.grantLease(ttlSeconds(request.body.ttl));
      // The lease is the granting token's: only it (or an admin) may use it.
      if (request.principal !== NO_AUTH_PRINCIPAL) await recordLeaseOwner(backend, lease.id, request.principal.tokenId);
      return lease;
    },
  );

  app.post(
    '/v1/leases/:id/keepalive',
    {
      config: { access: access.lease('own') },
      schema: { summary: 'Renew a lease to its full TTL', params: idParams, response: { 200: WireLeaseGrant } },
    },
    async (request) => backend.keepAlive(request.params.id),
  );

  app.delete(
    '/v1/leases/:id',
    {
      config: { access: access.lease('own') },
      schema: {
        summary: 'Revoke a lease now, deleting its keys',
        params: idParams,
        response: { 200: WireLeaseRevoked },
      },
    },
    async (request) => {
      await backend.revokeLease(request.params.id);
      return { revoked: true, id: request.params.id };
    },
  );

  app.get(
    '/v1/leases/:id',
    {
      config: { access: access.lease('own') },
      schema: {
        summary: 'A lease: seconds left, TTL granted, keys bound to it',
        params: idParams,
        response: { 200: WireLeaseInfo },
      },
    },
    async (request) => {
      const info = await backend.leaseInfo(request.params.id);
      // The owner record is muster's bookkeeping, not one of the caller's keys.
      return { ...info, keys: info.keys.filter((key) => !key.startsWith(LEASE_OWNERS_PREFIX)) };
    },
  );

  app.get(
    '/v1/leases',
    {
      config: { access: access.lease('list') },
      schema: {
        summary: 'Every live lease',
        response: { 200: WireLeaseList },
      },
    },
    async () => ({ leases: await backend.listLeases() }),
  );
};
