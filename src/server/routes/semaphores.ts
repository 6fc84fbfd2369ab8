import type { FastifyPluginAsync } from 'fastify';
import { acquireSemaphore, releaseSemaphore, semaphoreStatus } from '../../primitives/semaphore.js';
import { blocking, timeoutSchema } from './blocking.js';
import type { PrimitiveRouteDeps } from './blocking.js';
import { heldBody, holderSchema, leaseIdSchema, nameParams } from './primitive-schemas.js';

/** Counting semaphores: at most `limit` holders. */
export const semaphoreRoutes: FastifyPluginAsync<PrimitiveRouteDeps> = async (app, deps) => {
  const { backend } = deps;
  app.post<{ Params: { name: string }; Body: { lease: string; limit: number; timeout?: string | number } }>(
    '/v1/semaphores/:name/acquire',
    {
      schema: {
        summary: 'Wait for one of `limit` slots; every contender must give the same limit',
        params: nameParams,
        body: {
          type: 'object',
          required: ['lease', 'limit'],
          additionalProperties: false,
          properties: {
            lease: leaseIdSchema,
            limit: { type: 'integer', minimum: 1, maximum: 10000 },
            timeout: timeoutSchema,
          },
        },
        response: {
          200: {
            type: 'object',
            properties: {
              name: { type: 'string' },
              key: { type: 'string' },
              token: { type: 'integer' },
              lease: { type: 'string' },
              limit: { type: 'integer' },
            },
          },
        },
      },
    },
    async (request, reply) =>
      blocking(reply, deps, request.body.timeout, `semaphore ${request.params.name}`, (signal) =>
        acquireSemaphore(backend, request.params.name, request.body.limit, request.body.lease, signal),
      ),
  );

  app.post<{ Params: { name: string }; Body: { key: string; token: number } }>(
    '/v1/semaphores/:name/release',
    {
      schema: {
        summary: 'Give a slot back',
        params: nameParams,
        body: heldBody,
        response: { 200: { type: 'object', properties: { released: { type: 'boolean' } } } },
      },
    },
    async (request) => {
      await releaseSemaphore(backend, { name: request.params.name, key: request.body.key, token: request.body.token });
      return { released: true };
    },
  );

  app.get<{ Params: { name: string } }>(
    '/v1/semaphores/:name',
    {
      schema: {
        summary: 'Holders and waiters of a semaphore',
        params: nameParams,
        response: {
          200: {
            type: 'object',
            properties: {
              name: { type: 'string' },
              limit: { type: ['integer', 'null'] },
              holders: { type: 'array', items: holderSchema },
              waiting: { type: 'integer' },
            },
          },
        },
      },
    },
    async (request) => semaphoreStatus(backend, request.params.name),
  );
};
