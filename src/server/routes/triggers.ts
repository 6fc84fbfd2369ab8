import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import Type from 'typebox';
import { ForbiddenError } from '../../core/errors.js';
import { TriggerRecord, TriggerRequest } from '../../jobs/trigger-model.js';
import type { TriggerStore } from '../../jobs/trigger-store.js';
import { checkQuery } from '../../jobs/registry-directory.js';
import type { Principal } from '../../security/token-registry.js';
import { access } from '../access.js';

const nameParams = Type.Object({ name: Type.String({ maxLength: 256 }) }, { additionalProperties: false });

/** Triggers are read by those who may read jobs (not node tokens). */
function mayRead(who: Principal): void {
  if (who.policy.canRead('/muster/triggers/x') || who.policy.capability('jobs:run').allowed) return;
  throw new ForbiddenError(`${who.policy.describe()} may not read triggers`, 'triggers read');
}

/** Triggers (docs/jobs.md): a change under a prefix starts a job. */
export const triggerRoutes: FastifyPluginAsyncTypebox<{ store: TriggerStore }> = async (app, { store }) => {
  app.post(
    '/v1/triggers',
    {
      config: { access: access.capability('jobs:run') },
      schema: {
        summary: 'Add (or replace) a trigger: a change under `on` starts the job, debounced',
        body: TriggerRequest,
        response: { 201: TriggerRecord },
      },
    },
    async (request, reply) => {
      checkQuery(request.body.job.query);
      return reply.status(201).send(await store.put(request.body, request.principal.tokenId));
    },
  );
  app.get(
    '/v1/triggers',
    {
      config: { access: access.keys(() => []) },
      schema: { summary: 'Every trigger', response: { 200: Type.Object({ triggers: Type.Array(TriggerRecord) }) } },
    },
    async (request) => {
      mayRead(request.principal);
      return { triggers: await store.list() };
    },
  );
  app.get(
    '/v1/triggers/:name',
    {
      config: { access: access.keys(() => []) },
      schema: { summary: 'A trigger and the jobs it started', params: nameParams, response: { 200: TriggerRecord } },
    },
    async (request) => {
      mayRead(request.principal);
      return store.get(request.params.name);
    },
  );
  app.delete(
    '/v1/triggers/:name',
    {
      config: { access: access.capability('jobs:run') },
      schema: {
        summary: 'Remove a trigger (jobs it started go on)',
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
