import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import Type from 'typebox';
import type { Clock } from '../../core/clock.js';
import { parseDuration } from '../../core/duration.js';
import { InvalidArgumentError } from '../../core/errors.js';
import { AuditRecord } from '../../security/audit-log.js';
import type { AuditLog } from '../../security/audit-log.js';
import { access } from '../access.js';

/** `since`: a duration back from now ("1h", "30m", seconds) or an ISO 8601 time. */
function sinceOf(text: string | undefined, clock: Clock): number | undefined {
  if (text === undefined) return undefined;
  if (/^\d{4}-\d{2}-\d{2}/.test(text)) {
    const at = Date.parse(text);
    if (Number.isNaN(at))
      throw new InvalidArgumentError(`since: not a time: ${JSON.stringify(text)}`, 'invalid_request');
    return at;
  }
  return clock.now() - parseDuration(text, 'since');
}

/** `GET /v1/audit`: the audit log, oldest first (audit:read). */
export const auditRoutes: FastifyPluginAsyncTypebox<{ audit: AuditLog | null; clock: Clock }> = async (
  app,
  { audit, clock },
) => {
  app.get(
    '/v1/audit',
    {
      config: { access: access.capability('audit:read') },
      schema: {
        summary: 'The audit log: writes, primitive actions, lease and token changes carried out; oldest first',
        querystring: Type.Object(
          {
            since: Type.Optional(Type.String({ maxLength: 64, description: 'A duration back ("1h") or an ISO time' })),
            token: Type.Optional(Type.String({ maxLength: 64, description: 'Only this token id' })),
            limit: Type.Optional(
              Type.Integer({ minimum: 1, maximum: 100_000, description: 'The newest N (default 1000)' }),
            ),
          },
          { additionalProperties: false },
        ),
        response: { 200: Type.Object({ records: Type.Array(AuditRecord) }) },
      },
    },
    async (request) => {
      if (audit === null) {
        throw new InvalidArgumentError(
          'this server runs with --insecure-no-auth: it keeps no audit log',
          'invalid_request',
        );
      }
      const since = sinceOf(request.query.since, clock);
      return {
        records: await audit.query({
          ...(since !== undefined ? { since } : {}),
          ...(request.query.token !== undefined ? { tokenId: request.query.token } : {}),
          ...(request.query.limit !== undefined ? { limit: request.query.limit } : {}),
        }),
      };
    },
  );
};
