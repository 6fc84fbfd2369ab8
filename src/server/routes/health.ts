import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { WireHealth } from '../../api/wire.js';
import type { Backend } from '../../core/backend.js';
import { BackendUnavailableError } from '../../core/errors.js';
import { access } from '../access.js';

/** `GET /healthz`: 200 once the store answers, 503 `unavailable` when it does not. */
export const healthRoutes: FastifyPluginAsyncTypebox<{ backend: Backend }> = async (app, { backend }) => {
  app.get(
    '/healthz',
    {
      config: { access: access.public },
      schema: {
        summary: 'Liveness and readiness: 200 when the store answers',
        response: { 200: WireHealth },
      },
    },
    async () => {
      try {
        return { status: 'ok' as const, backend: backend.kind, revision: await backend.revision() };
      } catch (error) {
        throw new BackendUnavailableError(`the ${backend.kind} store does not answer: ${(error as Error).message}`, {
          cause: error,
        });
      }
    },
  );
};
