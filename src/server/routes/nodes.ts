import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import Type from 'typebox';
import { NodeInfo, NodeRegistration } from '../../api/agent-protocol.js';
import type { Backend } from '../../core/backend.js';
import type { Clock } from '../../core/clock.js';
import { MAX_QUERY_LENGTH } from '../../nodes/query.js';
import { NODES_PREFIX, getNode, listNodes, registerNode, removeNode } from '../../nodes/registry.js';
import { access } from '../access.js';

const nodeParams = Type.Object(
  { node: Type.String({ minLength: 1, maxLength: 128 }) },
  { additionalProperties: false },
);
const nodeOf = (request: { params: unknown }): string => (request.params as { node?: string }).node ?? '';

/** The node registry (src/nodes/registry.ts): register, list (with a query), show, remove. */
export const nodeRoutes: FastifyPluginAsyncTypebox<{ backend: Backend; clock: Clock }> = async (
  app,
  { backend, clock },
) => {
  app.put(
    '/v1/nodes/:node',
    {
      config: {
        access: access.node('register', nodeOf, (request) => (request.body as { lease?: string } | undefined)?.lease),
      },
      schema: {
        summary:
          'Register a node (again after every reconnect): it is up while `lease` lives. A node token registers only its own name',
        params: nodeParams,
        body: NodeRegistration,
        response: { 200: NodeInfo },
      },
    },
    async (request) => registerNode(backend, clock, request.params.node, request.body),
  );

  app.get(
    '/v1/nodes',
    {
      config: { access: access.key('read', () => ({ key: NODES_PREFIX, prefix: true })) },
      schema: {
        summary: 'Registered nodes with their status, optionally those matching a query (docs/queries.md)',
        querystring: Type.Object(
          { query: Type.Optional(Type.String({ maxLength: MAX_QUERY_LENGTH })) },
          { additionalProperties: false },
        ),
        response: { 200: Type.Object({ nodes: Type.Array(NodeInfo) }) },
      },
    },
    async (request) => ({ nodes: await listNodes(backend, clock, request.query.query ?? '') }),
  );

  app.get(
    '/v1/nodes/:node',
    {
      config: { access: access.node('read', nodeOf) },
      schema: { summary: 'One node', params: nodeParams, response: { 200: NodeInfo } },
    },
    async (request) => getNode(backend, clock, request.params.node),
  );

  app.delete(
    '/v1/nodes/:node',
    {
      config: { access: access.node('remove', nodeOf) },
      schema: {
        summary: 'Forget a node (an operator); a running agent registers it again when it reconnects',
        params: nodeParams,
        response: { 200: Type.Object({ removed: Type.Boolean() }) },
      },
    },
    async (request) => {
      await removeNode(backend, request.params.node);
      return { removed: true };
    },
  );
};
