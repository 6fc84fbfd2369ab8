import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import Type from 'typebox';
import { ForbiddenError } from '../../core/errors.js';
import { HookDelivery, HookRequest, HookView } from '../../hooks/hook-model.js';
import type { HookStore } from '../../hooks/hook-store.js';
import '../../hooks/formats.js';
import { validatePrefix } from '../../core/key-path.js';
import { access } from '../access.js';

const nameParams = Type.Object({ name: Type.String({ maxLength: 256 }) }, { additionalProperties: false });
const manage = { access: access.capability('hooks:manage') };

/** Webhooks (docs/hooks.md): changes under a prefix POSTed to a URL, durably. Every route needs hooks:manage. */
export const hookRoutes: FastifyPluginAsyncTypebox<{ store: HookStore }> = async (app, { store }) => {
  app.post(
    '/v1/hooks',
    {
      config: manage,
      schema: {
        summary: 'Add a webhook: every change under `prefix` from now on is POSTed to `url`, in order, at least once',
        body: HookRequest,
        response: { 201: HookView },
      },
    },
    async (request, reply) => {
      const { policy } = request.principal;
      validatePrefix(request.body.prefix);
      // A hook delivers what is under its prefix: its creator must be able to read all of it.
      const decision = policy.prefix(request.body.prefix, 'read');
      if (!decision.allowed || decision.narrower.length > 0) {
        throw new ForbiddenError(
          `${policy.describe()} may not read everything under ${request.body.prefix}, so may not hook it`,
          decision.narrower[0] ? `${decision.narrower[0].access} ${decision.narrower[0].prefix}` : decision.rule,
        );
      }
      return reply.status(201).send(await store.add(request.body, request.principal.tokenId));
    },
  );
  app.get(
    '/v1/hooks',
    {
      config: manage,
      schema: { summary: 'Every webhook', response: { 200: Type.Object({ hooks: Type.Array(HookView) }) } },
    },
    async () => ({ hooks: await store.list() }),
  );
  app.get(
    '/v1/hooks/:name',
    {
      config: manage,
      schema: { summary: 'A webhook: its status, cursor, failures', params: nameParams, response: { 200: HookView } },
    },
    async (request) => store.get(request.params.name),
  );
  app.get(
    '/v1/hooks/:name/deliveries',
    {
      config: manage,
      schema: {
        summary: "A webhook's last 100 delivery attempts, oldest first",
        params: nameParams,
        response: { 200: Type.Object({ deliveries: Type.Array(HookDelivery) }) },
      },
    },
    async (request) => ({ deliveries: await store.deliveries(request.params.name) }),
  );
  app.post(
    '/v1/hooks/:name/pause',
    { config: manage, schema: { summary: 'Pause a webhook', params: nameParams, response: { 200: HookView } } },
    async (request) => store.pause(request.params.name),
  );
  app.post(
    '/v1/hooks/:name/resume',
    {
      config: manage,
      schema: {
        summary: 'Resume a paused webhook: delivery restarts from its cursor',
        params: nameParams,
        response: { 200: HookView },
      },
    },
    async (request) => store.resume(request.params.name),
  );
  app.delete(
    '/v1/hooks/:name',
    {
      config: manage,
      schema: {
        summary: 'Remove a webhook',
        params: nameParams,
        response: { 200: Type.Object({ removed: Type.Boolean() }) },
      },
    },
    async (request) => {
      await store.remove(request.params.name);
      return { removed: true };
    },
  );
};
