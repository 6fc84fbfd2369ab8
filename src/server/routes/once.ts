import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import Type from 'typebox';
import { ONCE_OUTPUT_LIMIT, beginOnce, completeOnce, onceStatus, resetOnce } from '../../primitives/once.js';
import { WireOnceCompleted, WireOnceReset } from '../../api/wire.js';
import { OnceStatus, OnceTurn } from '../../primitives/result-schemas.js';
import { blocking, timeoutSchema } from './blocking.js';
import type { PrimitiveRouteDeps } from './blocking.js';
import { holderKeySchema, leaseIdSchema, nameParams, tokenSchema } from './primitive-schemas.js';
import { access } from '../access.js';

/** Run-exactly-once: begin (blocking), complete, status, reset. */
export const onceRoutes: FastifyPluginAsyncTypebox<PrimitiveRouteDeps> = async (app, deps) => {
  const { backend, clock } = deps;
  app.post(
    '/v1/once/:name/begin',
    {
      config: { access: access.primitive('use', { lease: (request) => (request.body as { lease?: string }).lease }) },
      schema: {
        summary:
          'Join a once: `role: runner` means run the command now and complete; `role: done` carries the recorded result',
        params: nameParams,
        body: Type.Object(
          { lease: leaseIdSchema, timeout: Type.Optional(timeoutSchema) },
          { additionalProperties: false },
        ),
        response: { 200: OnceTurn },
      },
    },
    async (request, reply) =>
      blocking(reply, deps, request.body.timeout, `once ${request.params.name}`, (signal) =>
        beginOnce(backend, request.params.name, request.body.lease, clock, signal),
      ),
  );

  app.post(
    '/v1/once/:name/complete',
    {
      config: { access: access.primitive('use', { held: (request) => (request.body as { key?: string }).key }) },
      schema: {
        summary: "Record the runner's result (refused with 409 not_holder if its session ended first)",
        params: nameParams,
        body: Type.Object(
          {
            key: holderKeySchema,
            token: tokenSchema,
            startedAt: Type.Optional(Type.String({ maxLength: 64 })),
            exitCode: Type.Integer({ minimum: 0, maximum: 255 }),
            // Longer output is accepted and cut to its tail.
            output: Type.Optional(Type.String({ maxLength: ONCE_OUTPUT_LIMIT * 4 })),
            runner: Type.Optional(Type.String({ maxLength: 256 })),
          },
          { additionalProperties: false },
        ),
        response: { 200: WireOnceCompleted },
      },
    },
    async (request) => {
      const { key, token, startedAt, exitCode, output, runner } = request.body;
      const result = await completeOnce(
        backend,
        request.params.name,
        { key, token, ...(startedAt ? { startedAt } : {}) },
        { exitCode, output: output ?? '', runner: runner ?? request.ip },
        clock,
      );
      return { result };
    },
  );

  app.get(
    '/v1/once/:name',
    {
      config: { access: access.primitive('read') },
      schema: {
        summary: 'State of a once: idle, running or done, with its result',
        params: nameParams,
        response: { 200: OnceStatus },
      },
    },
    async (request) => onceStatus(backend, request.params.name),
  );

  app.delete(
    '/v1/once/:name',
    {
      config: { access: access.primitive('use') },
      schema: {
        summary: 'Forget the recorded result so that the next caller runs the command again',
        params: nameParams,
        response: { 200: WireOnceReset },
      },
    },
    async (request) => ({ reset: await resetOnce(backend, request.params.name) }),
  );
};
