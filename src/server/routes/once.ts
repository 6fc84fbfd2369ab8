import type { FastifyPluginAsync } from 'fastify';
import { ONCE_OUTPUT_LIMIT, beginOnce, completeOnce, onceStatus, resetOnce } from '../../primitives/once.js';
import { blocking, timeoutSchema } from './blocking.js';
import type { PrimitiveRouteDeps } from './blocking.js';
import { holderKeySchema, leaseIdSchema, nameParams, tokenSchema } from './primitive-schemas.js';

const resultSchema = {
  type: 'object',
  properties: {
    exitCode: { type: 'integer' },
    output: { type: 'string' },
    runner: { type: 'string' },
    token: { type: 'integer' },
    startedAt: { type: 'string' },
    finishedAt: { type: 'string' },
  },
} as const;

/** Run-exactly-once: begin (blocking), complete, status, reset. */
export const onceRoutes: FastifyPluginAsync<PrimitiveRouteDeps> = async (app, deps) => {
  const { backend, clock } = deps;
  app.post<{ Params: { name: string }; Body: { lease: string; timeout?: string | number } }>(
    '/v1/once/:name/begin',
    {
      schema: {
        summary:
          'Join a once: `role: runner` means run the command now and complete; `role: done` carries the recorded result',
        params: nameParams,
        body: {
          type: 'object',
          required: ['lease'],
          additionalProperties: false,
          properties: { lease: leaseIdSchema, timeout: timeoutSchema },
        },
        response: {
          200: {
            type: 'object',
            properties: {
              role: { type: 'string', enum: ['runner', 'done'] },
              key: { type: 'string' },
              token: { type: 'integer' },
              startedAt: { type: 'string' },
              result: resultSchema,
            },
          },
        },
      },
    },
    async (request, reply) =>
      blocking(reply, deps, request.body.timeout, `once ${request.params.name}`, (signal) =>
        beginOnce(backend, request.params.name, request.body.lease, clock, signal),
      ),
  );

  app.post<{
    Params: { name: string };
    Body: { key: string; token: number; startedAt?: string; exitCode: number; output?: string; runner?: string };
  }>(
    '/v1/once/:name/complete',
    {
      schema: {
        summary: "Record the runner's result (refused with 409 not_holder if its session ended first)",
        params: nameParams,
        body: {
          type: 'object',
          required: ['key', 'token', 'exitCode'],
          additionalProperties: false,
          properties: {
            key: holderKeySchema,
            token: tokenSchema,
            startedAt: { type: 'string', maxLength: 64 },
            exitCode: { type: 'integer', minimum: 0, maximum: 255 },
            // Longer output is accepted and cut to its tail.
            output: { type: 'string', maxLength: ONCE_OUTPUT_LIMIT * 4 },
            runner: { type: 'string', maxLength: 256 },
          },
        },
        response: { 200: { type: 'object', properties: { result: resultSchema } } },
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

  app.get<{ Params: { name: string } }>(
    '/v1/once/:name',
    {
      schema: {
        summary: 'State of a once: idle, running or done, with its result',
        params: nameParams,
        response: {
          200: {
            type: 'object',
            properties: {
              name: { type: 'string' },
              state: { type: 'string' },
              result: { anyOf: [resultSchema, { type: 'null' }] },
              runner: {
                anyOf: [
                  { type: 'object', properties: { key: { type: 'string' }, token: { type: 'integer' } } },
                  { type: 'null' },
                ],
              },
              waiting: { type: 'integer' },
            },
          },
        },
      },
    },
    async (request) => onceStatus(backend, request.params.name),
  );

  app.delete<{ Params: { name: string } }>(
    '/v1/once/:name',
    {
      schema: {
        summary: 'Forget the recorded result so that the next caller runs the command again',
        params: nameParams,
        response: { 200: { type: 'object', properties: { reset: { type: 'boolean' } } } },
      },
    },
    async (request) => ({ reset: await resetOnce(backend, request.params.name) }),
  );
};
