/**
 * Groups, desired and actual state, and plans (issue 11): `/v1/groups`,
 * `/v1/desired`, `/v1/state`, `/v1/plans`. Changing them takes `jobs:run`
 * (operators and admins); a node reports its own state under its own prefix
 * (`/nodes/<node>/state/<group>`), so a node token may report for itself only.
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import Type from 'typebox';
import type { Backend, Watch } from '../../core/backend.js';
import type { Clock } from '../../core/clock.js';
import type { Runtime } from '../../core/runtime.js';
import { CompactedError, ForbiddenError } from '../../core/errors.js';
import { validateName } from '../../core/key-path.js';
import type { NodeDirectory } from '../../jobs/node-directory.js';
import { FleetState } from '../../plans/fleet-state.js';
import {
  ActualState,
  Desired,
  DesiredSpec,
  FINAL_PLAN_STATES,
  Group,
  GroupStatus,
  PlanPreview,
  PlanRecord,
  DesiredValue,
  decodeJson,
  effectiveDesired,
  planKeys,
} from '../../plans/plan-model.js';
import type { PlanRecord as PlanRecordType } from '../../plans/plan-model.js';
import { PlanStore, validatePlanId } from '../../plans/plan-store.js';
import type { Principal } from '../../security/token-registry.js';
import { access } from '../access.js';
import { openSse, sseError, sseEvent } from '../sse.js';

export interface PlanRouteDeps {
  readonly backend: Backend;
  readonly runtime: Runtime;
  readonly clock: Clock;
  readonly directory: NodeDirectory;
  readonly shutdown?: AbortSignal;
}

const name = Type.String({ minLength: 1, maxLength: 128, pattern: '^[A-Za-z0-9][A-Za-z0-9._-]*$' });
const groupParams = Type.Object({ group: name }, { additionalProperties: false });
const idParams = Type.Object({ id: Type.String({ minLength: 1, maxLength: 64 }) }, { additionalProperties: false });
const orchestrate = access.capability('jobs:run');
/** Any valid token: groups, desired states and plans are not secrets. */
const anyToken = access.keys(() => []);

function mayReadPlans(who: Principal): void {
  if (who.policy.canRead(planKeys.plan('x')) || who.policy.capability('jobs:run').allowed) return;
  throw new ForbiddenError(
    `${who.policy.describe()} may not read plans (no read rule covers /muster/plans/)`,
    'plans read',
  );
}

