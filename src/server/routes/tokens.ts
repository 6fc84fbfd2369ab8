import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import Type from 'typebox';
import { parseDuration } from '../../core/duration.js';
import { InvalidArgumentError } from '../../core/errors.js';
import { CustomPolicy, ROLES } from '../../security/policy.js';
import { TOKEN_ID_PATTERN } from '../../security/token-secret.js';
import { TokenInfo } from '../../security/token-registry.js';
import type { TokenRegistry } from '../../security/token-registry.js';
import { access } from '../access.js';
import { WireDuration, WireWhoAmI } from '../../api/wire.js';

/** A token lives at most ten years; `--ttl` takes seconds or a duration such as 30d. */
const MAX_TOKEN_TTL_SECONDS = 10 * 365 * 86_400;

const idParams = Type.Object(
  { id: Type.String({ pattern: TOKEN_ID_PATTERN.source }) },
  { additionalProperties: false },
);

function ttlSeconds(ttl: string | number | undefined): number | undefined {
  if (ttl === undefined) return undefined;
  const seconds = Math.ceil(parseDuration(ttl, 'ttl') / 1000);
  if (seconds < 1 || seconds > MAX_TOKEN_TTL_SECONDS) {
    throw new InvalidArgumentError(`a token ttl must be from 1s to 3650d, got ${JSON.stringify(ttl)}`, 'invalid_ttl');
  }
  return seconds;
}

/** Tokens: create (the secret is shown once), list, show, revoke; and who am I. */
export const tokenRoutes: FastifyPluginAsyncTypebox<{ tokens: TokenRegistry | null }> = async (app, { tokens }) => {
  const registry = (): TokenRegistry => {
    if (tokens === null) {
      throw new InvalidArgumentError('this server runs with --insecure-no-auth: it has no tokens', 'invalid_request');
    }
    return tokens;
  };

  app.post(
    '/v1/tokens',
    {
      config: { access: access.capability('tokens:manage') },
      schema: {
        summary: 'Create a token; the answer carries its secret, shown this once (only a hash is stored)',
        body: Type.Object(
          {
            role: Type.Enum([...ROLES]),
            description: Type.Optional(Type.String({ maxLength: 256 })),
            node: Type.Optional(Type.String({ maxLength: 128 })),
            cluster: Type.Optional(Type.String({ maxLength: 128 })),
            policy: Type.Optional(CustomPolicy),
            ttl: Type.Optional(WireDuration),
            uses: Type.Optional(Type.Integer({ minimum: 1, maximum: 1_000_000 })),
          },
          { additionalProperties: false },
        ),
        response: { 200: Type.Object({ token: Type.String(), info: TokenInfo }) },
      },
    },
    async (request) => {
      const { role, description, node, cluster, policy, ttl, uses } = request.body;
      const created = await registry().create({
        role,
        description,
        node,
        cluster,
        policy,
        uses,
        ttlSeconds: ttlSeconds(ttl),
      });
      request.auditTarget = created.info.id;
      return created;
    },
  );

  app.get(
    '/v1/tokens',
    {
      config: { access: access.capability('tokens:manage') },
      schema: {
        summary: 'Every token (never a secret)',
        response: { 200: Type.Object({ tokens: Type.Array(TokenInfo) }) },
      },
    },
    async () => ({ tokens: await registry().list() }),
  );

  app.get(
    '/v1/tokens/:id',
    {
      config: { access: access.capability('tokens:manage') },
      schema: { summary: 'One token (never its secret)', params: idParams, response: { 200: TokenInfo } },
    },
    async (request) => registry().get(request.params.id),
  );

  app.delete(
    '/v1/tokens/:id',
    {
      config: { access: access.capability('tokens:manage') },
      schema: {
        summary: 'Revoke a token: every server refuses it from now on',
        params: idParams,
        response: { 200: Type.Object({ revoked: Type.Boolean(), id: Type.String() }) },
      },
    },
    async (request) => {
      await registry().revoke(request.params.id);
      return { revoked: true, id: request.params.id };
    },
  );

  app.post(
    '/v1/enrol',
    {
      config: { access: access.enrol },
      schema: {
        summary: "Spend one use of the request's enrolment token on a node token for `node` (shown once)",
        body: Type.Object(
          {
            node: Type.String({ minLength: 1, maxLength: 128 }),
            description: Type.Optional(Type.String({ maxLength: 256 })),
          },
          { additionalProperties: false },
        ),
        response: { 200: Type.Object({ token: Type.String(), info: TokenInfo }) },
      },
    },
    async (request) => {
      const { node, description } = request.body;
      // An admin may enrol a node directly; an enrol token spends one of its uses.
      if (request.principal.role !== 'enrol') return registry().create({ role: 'node', node, description });
      return registry().enrol(request.principal.tokenId, node, description);
    },
  );

  app.get(
    '/v1/auth/whoami',
    {
      config: { access: access.keys(() => []) },
      schema: { summary: 'The token this request carries: its id and role', response: { 200: WireWhoAmI } },
    },
    async (request) => ({
      auth: tokens !== null,
      tokenId: request.principal.tokenId,
      role: request.principal.role,
      policy: request.principal.policy.describe(),
    }),
  );
};
