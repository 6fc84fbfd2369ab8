import { SqliteBackend } from '../../src/backends/sqlite/sqlite-backend.js';
import { systemClock } from '../../src/core/clock.js';
import { buildApp } from '../../src/server/build-app.js';
import type { NewToken } from '../../src/security/token-registry.js';
import { TokenRegistry } from '../../src/security/token-registry.js';
import type { FastifyInstance } from 'fastify';

export type Who = 'anonymous' | 'bogus' | 'admin' | 'operator' | 'reader' | 'node' | 'cluster';
export const TOKEN_ROLES: readonly Exclude<Who, 'anonymous' | 'bogus'>[] = [
  'admin',
  'operator',
  'reader',
  'node',
  'cluster',
];

const SPECS: Record<Exclude<Who, 'anonymous' | 'bogus'>, NewToken> = {
  admin: { role: 'admin' },
  operator: { role: 'operator' },
  reader: { role: 'reader' },
  node: { role: 'node', node: 'web-3' },
  cluster: { role: 'cluster', cluster: 'k8s' },
};

export interface AuthApp {
  readonly app: FastifyInstance;
  readonly url: string;
  readonly backend: SqliteBackend;
  readonly tokens: TokenRegistry;
  /** A token of each role (node web-3, cluster k8s). */
  readonly token: Record<Who, string | undefined>;
  /** Send a request as `who`. */
  call(who: Who, method: string, path: string, body?: unknown, signal?: AbortSignal): Promise<Response>;
  close(): Promise<void>;
}

/** An app with auth on, listening on 127.0.0.1, with a token of every role. */
export async function startAuthApp(): Promise<AuthApp> {
  const backend = SqliteBackend.open({ dataDir: ':memory:' });
  const tokens = new TokenRegistry(backend, systemClock);
  await tokens.start();
  const app = await buildApp({ backend, auth: { tokens }, logger: false });
  await app.listen({ host: '127.0.0.1', port: 0 });
  const address = app.server.address();
  if (address === null || typeof address === 'string') throw new Error('no address');
  const url = `http://127.0.0.1:${address.port}`;
  const token: Record<Who, string | undefined> = {
    anonymous: undefined,
    bogus: 'mst_0123456789ab_' + 'x'.repeat(43),
    admin: undefined,
    operator: undefined,
    reader: undefined,
    node: undefined,
    cluster: undefined,
  };
  for (const role of TOKEN_ROLES) token[role] = (await tokens.create(SPECS[role])).token;
  return {
    app,
    url,
    backend,
    tokens,
    token,
    call: (who, method, path, body, signal) => {
      const headers: Record<string, string> = {};
      const secret = token[who];
      if (secret) headers.authorization = `Bearer ${secret}`;
      let payload: string | Buffer | undefined;
      if (body instanceof Buffer) {
        payload = body;
        headers['content-type'] = 'application/octet-stream';
      } else if (body !== undefined) {
        payload = JSON.stringify(body);
        headers['content-type'] = 'application/json';
      }
      return fetch(url + path, {
        method,
        headers,
        ...(payload !== undefined ? { body: payload } : {}),
        ...(signal ? { signal } : {}),
      });
    },
    close: async () => {
      tokens.stop();
      await app.close();
      await backend.close();
    },
  };
}
