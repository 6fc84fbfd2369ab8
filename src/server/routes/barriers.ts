import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import Type from 'typebox';
import { WireBarrierReset } from '../../api/wire.js';
import { barrierStatus, enterBarrier, leaveBarrier, resetBarrier } from '../../primitives/barrier.js';
import { layout } from '../../primitives/layout.js';
import { BarrierStatus } from '../../primitives/result-schemas.js';
import { blocking, timeoutSchema } from './blocking.js';
import type { PrimitiveRouteDeps } from './blocking.js';
import { leaseIdSchema, nameParams } from './primitive-schemas.js';
import { access } from '../access.js';

const idSchema = Type.String({ minLength: 1, maxLength: 128 });

/** Counting barriers and double barriers. */
export const barrierRoutes: FastifyPluginAsyncTypebox<PrimitiveRouteDeps> = async (app, deps) => {
  const { backend } = deps;
  app.post(
    '/v1/barriers/:name/enter',
    {
      config: { access: access.primitive('use', { lease: (request) => (request.body as { lease?: string }).lease }) },
      schema: {
        summary:
          'Arrive and wait until `count` participants have arrived (a tripped barrier lets late arrivals through)',
        params: nameParams,
        body: Type.Object(
          {
            count: Type.Integer({ minimum: 1, maximum: 100000 }),
            lease: leaseIdSchema,
            id: Type.Optional(idSchema),
            timeout: Type.Optional(timeoutSchema),
          },
          { additionalProperties: false },
        ),
        response: { 200: BarrierStatus },
      },
    },
    async (request, reply) => {
      const { count, lease, id, timeout } = request.body;
      return blocking(reply, deps, timeout, `barrier ${request.params.name}`, (signal) =>
        enterBarrier(backend, request.params.name, count, id ?? lease, lease, signal),
      );
    },
  );

  app.post(
    '/v1/barriers/:name/leave',
    {
      config: {
        access: access.primitive('use', {
          held: (request) =>
            layout.barrierWaiters((request.params as { name: string }).name) + (request.body as { id?: string }).id,
        }),
      },
      schema: {
        summary: 'Leave a double barrier; returns when every participant has left',
        params: nameParams,
        body: Type.Object({ id: idSchema, timeout: Type.Optional(timeoutSchema) }, { additionalProperties: false }),
        response: { 200: Type.Object({ left: Type.Boolean() }) },
      },
    },
    async (request, reply) => {
      await blocking(reply, deps, request.body.timeout, `barrier ${request.params.name}`, (signal) =>
        leaveBarrier(backend, request.params.name, request.body.id, signal),
      );
      return { left: true };
    },
  );

  app.get(
    '/v1/barriers/:name',
    {
      config: { access: access.primitive('read') },
      schema: { summary: 'Participants and state of a barrier', params: nameParams, response: { 200: BarrierStatus } },
    },
    async (request) => barrierStatus(backend, request.params.name),
  );

  app.delete(
    '/v1/barriers/:name',
    {
      config: { access: access.primitive('use') },
      schema: {
        summary: 'Reset a barrier: close it and forget its participants',
        params: nameParams,
        response: { 200: WireBarrierReset },
      },
    },
    async (request) => ({ reset: true, deleted: await resetBarrier(backend, request.params.name) }),
  );
};
