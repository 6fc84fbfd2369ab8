import { defaultUiDir } from '../../server/ui/ui-assets.js';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ADMIN_TOKEN_FILE } from '../../security/admin-bootstrap.js';
import type { AdminOutcome } from '../../security/admin-bootstrap.js';
import { MusterServer } from '../../server/muster-server.js';
import { UsageError } from '../exit-codes.js';
import { parseDuration } from '../../core/duration.js';
import type { LimitSettings } from '../../server/limits.js';
import type { ServerTls } from '../../server/build-app.js';
import type { CliContext } from '../context.js';
import { aborted, untilInterrupted } from '../interrupt.js';
import type { ServerConfig } from '../server-config.js';

/** Run the server with `config` until SIGINT/SIGTERM (`muster server`). */
export interface AuthFlags {
  readonly insecureNoAuth: boolean;
  /** --admin-token-file */
  readonly adminTokenFile?: string | undefined;
  /** MUSTER_ADMIN_TOKEN */
  readonly adminToken?: string | undefined;
  readonly tlsCert?: string | undefined;
  readonly tlsKey?: string | undefined;
  readonly tlsClientCa?: string | undefined;
  readonly rateLimit?: string | undefined;
  readonly maxWatches?: string | undefined;
  readonly maxBlocked?: string | undefined;
  readonly auditRetention?: string | undefined;
  readonly jobRetention?: string | undefined;
  readonly jobOutputLimit?: string | undefined;
}

export async function runServer(
  config: ServerConfig,
  dutiesTtl: number,
  ctx: CliContext,
  authFlags: AuthFlags = { insecureNoAuth: false },
): Promise<void> {
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
      ...(config.noahListen ? { noahListen: config.noahListen } : {}),
      maxValueBytes: config.maxValueBytes,
      retention: config.retention,
      dutiesTtl,
      auth: authOf(config, authFlags),
      ...tlsOf(authFlags),
      limits: limitsOf(authFlags),
      ...(authFlags.auditRetention !== undefined
        ? { auditRetentionMs: durationOf(authFlags.auditRetention, '--audit-retention') }
        : {}),
      ...(authFlags.jobRetention !== undefined
        ? { jobRetentionMs: durationOf(authFlags.jobRetention, '--job-retention') }
        : {}),
      ...(authFlags.jobOutputLimit !== undefined ? { jobOutputLimit: bytesOf(authFlags.jobOutputLimit) } : {}),
      onDutyError: (error, where) =>
        ctx.warn(`muster: duties: ${where}: ${error instanceof Error ? error.message : String(error)}`),
    });
    const store = config.etcd ? `etcd ${config.etcd.endpoints.join(',')} under ${config.etcd.prefix}` : config.dataDir;
    ctx.print(welcome(server.url, store, server.adminOutcome));
    if (server.noahUrl !== null) ctx.print(`Noah's API also on ${server.noahUrl} (docs/noah.md)`);
    ctx.print(
      defaultUiDir() === null
        ? 'dashboard: not built (run `npm run build`), then at ' + `${server.url}/ui/`
        : `dashboard: ${server.url}/ui/ (sign in with a token${server.adminOutcome?.kind === 'file' ? `: the admin's is in ${server.adminOutcome.file}` : ''})`,
    );
    if (server.adminOutcome === null) {
      ctx.warn(
        'muster: WARNING: --insecure-no-auth: there are no tokens; anyone who can reach this port can read, ' +
          'write, take locks and release them. Use it only for a throwaway demo.',
      );
    } else if (server.adminOutcome.kind === 'file') {
      ctx.print(
        `admin token: ${server.adminOutcome.created ? 'created in' : 'kept in'} ${server.adminOutcome.file} (mode 0600); ` +
          'the CLI on this machine uses it from there',
      );
    } else if (server.adminOutcome.kind === 'printed') {
      ctx.print(`admin token (shown once, this store is in memory): ${server.adminOutcome.token}`);
    } else {
      ctx.print('admin token: the one provided at start');
    }
    await aborted(interrupt.signal);
    ctx.warn('muster: stopping (finishing running requests, closing the store)');
  } finally {
    interrupt.dispose();
    if (server !== null) await server.stop();
  }
}

