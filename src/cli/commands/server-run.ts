import type { AddressInfo } from 'node:net';
import { hostname } from 'node:os';
import type { FastifyInstance } from 'fastify';
import { createBackend } from '../../backends/create-backend.js';
import type { Backend } from '../../core/backend.js';
import { buildApp } from '../../server/build-app.js';
import { DutyRunner, compactionDuty, heartbeatDuty } from '../../server/duties/index.js';
import type { CliContext } from '../context.js';
import { aborted, untilInterrupted } from '../interrupt.js';
import type { ServerConfig } from '../server-config.js';

/** How long running requests get to finish on stop before open streams (watches) are cut. */
const DRAIN_MS = 3000;

/** Run the server with `config` until SIGINT/SIGTERM (`muster server`). */
export async function runServer(config: ServerConfig, dutiesTtl: number, ctx: CliContext): Promise<void> {
  // Signals are caught from the start, so that a stop during startup still closes the store.
  const interrupt = untilInterrupted();
  let backend: Backend | null = null;
  let app: FastifyInstance | null = null;
  let duties: DutyRunner | null = null;
  try {
    backend = await createBackend(
      config.etcd
        ? {
            kind: 'etcd',
            endpoints: config.etcd.endpoints,
            prefix: config.etcd.prefix,
            ...(config.etcd.tls ? { tls: config.etcd.tls } : {}),
          }
        : { kind: 'sqlite', dataDir: config.dataDir, retention: config.retention },
    );
    app = await buildApp({ backend, maxValueBytes: config.maxValueBytes });
    await app.listen({ host: config.host, port: config.port }).catch((error: unknown) => {
      const code = (error as { code?: unknown }).code;
      if (code !== 'EADDRINUSE' && code !== 'EADDRNOTAVAIL' && code !== 'EACCES') throw error;
      const why =
        code === 'EADDRINUSE'
          ? 'the address is in use (another server?)'
          : code === 'EACCES'
            ? 'permission denied'
            : 'no such address here';
      throw new Error(`cannot listen on ${config.host}:${config.port}: ${why}`, { cause: error });
    });
    const address = app.server.address() as AddressInfo;
    const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
    const url = `http://${host}:${address.port}`;
    const store = config.etcd ? `etcd ${config.etcd.endpoints.join(',')} under ${config.etcd.prefix}` : config.dataDir;
    ctx.print(welcome(url, store));
    // Duties exist to be run once among several servers: on the embedded store
    // there is one server, and the store compacts its own history.
    if (config.etcd) {
      duties = new DutyRunner({
        backend,
        sessionTtl: dutiesTtl,
        serverId: `${hostname()}:${address.port}/${process.pid}`,
        onError: (error, where) =>
          ctx.warn(`muster: duties: ${where}: ${error instanceof Error ? error.message : String(error)}`),
      });
      duties.register(heartbeatDuty({ intervalMs: Math.min(5000, (dutiesTtl * 1000) / 3) }));
      duties.register(compactionDuty({ retention: config.retention }));
      duties.start();
    }
    await aborted(interrupt.signal);
    ctx.warn('muster: stopping (finishing running requests, closing the store)');
  } finally {
    interrupt.dispose();
    if (duties !== null) await duties.stop();
    if (app !== null) await closeApp(app);
    if (backend !== null) await backend.close();
  }
}

/**
 * Stop accepting connections and let running requests finish. Watches and other
 * streams never finish on their own: after DRAIN_MS they are cut (clients resume
 * elsewhere or after a restart).
 */
async function closeApp(app: FastifyInstance): Promise<void> {
  const closing = app.close();
  const timer = setTimeout(() => app.server.closeAllConnections(), DRAIN_MS);
  try {
    await closing;
  } finally {
    clearTimeout(timer);
  }
}

function welcome(url: string, store: string): string {
  const endpoint = url === 'http://127.0.0.1:4100' ? '' : ` --endpoint ${url}`;
  return `muster listening on ${url}
data: ${store === ':memory:' ? 'in memory (lost when the server stops)' : store}

Try it from another shell:
  muster${endpoint} put /config/db/host 10.0.0.5
  muster${endpoint} get /config/db/host
  muster${endpoint} ls /config/
  muster${endpoint} watch /config/ --from-revision 1
  curl -X PUT --data-binary 10.0.0.6 ${url}/v1/kv/config/db/host
  curl ${url}/v1/kv/config/db/host

Stop with Ctrl-C.`;
}
