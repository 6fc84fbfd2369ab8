import type { AddressInfo } from 'node:net';
import type { Command } from 'commander';
import type { FastifyInstance } from 'fastify';
import type { Backend } from '../../core/backend.js';
import { createBackend } from '../../backends/create-backend.js';
import { buildApp } from '../../server/build-app.js';
import { DutyRunner, compactionDuty, heartbeatDuty } from '../../server/duties/index.js';
import { hostname } from 'node:os';
import { ttlArgument } from '../arguments.js';
import type { CliContext } from '../context.js';
import { aborted, untilInterrupted } from '../interrupt.js';
import type { ServerFlags } from '../server-config.js';
import { resolveServerConfig, SERVER_DEFAULTS } from '../server-config.js';

/** How long running requests get to finish on stop before open streams (watches) are cut. */
const DRAIN_MS = 3000;

/** `muster server`: run the HTTP API on the embedded store until SIGINT/SIGTERM. */
export function registerServer(program: Command, ctx: CliContext): void {
  program
    .command('server')
    .description('run a muster server on the embedded store (SQLite in --data-dir), or in front of an etcd cluster (--etcd)')
    .option('--listen <host:port>', `address to listen on; also MUSTER_LISTEN (default ${SERVER_DEFAULTS.listen})`)
    .option(
      '--data-dir <dir>',
      `folder of the store, or :memory: for a throwaway one; also MUSTER_DATA_DIR (default ${SERVER_DEFAULTS.dataDir})`,
    )
    .option('--config <file>', 'a JSON file {"listen","dataDir","maxValueSize"}; also MUSTER_CONFIG')
    .option(
      '--max-value-size <size>',
      `largest value accepted, such as 512KiB (default ${SERVER_DEFAULTS.maxValueSize})`,
    )
    .option('--etcd <urls>', 'run on this etcd cluster instead of the embedded store (comma-separated client URLs); also MUSTER_ETCD')
    .option('--etcd-prefix <prefix>', `keep every key under this etcd prefix; also MUSTER_ETCD_PREFIX (default ${SERVER_DEFAULTS.etcdPrefix})`)
    .option('--etcd-ca <file>', 'CA certificate to verify etcd with (PEM)')
    .option('--etcd-cert <file>', 'client certificate for etcd (PEM), with --etcd-key')
    .option('--etcd-key <file>', 'client key for etcd (PEM), with --etcd-cert')
    .option('--duties-ttl <duration>', 'if the server running the duties dies, another takes them over within this (default 10s)', ttlArgument)
    .option('--retention <revisions>', `revisions of history kept for watches; also MUSTER_RETENTION (default ${SERVER_DEFAULTS.retention})`)
    .addHelpText(
      'after',
      `
Settings come from flags, else environment variables, else the config file,
else the defaults. /healthz answers 200 once the server is ready. SIGINT or
SIGTERM stop it gracefully: no new connections, running requests finish, the
store is closed; every write that was acknowledged is on disk.

With --etcd, the server keeps no state of its own: run as many as you like on
one etcd cluster, behind a load balancer. Background duties (history compaction;
later webhooks, jobs, plans) run on one of them, chosen by an election; the key
/muster/duties/leader says which, and when it last ran them.

Examples:
  $ muster server
  $ muster server --listen 0.0.0.0:4100 --data-dir /var/lib/muster
  $ muster server --listen 0.0.0.0:4100 --etcd http://10.0.0.1:2379,http://10.0.0.2:2379,http://10.0.0.3:2379
  $ MUSTER_DATA_DIR=:memory: muster server --listen 127.0.0.1:0   # throwaway store, any free port`,
    )
    .action(async (flags: ServerFlags) => {
      const config = resolveServerConfig(flags, ctx.io.env);
      // Signals are caught from the start, so that a stop during startup still closes the store.
      const interrupt = untilInterrupted();
      let backend: Backend | null = null;
      let app: FastifyInstance | null = null;
      let duties: DutyRunner | null = null;
      try {
        backend = await createBackend(
          config.etcd
            ? { kind: 'etcd', endpoints: config.etcd.endpoints, prefix: config.etcd.prefix, ...(config.etcd.tls ? { tls: config.etcd.tls } : {}) }
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
          const dutiesTtl = (flags as ServerFlags & { dutiesTtl?: number }).dutiesTtl ?? 10;
          duties = new DutyRunner({
            backend,
            sessionTtl: dutiesTtl,
            serverId: `${hostname()}:${address.port}/${process.pid}`,
            onError: (error, where) => ctx.warn(`muster: duties: ${where}: ${error instanceof Error ? error.message : String(error)}`),
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
    });
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
