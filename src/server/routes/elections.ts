import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import Type from 'typebox';
import { WireLeaderAnswer, WireProclaimed } from '../../api/wire.js';
import type { WireLeader } from '../../api/wire.js';
import { campaign, leader, observe, proclaim, resign } from '../../primitives/election.js';
import type { Leader } from '../../primitives/election.js';
import { validateName } from '../../primitives/layout.js';
import { openSse, sseError, sseEvent } from '../sse.js';
import { blocking, timeoutSchema } from './blocking.js';
import type { PrimitiveRouteDeps } from './blocking.js';
import { Leadership } from '../../primitives/result-schemas.js';
import { heldBody, holderKeySchema, leaseIdSchema, nameParams, tokenSchema } from './primitive-schemas.js';
import { access } from '../access.js';

const MAX_VALUE_LENGTH = 64 * 1024;
const encoder = new TextEncoder();
const decoder = new TextDecoder();

function wireLeader(l: Leader | null): WireLeader | null {
  return l
    ? { key: l.key, value: decoder.decode(l.value), token: l.token, lease: l.lease, revision: l.revision }
    : null;
}

/** First-come leader election: campaign (blocking), proclaim, resign, leader, observe (SSE). */
export const electionRoutes: FastifyPluginAsyncTypebox<PrimitiveRouteDeps> = async (app, deps) => {
  const { backend } = deps;
  app.post(
    '/v1/elections/:name/campaign',
    {
      config: { access: access.primitive('use', { lease: (request) => (request.body as { lease?: string }).lease }) },
      schema: {
        summary: 'Campaign with a value; returns when the caller leads',
        params: nameParams,
        body: Type.Object(
          {
            lease: leaseIdSchema,
            value: Type.String({ maxLength: MAX_VALUE_LENGTH }),
            timeout: Type.Optional(timeoutSchema),
          },
          { additionalProperties: false },
        ),
        response: { 200: Leadership },
      },
    },
    async (request, reply) =>
      blocking(reply, deps, request.body.timeout, `election ${request.params.name}`, (signal) =>
        campaign(backend, request.params.name, encoder.encode(request.body.value), request.body.lease, signal),
      ),
  );

  app.post(
    '/v1/elections/:name/proclaim',
    {
      config: {
        access: access.primitive('use', {
          lease: (request) => (request.body as { lease?: string }).lease,
          held: (request) => (request.body as { key?: string }).key,
        }),
      },
      schema: {
        summary: "Change the leader's value; refused (409 not_holder) unless the token still leads",
        params: nameParams,
        body: Type.Object(
          {
            key: holderKeySchema,
            token: tokenSchema,
            lease: leaseIdSchema,
            value: Type.String({ maxLength: MAX_VALUE_LENGTH }),
          },
          { additionalProperties: false },
        ),
        response: { 200: WireProclaimed },
      },
    },
    async (request) => {
      const { key, token, lease, value } = request.body;
      const revision = await proclaim(
        backend,
        { election: request.params.name, key, token, lease },
        encoder.encode(value),
      );
      return { revision };
    },
  );

  app.post(
    '/v1/elections/:name/resign',
    {
      config: { access: access.primitive('use', { held: (request) => (request.body as { key?: string }).key }) },
      schema: {
        summary: 'Step down, or withdraw a candidacy',
        params: nameParams,
        body: heldBody,
        response: { 200: Type.Object({ resigned: Type.Boolean() }) },
      },
    },
    async (request) => {
      await resign(backend, { election: request.params.name, key: request.body.key, token: request.body.token });
      return { resigned: true };
    },
  );

  app.get(
    '/v1/elections/:name/leader',
    {
      config: { access: access.primitive('read') },
      schema: {
        summary: 'The current leader, or null',
        params: nameParams,
        response: { 200: WireLeaderAnswer },
      },
    },
    async (request) => ({ leader: wireLeader(await leader(backend, request.params.name)) }),
  );

  app.get(
    '/v1/elections/:name/observe',
    {
      config: { access: access.primitive('read') },
      schema: {
        summary: 'Server-Sent Events: `event: leader` with the leader (or null) now and at every change, in order',
        params: nameParams,
      },
    },
    async (request, reply) => {
      validateName(request.params.name, 'election name');
      const stop = new AbortController();
      // One of the token's open watches (429 limit_exceeded when it has none left).
      const release = request.occupy('watches');
      const changes = observe(backend, request.params.name, stop.signal);
      // Read the current leader before committing to a stream, so errors are JSON.
      let first: IteratorResult<Leader | null>;
      try {
        first = await changes.next();
      } catch (error) {
        release();
        throw error;
      }
      const stream = openSse(reply, { clock: deps.clock, shutdown: deps.shutdown, stop: () => stop.abort() });
      const send = (l: Leader | null) => {
        const data: WireLeaderAnswer = { leader: wireLeader(l) };
        return stream.write(sseEvent('leader', data));
      };
      try {
        if (!first.done) await send(first.value);
        for await (const change of changes) await send(change);
      } catch (error) {
        if (!stop.signal.aborted) await stream.write(sseError(error));
      } finally {
        stop.abort();
        release();
        stream.end();
      }
    },
  );
};
