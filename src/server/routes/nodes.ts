/**
 * The node registry (issue 10): `PUT /v1/nodes/<name>` (an agent registers its
 * node, bound to its session lease), `GET /v1/nodes?query=`, `GET /v1/nodes/<name>`,
 * `DELETE /v1/nodes/<name>`. A node token acts for its own node only: registering
 * writes under `/nodes/<name>/` in the policy's terms, which a node token may do
 * for its own name and nowhere else; it sees only itself in the lists.
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import Type from 'typebox';
import { NodeInfo, NodeListItem, NodeRegistration } from '../../api/agent-protocol.js';
import type { Backend } from '../../core/backend.js';
import type { Clock } from '../../core/clock.js';
import { NodeNotFoundError, NodeRegistry } from '../../nodes/registry.js';
import type { Principal } from '../../security/token-registry.js';
import { access } from '../access.js';

const nodeName = Type.String({ minLength: 1, maxLength: 128, pattern: '^[A-Za-z0-9][A-Za-z0-9._-]*$' });
const nameParams = Type.Object({ node: nodeName }, { additionalProperties: false });

/** The node a node token speaks for, or null for any other token. */
function ownNode(who: Principal): string | null {
  return who.role === 'node' ? (who.policy.spec.node ?? '') : null;
}

export const nodeRoutes: FastifyPluginAsyncTypebox<{ backend: Backend; clock: Clock }> = async (
  app,
  { backend, clock },
) => {
  const registry = new NodeRegistry(backend, clock);

  app.put(
    '/v1/nodes/:node',
    {
      config: {
        // Writing the node means writing under /nodes/<name>/: a node token for its own name,
        // operators and admins for any; the lease must be the caller's own.
        access: access.key('write', (request) => ({
          key: `/nodes/${(request.params as { node: string }).node}/`,
          prefix: true,
          lease: (request.body as { lease?: string } | undefined)?.lease ?? null,
        })),
      },
      schema: {
        summary:
          'Register a node (its agent does, at every connect): tags, attributes, facts, and the session lease it is up with',
        params: nameParams,
        body: NodeRegistration,
        response: { 200: NodeInfo },
      },
    },
    async (request) => registry.register(request.params.node, request.body),
  );

  app.get(
    '/v1/nodes',
    {
      config: { access: access.keys(() => []) },
      schema: {
        summary:
          'The registered nodes, or those a query matches (docs/queries.md), with their status; facts=false answers summaries without facts or registeredAt (a list of thousands); a node token sees itself only',
        querystring: Type.Object(
          {
            query: Type.Optional(Type.String({ minLength: 1, maxLength: 4096 })),
            facts: Type.Optional(Type.Boolean()),
          },
          { additionalProperties: false },
        ),
        response: { 200: Type.Object({ nodes: Type.Array(NodeListItem) }) },
      },
    },
    async (request, reply) => {
      const nodes: NodeListItem[] =
        request.query.facts === false
          ? await registry.list(request.query.query, { facts: false })
          : await registry.list(request.query.query);
      const own = ownNode(request.principal);
      // JSON.stringify, not the schema's serializer: the registry builds every field
      // itself, and at 10,000 nodes the generated serializer took 20-50 times longer.
      return reply
        .type('application/json; charset=utf-8')
        .serializer(JSON.stringify)
        .send({ nodes: own === null ? nodes : nodes.filter((n) => n.name === own) });
    },
  );

  app.get(
    '/v1/nodes/:node',
    {
      config: { access: access.keys(() => []) },
      schema: {
        summary: 'One node: status, last seen, tags, attributes, facts',
        params: nameParams,
        response: { 200: NodeInfo },
      },
    },
    async (request) => {
      const own = ownNode(request.principal);
      // Another node's token learns nothing of this one, not even that it exists.
      if (own !== null && own !== request.params.node) throw new NodeNotFoundError(request.params.node);
      return registry.get(request.params.node);
    },
  );

  app.delete(
    '/v1/nodes/:node',
    {
      config: { access: access.capability('jobs:run') },
      schema: {
        summary: 'Forget a node (a running agent registers it again)',
        params: nameParams,
        response: { 200: Type.Object({ removed: Type.Boolean() }) },
      },
    },
    async (request) => ({ removed: await registry.remove(request.params.node) }),
  );
};
