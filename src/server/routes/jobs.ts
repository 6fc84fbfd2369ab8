import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { FastifyRequest } from 'fastify';
import Type from 'typebox';
import type { AssignmentEvent } from '../../api/agent-protocol.js';
import { JobReport } from '../../api/agent-protocol.js';
import type { Backend, Watch } from '../../core/backend.js';
import type { Clock } from '../../core/clock.js';
import { CompactedError, ForbiddenError, InvalidArgumentError } from '../../core/errors.js';
import { AssignmentHub } from '../../jobs/assignment-hub.js';
import type { JobRecord, NodeJobRecord, OutputChunk } from '../../jobs/job-model.js';
import {
  FINAL_JOB_STATES,
  JOB_STATES,
  JobRecord as JobRecordSchema,
  JobRequest,
  JobView,
  OutputChunk as OutputChunkSchema,
  decodeJson,
  keys,
  parseJobKey,
  validateJobId,
  validateNodeName,
} from '../../jobs/job-model.js';
import { JobNotFoundError } from '../../jobs/job-store.js';
import { checkQuery } from '../../jobs/registry-directory.js';
import type { JobStore } from '../../jobs/job-store.js';
import type { Principal } from '../../security/token-registry.js';
import { access } from '../access.js';
import { openSse, sseError, sseEvent } from '../sse.js';

export interface JobRouteDeps {
  readonly backend: Backend;
  readonly store: JobStore;
  readonly clock: Clock;
  readonly shutdown?: AbortSignal;
}

/** The node a node token speaks for, or null for any other token. */
function tokenNode(who: Principal): string | null {
  return who.role === 'node' ? (who.policy.spec.node ?? '') : null;
}

/** May `who` see this job? A node token: only a job it has a part in; others: if they may read jobs. */
function canSee(who: Principal, job: JobRecord): boolean {
  const node = tokenNode(who);
  if (node !== null) return job.nodes.includes(node);
  return who.policy.canRead(keys.job(job.id)) || who.policy.capability('jobs:run').allowed;
}

function mayListJobs(who: Principal): void {
  if (tokenNode(who) !== null) return;
  if (who.policy.canRead(keys.job('x')) || who.policy.capability('jobs:run').allowed) return;
  throw new ForbiddenError(
    `${who.policy.describe()} may not read jobs (no read rule covers /muster/jobs/)`,
    'jobs read',
  );
}

/** A job `who` may see, or 404 as if it did not exist (a node token learns nothing of other nodes' jobs). */
async function visibleJob(store: JobStore, who: Principal, id: string): Promise<JobRecord> {
  const job = await store.require(validateJobId(id));
  if (!canSee(who, job.record)) throw new JobNotFoundError(id);
  return job.record;
}

/** Only the node itself (its node token), or an admin, acts as a node. */
function actAsNode(who: Principal, node: string, what: string): void {
  const own = tokenNode(who);
  if (own === node || who.policy.isAdmin) return;
  throw new ForbiddenError(
    `${who.policy.describe()} may not ${what} for node ${node}: only that node's token may`,
    own === null ? 'node tokens only' : `node ${own}`,
  );
}

function resumeFrom(request: FastifyRequest, from: number | undefined): number | undefined {
  const lastEventId = request.headers['last-event-id'];
  if (typeof lastEventId === 'string') {
    if (!/^[0-9]{1,15}$/.test(lastEventId)) {
      throw new InvalidArgumentError('Last-Event-ID must be a revision number', 'invalid_request');
    }
    return Number(lastEventId) + 1;
  }
  return from;
}

const idParams = Type.Object({ id: Type.String({ maxLength: 64 }) }, { additionalProperties: false });
const nodeParams = Type.Object(
  { id: Type.String({ maxLength: 64 }), node: Type.String({ maxLength: 256 }) },
  { additionalProperties: false },
);
const fromQuery = Type.Object(
  { from: Type.Optional(Type.Integer({ minimum: 1, maximum: Number.MAX_SAFE_INTEGER })) },
  { additionalProperties: false },
);
const lastEventHeader = Type.Object({ 'last-event-id': Type.Optional(Type.String({ maxLength: 20 })) });
/** Everyone authenticated; each handler checks what the token may see (a node token: its own node's part). */
const checkedInHandler = access.keys(() => []);

/**
 * Push jobs (docs/jobs.md): start, list, show, follow (SSE), output, abort; and
 * the agents' side: the assignment stream and reports.
 */
