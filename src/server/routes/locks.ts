import type { FastifyPluginAsync } from 'fastify';
import { parseDurationWithin } from '../../core/duration.js';
import { MAX_LOCK_DELAY_MS, acquireLock, lockStatus, releaseLock } from '../../primitives/lock.js';
import { blocking, timeoutSchema } from './blocking.js';
import type { PrimitiveRouteDeps } from './blocking.js';
import { heldBody, holderSchema, leaseIdSchema, nameParams } from './primitive-schemas.js';

const handleSchema = {
  type: 'object',
  properties: {
    name: { type: 'string' },
    key: { type: 'string' },
    token: { type: 'integer' },
    lease: { type: 'string' },
  },
} as const;

function lockDelay(value: string | number | undefined): number {
  if (value === undefined) return 0;
  return parseDurationWithin(value, 'lock delay', { aboveZero: false, maxMs: MAX_LOCK_DELAY_MS, max: '1h' });
}

/** Fenced locks: acquire (blocking), release, status. */
export const lockRoutes: FastifyPluginAsync<PrimitiveRouteDeps> = async (app, deps) => {
  const { backend } = deps;
  app.post<{
    Params: { name: string };
    Body: { lease: string; timeout?: string | number; lockDelay?: string | number };
  }>(
    '/v1/locks/:name/acquire',
    {
      schema: {
        summary: 'Wait for a lock and take it for a session; returns the fencing token',
        description:
          'lockDelay (seconds or a duration such as "5s", default 0, at most 1h), as in Consul: should this ' +
          "caller's session be lost while it holds the lock (rather than the lock be released), nobody gets the " +
          'lock for this long after a contender first finds it gone. Waiting out such a delay counts toward ' +
          "the caller's timeout.",
        params: nameParams,
        body: {
          type: 'object',
          required: ['lease'],
          additionalProperties: false,
          properties: { lease: leaseIdSchema, timeout: timeoutSchema, lockDelay: timeoutSchema },
        },
        response: { 200: handleSchema },
      },
    },
    async (request, reply) => {
      const lockDelayMs = lockDelay(request.body.lockDelay);
      return blocking(reply, deps, request.body.timeout, `lock ${request.params.name}`, (signal) =>
        acquireLock(backend, request.params.name, request.body.lease, { signal, lockDelayMs, clock: deps.clock }),
      );
    },
  );

  app.post<{ Params: { name: string }; Body: { key: string; token: number } }>(
    '/v1/locks/:name/release',
    {
      schema: {
        summary: 'Release a lock; refused (409 not_holder) unless the token still holds it',
        params: nameParams,
        body: heldBody,
        response: { 200: { type: 'object', properties: { released: { type: 'boolean' } } } },
      },
    },
    async (request) => {
      await releaseLock(backend, { name: request.params.name, key: request.body.key, token: request.body.token });
      return { released: true };
    },
  );

  app.get<{ Params: { name: string } }>(
    '/v1/locks/:name',
    {
      schema: {
        summary: 'Who holds a lock, and how many wait',
        params: nameParams,
        response: {
          200: {
            type: 'object',
            properties: {
              name: { type: 'string' },
              holder: { anyOf: [holderSchema, { type: 'null' }] },
              waiting: { type: 'integer' },
            },
          },
        },
      },
    },
    async (request) => lockStatus(backend, request.params.name),
  );
};
