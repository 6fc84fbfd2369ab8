import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import Type from 'typebox';
import { WireWaitAnswer } from '../../api/wire.js';
import { toWireKeyValue } from '../../api/values.js';
import { InvalidArgumentError } from '../../core/errors.js';
import { validateKey } from '../../core/key-path.js';
import { matchesCondition, waitFor } from '../../primitives/wait.js';
import type { WaitCondition } from '../../primitives/wait.js';
import { blocking, timeoutSchema } from './blocking.js';
import type { PrimitiveRouteDeps } from './blocking.js';
import { access } from '../access.js';

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
export const waitRoutes: FastifyPluginAsyncTypebox<PrimitiveRouteDeps> = async (app, deps) => {
  const { backend } = deps;
  app.get(
    '/v1/wait/*',
    {
      config: {
        access: access.key('read', (request) => ({
          key: '/' + (request.params as { '*': string })['*'],
          prefix: false,
        })),
      },
      schema: {
        summary: 'Wait until the key exists, is deleted, equals a value or matches a pattern; 408 `timeout` otherwise',
        params: Type.Object({ '*': Type.String() }),
        querystring: Type.Object(
          {
            exists: Type.Optional(Type.Boolean()),
            deleted: Type.Optional(Type.Boolean()),
            equals: Type.Optional(Type.String({ maxLength: 65536 })),
            matches: Type.Optional(Type.String({ maxLength: 256 })),
            timeout: Type.Optional(timeoutSchema),
          },
          { additionalProperties: false },
        ),
        response: { 200: WireWaitAnswer },
      },
    },
    async (request, reply) => {
      const key = validateKey('/' + request.params['*']);
      const condition = conditionOf(request.query);
      const outcome = await blocking(reply, deps, request.query.timeout, `wait on ${key}`, (signal) =>
        waitFor(backend, key, condition, signal),
      );
      return {
        key,
        satisfied: true as const,
        revision: outcome.revision,
        kv: outcome.kv ? toWireKeyValue(outcome.kv) : null,
      };
    },
  );
};
