import type { AddressInfo } from 'node:net';
import type { FastifyInstance } from 'fastify';
import type { Backend } from '../../src/core/backend.js';
import type { Clock } from '../../src/core/clock.js';
import { SqliteBackend } from '../../src/backends/sqlite/sqlite-backend.js';
import { buildApp } from '../../src/server/build-app.js';

/** A real muster HTTP server on 127.0.0.1 (a free port) over an in-memory SQLite store. */
export interface TestServer {
  readonly url: string;
  readonly port: number;
  readonly app: FastifyInstance;
  readonly backend: Backend;
  /** Stop the HTTP server only; the store stays open for a restart. */
  stopHttp(): Promise<void>;
  /** Stop everything. */
  close(): Promise<void>;
}

export interface TestServerOptions {
  readonly backend?: Backend;
  readonly clock?: Clock;
  readonly maxValueBytes?: number;
}

/** Start a server; pass `backend` to restart one on the same data. */
export async function startTestServer(options: TestServerOptions = {}): Promise<TestServer> {
  const backend =
    options.backend ?? SqliteBackend.open({ dataDir: ':memory:', ...(options.clock ? { clock: options.clock } : {}) });
  const app = await buildApp({
    backend,
    // These exercise the API itself; test/server/auth*.test.ts exercise the tokens.
    auth: 'off',
    ...(options.clock ? { runtime: { clock: options.clock, random: Math.random } } : {}),
    ...(options.maxValueBytes !== undefined ? { maxValueBytes: options.maxValueBytes } : {}),
  });
  await app.listen({ host: '127.0.0.1', port: 0 });
  const port = (app.server.address() as AddressInfo).port;
  let httpStopped = false;
  const stopHttp = async (): Promise<void> => {
    if (httpStopped) return;
    httpStopped = true;
    // Open watch streams would hold close() forever; a stopping server drops them.
    app.server.closeAllConnections();
    await app.close();
  };
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    app,
    backend,
    stopHttp,
    async close() {
      await stopHttp();
      await backend.close();
    },
  };
}
