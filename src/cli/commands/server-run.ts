import { MusterServer } from '../../server/muster-server.js';
import type { CliContext } from '../context.js';
import { aborted, untilInterrupted } from '../interrupt.js';
import type { ServerConfig } from '../server-config.js';

/** Run the server with `config` until SIGINT/SIGTERM (`muster server`). */
export async function runServer(config: ServerConfig, dutiesTtl: number, ctx: CliContext): Promise<void> {
  // Signals are caught from the start, so that a stop during startup still closes the store.
  const interrupt = untilInterrupted();
  let server: MusterServer | null = null;
  try {
    server = await MusterServer.start({
      store: config.etcd
        ? {
            kind: 'etcd',
            endpoints: config.etcd.endpoints,
            prefix: config.etcd.prefix,
            ...(config.etcd.tls ? { tls: config.etcd.tls } : {}),
          }
        : { kind: 'sqlite', dataDir: config.dataDir },
      host: config.host,
      port: config.port,
      maxValueBytes: config.maxValueBytes,
      retention: config.retention,
      dutiesTtl,
      onDutyError: (error, where) =>
        ctx.warn(`muster: duties: ${where}: ${error instanceof Error ? error.message : String(error)}`),
    });
    const store = config.etcd ? `etcd ${config.etcd.endpoints.join(',')} under ${config.etcd.prefix}` : config.dataDir;
    ctx.print(welcome(server.url, store));
    await aborted(interrupt.signal);
    ctx.warn('muster: stopping (finishing running requests, closing the store)');
  } finally {
    interrupt.dispose();
    if (server !== null) await server.stop();
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
