import type { FastifyPluginAsync } from 'fastify';
import { barrierStatus, enterBarrier, leaveBarrier, resetBarrier } from '../../primitives/barrier.js';
import { blocking, timeoutSchema } from './blocking.js';
import type { PrimitiveRouteDeps } from './blocking.js';
import { leaseIdSchema, nameParams } from './primitive-schemas.js';

const idSchema = { type: 'string', minLength: 1, maxLength: 128 } as const;
const statusSchema = {
  type: 'object',
  properties: {
    name: { type: 'string' },
    count: { type: ['integer', 'null'] },
    arrived: { type: 'integer' },
    ready: { type: 'boolean' },
  },
} as const;

/** Counting barriers and double barriers. */
export const barrierRoutes: FastifyPluginAsync<PrimitiveRouteDeps> = async (app, deps) => {
  const { backend } = deps;
  app.post<{
    Params: { name: string };
    Body: { count: number; lease: string; id?: string; timeout?: string | number };
  }>(
    '/v1/barriers/:name/enter',
    {
      schema: {
        summary:
          'Arrive and wait until `count` participants have arrived (a tripped barrier lets late arrivals through)',
        params: nameParams,
        body: {
          type: 'object',
          required: ['count', 'lease'],
          additionalProperties: false,
          properties: {
            count: { type: 'integer', minimum: 1, maximum: 100000 },
            lease: leaseIdSchema,
            id: idSchema,
            timeout: timeoutSchema,
          },
        },
        response: { 200: statusSchema },
      },
    },
    async (request, reply) => {
      const { count, lease, id, timeout } = request.body;
      return blocking(reply, deps, timeout, `barrier ${request.params.name}`, (signal) =>
        enterBarrier(backend, request.params.name, count, id ?? lease, lease, signal),
      );
    },
  );

  app.post<{ Params: { name: string }; Body: { id: string; timeout?: string | number } }>(
    '/v1/barriers/:name/leave',
    {
      schema: {
        summary: 'Leave a double barrier; returns when every participant has left',
        params: nameParams,
        body: {
          type: 'object',
          required: ['id'],
          additionalProperties: false,
          properties: { id: idSchema, timeout: timeoutSchema },
        },
        response: { 200: { type: 'object', properties: { left: { type: 'boolean' } } } },
      },
    },
    async (request, reply) => {
      await blocking(reply, deps, request.body.timeout, `barrier ${request.params.name}`, (signal) =>
        leaveBarrier(backend, request.params.name, request.body.id, signal),
      );
      return { left: true };
    },
  );

  app.get<{ Params: { name: string } }>(
    '/v1/barriers/:name',
    { schema: { summary: 'Participants and state of a barrier', params: nameParams, response: { 200: statusSchema } } },
    async (request) => barrierStatus(backend, request.params.name),
  );

  app.delete<{ Params: { name: string } }>(
    '/v1/barriers/:name',
    {
      schema: {
        summary: 'Reset a barrier: close it and forget its participants',
        params: nameParams,
        response: { 200: { type: 'object', properties: { reset: { type: 'boolean' }, deleted: { type: 'integer' } } } },
      },
    },
    async (request) => ({ reset: true, deleted: await resetBarrier(backend, request.params.name) }),
  );
};
