import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import Type from 'typebox';
import { parseDurationWithin } from '../../core/duration.js';
import { MAX_LOCK_DELAY_MS, acquireLock, lockStatus, releaseLock } from '../../primitives/lock.js';
import { LockHandle, LockStatus } from '../../primitives/result-schemas.js';
import { blocking, timeoutSchema } from './blocking.js';
import type { PrimitiveRouteDeps } from './blocking.js';
import { heldBody, leaseIdSchema, nameParams } from './primitive-schemas.js';
import { access } from '../access.js';

function lockDelay(value: string | number | undefined): number {
  if (value === undefined) return 0;
  return parseDurationWithin(value, 'lock delay', { aboveZero: false, maxMs: MAX_LOCK_DELAY_MS, max: '1h' });
}

/** Fenced locks: acquire (blocking), release, status. */
export const lockRoutes: FastifyPluginAsyncTypebox<PrimitiveRouteDeps> = async (app, deps) => {
  const { backend } = deps;
  app.post(
    '/v1/locks/:name/acquire',
    {
      config: { access: access.primitive('use', { lease: (request) => (request.body as { lease?: string }).lease }) },
      schema: {
        summary: 'Wait for a lock and take it for a session; returns the fencing token',
        description:
          'lockDelay (seconds or a duration such as "5s", default 0, at most 1h), as in Consul: should this ' +
          "caller's session be lost while it holds the lock (rather than the lock be released), nobody gets the " +
          'lock for this long after a contender first finds it gone. Waiting out such a delay counts toward ' +
          "the caller's timeout.",
        params: nameParams,
        body: Type.Object(
          { lease: leaseIdSchema, timeout: Type.Optional(timeoutSchema), lockDelay: Type.Optional(timeoutSchema) },
          { additionalProperties: false },
        ),
        response: { 200: LockHandle },
      },
    },
    async (request, reply) => {
      const lockDelayMs = lockDelay(request.body.lockDelay);
      return blocking(reply, deps, request.body.timeout, `lock ${request.params.name}`, (signal) =>
        acquireLock(backend, request.params.name, request.body.lease, { signal, lockDelayMs, clock: deps.clock }),
      );
    },
  );

  app.post(
    '/v1/locks/:name/release',
    {
      config: { access: access.primitive('use', { held: (request) => (request.body as { key?: string }).key }) },
      schema: {
        summary: 'Release a lock; refused (409 not_holder) unless the token still holds it',
        params: nameParams,
        body: heldBody,
        response: { 200: Type.Object({ released: Type.Boolean() }) },
      },
    },
    async (request) => {
      await releaseLock(backend, { name: request.params.name, key: request.body.key, token: request.body.token });
      return { released: true };
    },
  );

  app.get(
    '/v1/locks/:name',
    {
      config: { access: access.primitive('read') },
      schema: { summary: 'Who holds a lock, and how many wait', params: nameParams, response: { 200: LockStatus } },
    },
    async (request) => lockStatus(backend, request.params.name),
  );
};
