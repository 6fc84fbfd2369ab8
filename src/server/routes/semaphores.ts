import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import Type from 'typebox';
import { SemaphoreHandle, SemaphoreStatus } from '../../primitives/result-schemas.js';
import { acquireSemaphore, releaseSemaphore, semaphoreStatus } from '../../primitives/semaphore.js';
import { blocking, timeoutSchema } from './blocking.js';
import type { PrimitiveRouteDeps } from './blocking.js';
import { heldBody, leaseIdSchema, nameParams } from './primitive-schemas.js';
import { access } from '../access.js';

/** Counting semaphores: at most `limit` holders. */
export const semaphoreRoutes: FastifyPluginAsyncTypebox<PrimitiveRouteDeps> = async (app, deps) => {
  const { backend } = deps;
  app.post(
    '/v1/semaphores/:name/acquire',
    {
      config: { access: access.primitive('use', { lease: (request) => (request.body as { lease?: string }).lease }) },
      schema: {
        summary: 'Wait for one of `limit` slots; every contender must give the same limit',
        params: nameParams,
        body: Type.Object(
          {
            lease: leaseIdSchema,
            limit: Type.Integer({ minimum: 1, maximum: 10000 }),
            timeout: Type.Optional(timeoutSchema),
          },
          { additionalProperties: false },
        ),
        response: { 200: SemaphoreHandle },
      },
    },
    async (request, reply) =>
      blocking(reply, deps, request.body.timeout, `semaphore ${request.params.name}`, (signal) =>
        acquireSemaphore(backend, request.params.name, request.body.limit, request.body.lease, signal),
      ),
  );

  app.post(
    '/v1/semaphores/:name/release',
    {
      config: { access: access.primitive('use', { held: (request) => (request.body as { key?: string }).key }) },
      schema: {
        summary: 'Give a slot back',
        params: nameParams,
        body: heldBody,
        response: { 200: Type.Object({ released: Type.Boolean() }) },
      },
    },
    async (request) => {
      await releaseSemaphore(backend, { name: request.params.name, key: request.body.key, token: request.body.token });
      return { released: true };
    },
  );

  app.get(
    '/v1/semaphores/:name',
    {
      config: { access: access.primitive('read') },
      schema: { summary: 'Holders and waiters of a semaphore', params: nameParams, response: { 200: SemaphoreStatus } },
    },
    async (request) => semaphoreStatus(backend, request.params.name),
  );
};
