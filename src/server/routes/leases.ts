import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import Type from 'typebox';
import { WireDuration, WireLeaseGrant, WireLeaseInfo, WireLeaseList, WireLeaseRevoked } from '../../api/wire.js';
import type { Backend } from '../../core/backend.js';
import { parseDuration } from '../../core/duration.js';
import { InvalidArgumentError } from '../../core/errors.js';
import { leaseIdSchema } from './primitive-schemas.js';

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
      schema: {
        summary: 'Grant a lease of `ttl` (seconds, or a duration such as "15s"); keys bound to it vanish when it ends',
        body: Type.Object({ ttl: WireDuration }, { additionalProperties: false }),
        response: { 200: WireLeaseGrant },
      },
    },
    async (request) => backend.grantLease(ttlSeconds(request.body.ttl)),
  );

  app.post(
    '/v1/leases/:id/keepalive',
    { schema: { summary: 'Renew a lease to its full TTL', params: idParams, response: { 200: WireLeaseGrant } } },
    async (request) => backend.keepAlive(request.params.id),
  );

  app.delete(
    '/v1/leases/:id',
    {
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
      schema: {
        summary: 'A lease: seconds left, TTL granted, keys bound to it',
        params: idParams,
        response: { 200: WireLeaseInfo },
      },
    },
    async (request) => backend.leaseInfo(request.params.id),
  );

  app.get(
    '/v1/leases',
    {
      schema: {
        summary: 'Every live lease',
        response: { 200: WireLeaseList },
      },
    },
    async () => ({ leases: await backend.listLeases() }),
  );
};
