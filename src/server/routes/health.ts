import type { FastifyPluginAsync } from 'fastify';
import type { Backend } from '../../core/backend.js';
import { BackendUnavailableError } from '../../core/errors.js';

/** `GET /healthz`: 200 once the store answers, 503 `unavailable` when it does not. */
export const healthRoutes: FastifyPluginAsync<{ backend: Backend }> = async (app, { backend }) => {
  app.get(
    '/healthz',
    {
      schema: {
        summary: 'Liveness and readiness: 200 when the store answers',
        response: {
          200: {
            type: 'object',
            properties: { status: { type: 'string' }, backend: { type: 'string' }, revision: { type: 'integer' } },
          },
        },
      },
    },
    async () => {
      try {
        return { status: 'ok', backend: backend.kind, revision: await backend.revision() };
      } catch (error) {
        throw new BackendUnavailableError(`the ${backend.kind} store does not answer: ${(error as Error).message}`, {
          cause: error,
        });
      }
    },
  );
};
