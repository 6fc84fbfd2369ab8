import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import Type from 'typebox';
import type { Backend } from '../../core/backend.js';
import { access } from '../access.js';
import { PRIMITIVE_KINDS, WirePrimitiveList } from '../../api/wire.js';
import type { WirePrimitiveKind } from '../../api/wire.js';

/** The primitives' folders under /muster/, by kind (see primitives/layout.ts). */
const PRIMITIVE_FOLDERS: Record<WirePrimitiveKind, string> = {
  lock: '/muster/locks/',
  semaphore: '/muster/semaphores/',
  election: '/muster/elections/',
  barrier: '/muster/barriers/',
  once: '/muster/once/',
};

/**
 * `GET /v1/primitives`: every lock, semaphore, election, barrier and once that has
 * keys now (a holder, a waiter, a candidate, a result), with how many, at one
 * revision; only the names the token may read. Each one's status is its own route.
 */
export const primitiveListRoutes: FastifyPluginAsyncTypebox<{ backend: Backend }> = async (app, { backend }) => {
  app.get(
    '/v1/primitives',
    {
      // Any token may ask; each name is shown only when the token may read that primitive.
      config: { access: access.keys(() => []) },
      schema: {
        summary: 'The coordination primitives in use (locks, semaphores, elections, barriers, onces) by kind and name',
        querystring: Type.Object(
          { kind: Type.Optional(Type.Enum([...PRIMITIVE_KINDS])) },
          { additionalProperties: false },
        ),
        response: { 200: WirePrimitiveList },
      },
    },
    async (request) => {
      const kinds: readonly WirePrimitiveKind[] = request.query.kind ? [request.query.kind] : PRIMITIVE_KINDS;
      const primitives: { kind: WirePrimitiveKind; name: string; keys: number }[] = [];
      let revision = 0;
      for (const kind of kinds) {
        const folder = PRIMITIVE_FOLDERS[kind];
        const range = await backend.range({
          key: folder,
          prefix: true,
          keysOnly: true,
          ...(revision > 0 ? { revision } : {}),
        });
        revision = range.revision;
        const counts = new Map<string, number>();
        for (const kv of range.kvs) {
          const name = kv.key.slice(folder.length).split('/')[0] ?? '';
          if (name !== '') counts.set(name, (counts.get(name) ?? 0) + 1);
        }
        for (const [name, keys] of counts) {
          if (request.principal.policy.primitive(name, 'read').allowed) primitives.push({ kind, name, keys });
        }
      }
      primitives.sort((a, b) => a.kind.localeCompare(b.kind) || a.name.localeCompare(b.name));
      return { revision, primitives };
    },
  );
};