export const jobRoutes: FastifyPluginAsyncTypebox<JobRouteDeps> = async (app, deps) => {
  const { backend, store, clock, shutdown } = deps;
  const hub = new AssignmentHub(backend, clock);
  app.addHook('onClose', async () => hub.close());

  app.post(
    '/v1/jobs',
    {
      config: { access: access.capability('jobs:run') },
      schema: {
        summary: 'Start a job: run an allowlisted command on the nodes a query matches',
        body: JobRequest,
        response: { 201: JobRecordSchema },
      },
    },
    async (request, reply) => {
      checkQuery(request.body.query);
      const job = await store.create(request.body, request.principal.tokenId);
      request.auditTarget = job.id;
      return reply.status(201).send(job);
    },
  );

  app.get(
    '/v1/jobs',
    {
      config: { access: checkedInHandler },
      schema: {
        summary: 'The jobs, newest first (a node token sees only the jobs it has a part in)',
        querystring: Type.Object(
          {
            limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 10_000 })),
            state: Type.Optional(Type.Enum([...JOB_STATES])),
          },
          { additionalProperties: false },
        ),
        response: { 200: Type.Object({ jobs: Type.Array(JobView) }) },
      },
    },
    async (request) => {
      const who = request.principal;
      mayListJobs(who);
      const state = request.query.state;
      const jobs = await store.list({
        limit: request.query.limit ?? 100,
        visible: (job) => canSee(who, job) && (state === undefined || job.state === state),
      });
      return { jobs };
    },
  );

  app.get(
    '/v1/jobs/:id',
    {
      config: { access: checkedInHandler },
      schema: {
        summary: "A job, its counts and every node's state",
        params: idParams,
        response: { 200: JobView },
      },
    },
    async (request) => {
      await visibleJob(store, request.principal, request.params.id);
      const view = await store.view(request.params.id, true);
      const node = tokenNode(request.principal);
      if (node !== null && view.nodeStates) view.nodeStates = view.nodeStates.filter((n) => n.node === node);
      return view;
    },
  );

  app.delete(
    '/v1/jobs/:id',
    {
      config: { access: access.capability('jobs:run') },
      schema: {
        summary: 'Abort a job: nodes not started never start, running ones get SIGTERM then SIGKILL',
        params: idParams,
        response: { 200: JobRecordSchema },
      },
    },
    async (request) => store.requestAbort(validateJobId(request.params.id)),
  );

  app.get(
    '/v1/jobs/:id/nodes/:node/output',
    {
      config: { access: checkedInHandler },
      schema: {
        summary: "A node's output in a job, oldest chunk first (truncated: older output was dropped)",
        params: nodeParams,
        response: {
          200: Type.Object({ node: Type.String(), truncated: Type.Boolean(), chunks: Type.Array(OutputChunkSchema) }),
        },
      },
    },
    async (request) => {
      const node = validateNodeName(request.params.node);
      await visibleJob(store, request.principal, request.params.id);
      const own = tokenNode(request.principal);
      if (own !== null && own !== node) actAsNode(request.principal, node, 'read the output');
      const output = await store.output(request.params.id, node);
      return { node, ...output };
    },
  );

  app.get(
    '/v1/jobs/:id/events',
    {
      config: { access: checkedInHandler },
      schema: {
        summary:
          'Follow a job as Server-Sent Events: event: job (the record), node (a node state), output (a chunk), end (the job is over); id: the revision, resumable with Last-Event-ID or ?from=',
        params: idParams,
        querystring: fromQuery,
        headers: lastEventHeader,
      },
    },
    async (request, reply) => {
      const id = request.params.id;
      await visibleJob(store, request.principal, id);
      const own = tokenNode(request.principal);
      let from = resumeFrom(request, request.query.from);
      const release = request.occupy('watches');
      let watch: Watch | null = null;
      const stream = openSse(reply, { clock, shutdown, stop: () => watch?.close() });
      const mine = (key: string): boolean => key === keys.job(id) || key.startsWith(keys.jobChildren(id));
      const eventFor = (key: string, value: Uint8Array): { name: string; data: unknown; final?: boolean } | null => {
        const parsed = parseJobKey(key);
        if (!parsed) return null;
        if (parsed.kind === 'job') {
          const record = decodeJson<JobRecord>(value);
          return { name: 'job', data: record, final: FINAL_JOB_STATES.has(record.state) };
        }
        if (own !== null && parsed.node !== own) return null;
        if (parsed.kind === 'node') return { name: 'node', data: decodeJson<NodeJobRecord>(value) };
        return { name: 'output', data: decodeJson<OutputChunk>(value) };
      };
      let ended = false;
      try {
        if (from === undefined) {
          // Where the job is now (read at one revision, a node's output at a time, so a
          // job of many nodes never sits in memory whole), then what happens next.
          const head = await backend.range({ key: keys.job(id) });
          const revision = head.revision;
          const jobKv = head.kvs[0];
          const job = jobKv ? eventFor(jobKv.key, jobKv.value) : null;
          let chunk = job ? sseEvent(job.name, job.data) : '';
          const nodes = await backend.range({ key: keys.nodes(id), prefix: true, revision });
          for (const kv of nodes.kvs) {
            const event = eventFor(kv.key, kv.value);
            if (event) chunk += sseEvent(event.name, event.data);
          }
          await stream.write(chunk);
          for (const kv of nodes.kvs) {
            if (stream.gone) break;
            const node = kv.key.slice(keys.nodes(id).length);
            if (own !== null && node !== own) continue;
            const output = await backend.range({ key: keys.output(id, node), prefix: true, revision });
            let text = '';
            for (const out of output.kvs) {
              const event = eventFor(out.key, out.value);
              if (event) text += sseEvent(event.name, event.data);
            }
            if (text) await stream.write(text);
          }
          await stream.write(sseEvent('synced', { revision }, revision));
          if (job?.final) {
            await stream.write(sseEvent('end', { revision }, revision));
            ended = true;
          }
          const range = { revision };
          from = range.revision + 1;
        }
        if (!ended) {
          watch = backend.watch(keys.job(id), { prefix: true, fromRevision: from });
          if (stream.gone) watch.close();
          for await (const batch of watch) {
            const events = batch.events.filter((e) => e.type === 'put' && mine(e.kv.key));
            let chunk = '';
            let final = false;
            events.forEach((e, i) => {
              const event = eventFor(e.kv.key, e.kv.value);
              const last = events[i + 1]?.revision !== e.revision;
              if (event) chunk += sseEvent(event.name, event.data, last ? e.revision : undefined);
              else if (last) chunk += `id: ${e.revision}\n\n`;
              if (event?.final) final = true;
            });
            if (chunk) await stream.write(chunk);
            if (final) {
              await stream.write(sseEvent('end', {}));
              break;
            }
            if (stream.gone) break;
          }
        }
      } catch (error) {
        if (error instanceof CompactedError) {
          await stream.write(
            sseEvent('compacted', { requestedRevision: error.requestedRevision, oldestRevision: error.oldestRevision }),
          );
        } else {
          await stream.write(sseError(error));
        }
      } finally {
        watch?.close();
        release();
        stream.end();
      }
    },
  );

  app.get(
    '/v1/nodes/:node/assignments',
    {
      config: { access: checkedInHandler },
      schema: {
        summary:
          "A node's assignments as Server-Sent Events (event: assignment, data: an AssignmentEvent, id: its revision); resumable with Last-Event-ID or ?from=; a node token: its own node only",
        params: Type.Object({ node: Type.String({ maxLength: 256 }) }, { additionalProperties: false }),
        querystring: fromQuery,
        headers: lastEventHeader,
      },
    },
    async (request, reply) => {
      const node = validateNodeName(request.params.node);
      actAsNode(request.principal, node, 'receive assignments');
      const from = resumeFrom(request, request.query.from);
      const release = request.occupy('watches');
      let stop: (() => void) | null = null;
      let pending = '';
      let flushing = false;
      let closed = false;
      const wake: { resolve: (() => void) | null } = { resolve: null };
      const stream = openSse(reply, {
        clock,
        shutdown,
        stop: () => {
          closed = true;
          stop?.();
          wake.resolve?.();
        },
      });
      const flush = async () => {
        if (flushing) return;
        flushing = true;
        while (pending && !stream.gone) {
          const chunk = pending;
          pending = '';
          await stream.write(chunk);
        }
        flushing = false;
      };
      try {
        stop = await hub.follow(node, from, (event: AssignmentEvent) => {
          pending += sseEvent('assignment', event, event.revision);
          void flush();
        });
        if (closed) stop();
        else await new Promise<void>((resolve) => (wake.resolve = resolve));
      } catch (error) {
        await stream.write(sseError(error));
      } finally {
        stop?.();
        release();
        stream.end();
      }
    },
  );

  app.post(
    '/v1/jobs/:id/nodes/:node/report',
    {
      config: { access: checkedInHandler },
      schema: {
        summary:
          'A node reports on its part in a job (started, output, exit, rejected); a seq it already sent is ignored; a node token: its own node only',
        params: nodeParams,
        body: JobReport,
        response: { 200: Type.Object({ accepted: Type.Boolean(), state: Type.String() }) },
      },
    },
    async (request) => {
      const node = validateNodeName(request.params.node);
      actAsNode(request.principal, node, 'report');
      return store.report(validateJobId(request.params.id), node, request.body);
    },
  );
};