export const planRoutes: FastifyPluginAsyncTypebox<PlanRouteDeps> = async (app, deps) => {
  const { backend, directory } = deps;
  const fleet = new FleetState(backend, deps.clock, directory);
  const plans = new PlanStore(backend, deps.runtime);

  app.put(
    '/v1/groups/:group',
    {
      config: { access: orchestrate },
      schema: {
        summary: 'Make or change a group: a named node query (docs/queries.md)',
        params: groupParams,
        body: Type.Object({ query: Type.String({ minLength: 1, maxLength: 4096 }) }, { additionalProperties: false }),
        response: { 200: Group },
      },
    },
    async (request) => fleet.putGroup(request.params.group, request.body.query),
  );

  app.get(
    '/v1/groups',
    {
      config: { access: anyToken },
      schema: { summary: 'Every group', response: { 200: Type.Object({ groups: Type.Array(Group) }) } },
    },
    async () => ({ groups: await fleet.listGroups() }),
  );

  app.get(
    '/v1/groups/:group',
    {
      config: { access: anyToken },
      schema: {
        summary: "A group, its desired state, and each of its nodes' reported state",
        params: groupParams,
        response: { 200: GroupStatus },
      },
    },
    async (request) => fleet.status(request.params.group),
  );

  app.delete(
    '/v1/groups/:group',
    {
      config: { access: orchestrate },
      schema: {
        summary: 'Remove a group and its desired state',
        params: groupParams,
        response: { 200: Type.Object({ removed: Type.Boolean() }) },
      },
    },
    async (request) => ({ removed: await fleet.removeGroup(request.params.group) }),
  );

  app.put(
    '/v1/desired/:group',
    {
      config: { access: orchestrate },
      schema: {
        summary: "Set a group's desired state (the one before is kept: a rollback restores it)",
        params: groupParams,
        body: DesiredSpec,
        response: { 200: Desired },
      },
    },
    async (request) =>
      fleet.setDesired(
        request.params.group,
        { state: request.body.state, version: request.body.version ?? null, params: request.body.params ?? {} },
        request.principal.tokenId,
      ),
  );

  app.get(
    '/v1/desired/:group',
    {
      config: { access: anyToken },
      schema: {
        summary:
          "A group's desired state (null when none was set); with ?node=, `effective`: what that node is to be in now (the previous state while a rolling step has not released it)",
        params: groupParams,
        querystring: Type.Object({ node: Type.Optional(name) }, { additionalProperties: false }),
        response: {
          200: Type.Object({
            desired: Type.Union([Desired, Type.Null()]),
            effective: Type.Optional(Type.Union([DesiredValue, Type.Null()])),
          }),
        },
      },
    },
    async (request) => {
      await fleet.requireGroup(request.params.group);
      const desired = await fleet.getDesired(request.params.group);
      const node = request.query.node;
      return { desired, ...(node !== undefined ? { effective: effectiveDesired(desired, node) } : {}) };
    },
  );

  app.put(
    '/v1/state/:group/:node',
    {
      config: {
        access: access.key('write', (request) => {
          const { group, node } = request.params as { group: string; node: string };
          return { key: planKeys.actual(node, group), prefix: false };
        }),
      },
      schema: {
        summary: 'A node reports its actual state in a group (a node token: for itself only)',
        params: Type.Object({ group: name, node: name }, { additionalProperties: false }),
        body: Type.Object(
          {
            state: Type.String({ minLength: 1, maxLength: 128, pattern: '^[A-Za-z0-9][A-Za-z0-9._-]*$' }),
            version: Type.Optional(Type.Union([Type.String({ maxLength: 256 }), Type.Null()])),
          },
          { additionalProperties: false },
        ),
        response: { 200: ActualState },
      },
    },
    async (request) => {
      validateName(request.params.node);
      await fleet.requireGroup(request.params.group);
      return fleet.report(request.params.group, request.params.node, request.body.state, request.body.version ?? null);
    },
  );

  app.get(
    '/v1/state/:group',
    {
      config: { access: anyToken },
      schema: {
        summary: 'Desired against actual state, node by node',
        params: groupParams,
        response: { 200: GroupStatus },
      },
    },
    async (request) => fleet.status(request.params.group),
  );

  app.post(
    '/v1/plans',
    {
      config: { access: orchestrate },
      schema: {
        summary:
          'Apply a plan (YAML or JSON text), or with dryRun see its order, batches and nodes without applying it',
        body: Type.Object(
          {
            source: Type.String({ minLength: 1, maxLength: 256 * 1024 }),
            filename: Type.Optional(Type.String({ maxLength: 256 })),
            dryRun: Type.Optional(Type.Boolean()),
          },
          { additionalProperties: false },
        ),
        response: { 200: Type.Union([PlanRecord, PlanPreview]) },
      },
    },
    async (request) => {
      const { source, filename = 'plan', dryRun = false } = request.body;
      if (dryRun) return plans.preview(source, filename, fleet, directory);
      const plan = await plans.create(source, filename, request.principal.tokenId, fleet);
      request.auditTarget = plan.id;
      return plan;
    },
  );

  app.get(
    '/v1/plans',
    {
      config: { access: anyToken },
      schema: {
        summary: 'The plans, newest first',
        querystring: Type.Object(
          { limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000 })) },
          { additionalProperties: false },
        ),
        response: { 200: Type.Object({ plans: Type.Array(PlanRecord) }) },
      },
    },
    async (request) => {
      mayReadPlans(request.principal);
      return { plans: await plans.list(request.query.limit ?? 100) };
    },
  );

  app.get(
    '/v1/plans/:id',
    {
      config: { access: anyToken },
      schema: {
        summary: 'A plan: its steps, their batches and nodes, and where it is',
        params: idParams,
        response: { 200: PlanRecord },
      },
    },
    async (request) => {
      mayReadPlans(request.principal);
      return (await plans.require(request.params.id)).record;
    },
  );

  for (const what of ['pause', 'resume'] as const) {
    app.post(
      `/v1/plans/:id/${what}`,
      {
        config: { access: orchestrate },
        schema: {
          summary:
            what === 'pause'
              ? 'Pause a plan: no new batch starts (a running job goes on); its timeouts stand still'
              : 'Resume a paused plan',
          params: idParams,
          response: { 200: PlanRecord },
        },
      },
      async (request) => plans.request(request.params.id, what),
    );
  }

  app.delete(
    '/v1/plans/:id',
    {
      config: { access: orchestrate },
      schema: {
        summary: 'Abort a plan: its running jobs are aborted, no step starts again',
        params: idParams,
        response: { 200: PlanRecord },
      },
    },
    async (request) => plans.request(request.params.id, 'abort'),
  );

  app.get(
    '/v1/plans/:id/events',
    {
      config: { access: anyToken },
      schema: {
        summary:
          'Server-Sent Events: the plan record at each change (`event: plan`), then `event: end` once it has ended',
        params: idParams,
      },
    },
    async (request, reply) => {
      mayReadPlans(request.principal);
      const id = validatePlanId(request.params.id);
      const first = await plans.require(id);
      let watch: Watch | null = null;
      const stream = openSse(reply, { clock: deps.clock, shutdown: deps.shutdown, stop: () => watch?.close() });
      try {
        await stream.write(sseEvent('plan', first.record, first.modRevision));
        if (!FINAL_PLAN_STATES.has(first.record.state)) {
          watch = backend.watch(planKeys.plan(id), { prefix: false, fromRevision: first.modRevision + 1 });
          if (stream.gone) watch.close();
          for await (const batch of watch) {
            let ended = false;
            for (const event of batch.events) {
              if (event.type !== 'put') continue;
              const record = decodeJson<PlanRecordType>(event.kv.value);
              await stream.write(sseEvent('plan', record, event.revision));
              if (FINAL_PLAN_STATES.has(record.state)) ended = true;
            }
            if (ended || stream.gone) break;
          }
        }
        await stream.write(sseEvent('end', {}));
      } catch (error) {
        if (!(error instanceof CompactedError)) await stream.write(sseError(error));
        else await stream.write(sseEvent('compacted', { requestedRevision: error.requestedRevision }));
      } finally {
        watch?.close();
        stream.end();
      }
    },
  );
};
