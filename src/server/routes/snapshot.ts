import { Readable } from 'node:stream';
import type { FastifyPluginAsync } from 'fastify';
import type { Backend } from '../../core/backend.js';
import { SnapshotUnsupportedError } from '../../core/errors.js';
import { access } from '../access.js';

/**
 * `GET /v1/snapshot`: the embedded store as a muster snapshot file (header,
 * database, SHA-256 trailer), streamed; `X-Muster-Revision` names its revision.
 * On etcd: 501 `snapshot_unsupported`.
 */
export const snapshotRoutes: FastifyPluginAsync<{ backend: Backend }> = async (app, { backend }) => {
  app.get(
    '/v1/snapshot',
    {
      config: { access: access.admin },
      schema: {
        summary: 'A consistent snapshot of the embedded store (application/octet-stream); 501 on etcd',
      },
    },
    async (_request, reply) => {
      if (!backend.snapshot) {
        throw new SnapshotUnsupportedError(
          `the ${backend.kind} store has no muster snapshot; back it up with \`etcdctl snapshot save FILE\``,
        );
      }
      const snapshot = await backend.snapshot();
      return reply
        .header('content-type', 'application/octet-stream')
        .header('content-length', snapshot.size)
        .header('x-muster-revision', snapshot.revision)
        .send(Readable.from(snapshot.chunks, { objectMode: false }));
    },
  );
};
