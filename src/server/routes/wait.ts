import type { FastifyPluginAsync } from 'fastify';
import { toWireKeyValue } from '../../api/wire.js';
import { InvalidArgumentError } from '../../core/errors.js';
import { validateKey } from '../../core/key-path.js';
import { matchesCondition, waitFor } from '../../primitives/wait.js';
import type { WaitCondition } from '../../primitives/wait.js';
import { blocking, timeoutSchema } from './blocking.js';
import type { PrimitiveRouteDeps } from './blocking.js';

interface WaitQuery {
  exists?: boolean;
  deleted?: boolean;
  equals?: string;
  matches?: string;
  timeout?: string | number;
}

function conditionOf(query: WaitQuery): WaitCondition {
  const given = (['exists', 'deleted', 'equals', 'matches'] as const).filter(
    (c) => query[c] !== undefined && query[c] !== false,
  );
  if (given.length !== 1) {
    throw new InvalidArgumentError(
      `give exactly one condition of exists=true, deleted=true, equals=VALUE, matches=REGEX (got ${given.length === 0 ? 'none' : given.join(', ')})`,
      'invalid_request',
    );
  }
  if (query.equals !== undefined) return { kind: 'equals', value: query.equals };
  if (query.matches !== undefined) return matchesCondition(query.matches);
  return query.deleted ? { kind: 'deleted' } : { kind: 'exists' };
}

/** Block until a key satisfies a condition (Noah's noah_block). */
export const waitRoutes: FastifyPluginAsync<PrimitiveRouteDeps> = async (app, deps) => {
  const { backend } = deps;
  app.get<{ Params: { '*': string }; Querystring: WaitQuery }>(
    '/v1/wait/*',
    {
      schema: {
        summary: 'Wait until the key exists, is deleted, equals a value or matches a pattern; 408 `timeout` otherwise',
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: {
            exists: { type: 'boolean' },
            deleted: { type: 'boolean' },
            equals: { type: 'string', maxLength: 65536 },
            matches: { type: 'string', maxLength: 256 },
            timeout: timeoutSchema,
          },
        },
      },
    },
    async (request, reply) => {
      const key = validateKey('/' + request.params['*']);
      const condition = conditionOf(request.query);
      const outcome = await blocking(reply, deps, request.query.timeout, `wait on ${key}`, (signal) =>
        waitFor(backend, key, condition, signal),
      );
      return { key, satisfied: true, revision: outcome.revision, kv: outcome.kv ? toWireKeyValue(outcome.kv) : null };
    },
  );
};
