import type { Command } from 'commander';
import { ttlArgument } from '../arguments.js';
import type { CliContext } from '../context.js';
import type { ServerFlags } from '../server-config.js';
import { resolveServerConfig, SERVER_DEFAULTS } from '../server-config.js';

/** `muster server`: run the HTTP API on the embedded store until SIGINT/SIGTERM. */
export function registerServer(program: Command, ctx: CliContext): void {
  program
    .command('server')
    .description(
      'run a muster server on the embedded store (SQLite in --data-dir), or in front of an etcd cluster (--etcd)',
    )
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
    .option(
      '--etcd <urls>',
      'run on this etcd cluster instead of the embedded store (comma-separated client URLs); also MUSTER_ETCD',
    )
    .option(
      '--etcd-prefix <prefix>',
      `keep every key under this etcd prefix; also MUSTER_ETCD_PREFIX (default ${SERVER_DEFAULTS.etcdPrefix})`,
    )
    .option('--etcd-ca <file>', 'CA certificate to verify etcd with (PEM)')
    .option('--etcd-cert <file>', 'client certificate for etcd (PEM), with --etcd-key')
    .option('--etcd-key <file>', 'client key for etcd (PEM), with --etcd-cert')
    .option(
      '--duties-ttl <duration>',
      'if the server running the duties dies, another takes them over within this (default 10s)',
      ttlArgument,
    )
    .option(
      '--admin-token-file <file>',
      'the first admin token, provided by automation (a file holding it); also MUSTER_ADMIN_TOKEN (the token itself)',
    )
    .option('--tls-cert <file>', 'serve HTTPS with this certificate (PEM), with --tls-key')
    .option('--tls-key <file>', "the certificate's private key (PEM)")
    .option('--tls-client-ca <file>', 'require client certificates signed by this CA (PEM)')
    .option('--rate-limit <n>', 'requests per second per token (a burst of twice as many); default: none')
    .option('--max-watches <n>', 'watches open at once per token (default 1000)')
    .option('--max-blocked <n>', 'blocking calls (locks, waits…) waiting at once per token (default 10000)')
    .option('--audit-retention <duration>', 'how long audit records are kept (default 7d)')
    .option('--job-retention <duration>', 'how long finished jobs (and their output) are kept (default 7d)')
    .option(
      '--job-output-limit <bytes>',
      'output kept per node per job, the oldest dropped: 1048576, 512KiB, 4MiB (default 1MiB)',
    )
    .option(
      '--noah-listen <host:port>',
      "also serve Noah's API on this address (Noah's clients use port 5678); also MUSTER_NOAH_LISTEN",
    )
    .option('--insecure-no-auth', 'no tokens: anyone who reaches the port may do anything (throwaway demos only)')
    .option(
      '--retention <revisions>',
      `revisions of history kept for watches; also MUSTER_RETENTION (default ${SERVER_DEFAULTS.retention})`,
    )
    .addHelpText(
      'after',
      `
Settings come from flags, else environment variables, else the config file,
else the defaults. /healthz answers 200 once the server is ready. SIGINT or
SIGTERM stop it gracefully: no new connections, running requests finish, the
store is closed; every write that was acknowledged is on disk.

Auth is on: every request needs a token (--token, MUSTER_TOKEN or
~/.config/muster/config.json for the CLI). On first start the server makes an
admin token and keeps it in <data-dir>/admin.token (mode 0600); it prints the
file's path, never the token. The CLI on this machine finds that file by itself
(it looks in ./muster-data, or MUSTER_DATA_DIR). With --data-dir :memory: and no
provided token, the admin token is printed once. Make more with
\`muster token create --role operator|reader|node|cluster\`.

With --etcd, the server keeps no state of its own: run as many as you like on
one etcd cluster, behind a load balancer. Background duties (history compaction;
later webhooks, jobs, plans) run on one of them, chosen by an election; the key
/muster/duties/leader says which, and when it last ran them.

Examples:
  $ muster server
  $ muster server --listen 0.0.0.0:4100 --data-dir /var/lib/muster
  $ muster server --listen 0.0.0.0:4100 --etcd http://10.0.0.1:2379,http://10.0.0.2:2379,http://10.0.0.3:2379
  $ MUSTER_DATA_DIR=:memory: muster server --listen 127.0.0.1:0   # throwaway store, any free port
  $ muster server --listen 0.0.0.0:4100 --tls-cert server.pem --tls-key server-key.pem
                                      # clients then use https:// and --ca ca.pem
  $ muster server --noah-listen 0.0.0.0:5678   # Noah's clients and Chef cookbook, unchanged (docs/noah.md)`,
    )
    .action(async (flags: ServerFlags) => {
      const config = resolveServerConfig(flags, ctx.io.env);
      // The server's modules (Fastify, the stores) load only for this command:
      // every other command is a small HTTP client.
      const { runServer } = await import('./server-run.js');
      const extra = flags as ServerFlags & {
        dutiesTtl?: number;
        adminTokenFile?: string;
        insecureNoAuth?: boolean;
        tlsCert?: string;
        tlsKey?: string;
        tlsClientCa?: string;
        rateLimit?: string;
        maxWatches?: string;
        maxBlocked?: string;
        auditRetention?: string;
        jobRetention?: string;
        jobOutputLimit?: string;
      };
      await runServer(config, extra.dutiesTtl ?? 10, ctx, {
        insecureNoAuth: extra.insecureNoAuth === true,
        adminTokenFile: extra.adminTokenFile,
        adminToken: ctx.io.env.MUSTER_ADMIN_TOKEN,
        tlsCert: extra.tlsCert,
        tlsKey: extra.tlsKey,
        tlsClientCa: extra.tlsClientCa,
        rateLimit: extra.rateLimit,
        maxWatches: extra.maxWatches,
        maxBlocked: extra.maxBlocked,
        auditRetention: extra.auditRetention,
        jobRetention: extra.jobRetention,
        jobOutputLimit: extra.jobOutputLimit,
      });
    });
}