function welcome(url: string, store: string, outcome: AdminOutcome | null): string {
  const endpoint = url === 'http://127.0.0.1:4100' ? '' : ` --endpoint ${url}`;
  const auth =
    outcome === null
      ? ''
      : outcome.kind === 'file'
        ? `-H "Authorization: Bearer $(cat ${outcome.file})" `
        : '-H "Authorization: Bearer $TOKEN" ';
  return `muster listening on ${url}
data: ${store === ':memory:' ? 'in memory (lost when the server stops)' : store}

Try it from another shell:
  muster${endpoint} put /config/db/host 10.0.0.5
  muster${endpoint} get /config/db/host
  muster${endpoint} ls /config/
  muster${endpoint} watch /config/ --from-revision 1
  curl ${auth}-X PUT --data-binary 10.0.0.6 ${url}/v1/kv/config/db/host
  curl ${auth}${url}/v1/kv/config/db/host

Stop with Ctrl-C.`;
}

function authOf(
  config: ServerConfig,
  flags: AuthFlags,
): 'off' | { adminToken?: string; adminTokenFile: string | null } {
  if (flags.insecureNoAuth) return 'off';
  const provided =
    flags.adminTokenFile !== undefined ? readFileSync(flags.adminTokenFile, 'utf8').trim() : flags.adminToken?.trim();
  const file = config.dataDir === ':memory:' ? null : join(config.dataDir, ADMIN_TOKEN_FILE);
  return { ...(provided ? { adminToken: provided } : {}), adminTokenFile: file };
}

function tlsOf(flags: AuthFlags): { tls?: ServerTls } {
  if (flags.tlsCert === undefined && flags.tlsKey === undefined) {
    if (flags.tlsClientCa !== undefined) throw new UsageError('--tls-client-ca needs --tls-cert and --tls-key');
    return {};
  }
  if (flags.tlsCert === undefined || flags.tlsKey === undefined) {
    throw new UsageError('HTTPS needs both --tls-cert and --tls-key');
  }
  const read = (file: string, what: string) => {
    try {
      return readFileSync(file, 'utf8');
    } catch (error) {
      throw new UsageError(`cannot read the ${what} ${file}: ${(error as Error).message}`);
    }
  };
  return {
    tls: {
      cert: read(flags.tlsCert, 'certificate'),
      key: read(flags.tlsKey, 'key'),
      ...(flags.tlsClientCa !== undefined ? { clientCa: read(flags.tlsClientCa, 'client CA') } : {}),
    },
  };
}

function count(text: string | undefined, flag: string): number | undefined {
  if (text === undefined) return undefined;
  const n = Number(text);
  if (!Number.isInteger(n) || n < 0)
    throw new UsageError(`${flag} must be a whole number ≥ 0 (0: no limit), got ${JSON.stringify(text)}`);
  return n;
}

function limitsOf(flags: AuthFlags): LimitSettings {
  const rate = count(flags.rateLimit, '--rate-limit');
  const watches = count(flags.maxWatches, '--max-watches');
  const blocked = count(flags.maxBlocked, '--max-blocked');
  return {
    ...(rate !== undefined ? { requestsPerSecond: rate } : {}),
    ...(watches !== undefined ? { watches } : {}),
    ...(blocked !== undefined ? { blocked } : {}),
  };
}

function durationOf(text: string, flag: string): number {
  try {
    return parseDuration(text, flag);
  } catch (error) {
    throw new UsageError(`${flag}: ${(error as Error).message}`);
  }
}

/** A size such as 1048576, 512KiB or 4MiB (`--job-output-limit`). */
function bytesOf(text: string): number {
  const match = /^([0-9]+)\s*(B|KiB|MiB|KB|MB)?$/i.exec(text.trim());
  const units: Record<string, number> = { b: 1, kib: 1024, kb: 1024, mib: 1024 * 1024, mb: 1024 * 1024 };
  const bytes = match ? Number(match[1]) * (units[(match[2] ?? 'b').toLowerCase()] ?? 1) : NaN;
  if (!Number.isSafeInteger(bytes) || bytes < 1024 || bytes > 1024 * 1024 * 1024) {
    throw new UsageError(
      `--job-output-limit must be a size from 1KiB to 1GiB, such as 1048576, 512KiB or 4MiB, got ${JSON.stringify(text)}`,
    );
  }
  return bytes;
}
