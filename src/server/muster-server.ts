import { createServer } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { hostname } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance, FastifyServerOptions } from 'fastify';
import type { BackendConfig } from '../backends/create-backend.js';
import { createBackend } from '../backends/create-backend.js';
import type { Backend } from '../core/backend.js';
import type { Runtime } from '../core/runtime.js';
import { systemRuntime } from '../core/runtime.js';
import { ADMIN_TOKEN_FILE, bootstrapAdmin } from '../security/admin-bootstrap.js';
import type { AdminOutcome } from '../security/admin-bootstrap.js';
import { TokenRegistry } from '../security/token-registry.js';
import { buildApp } from './build-app.js';
import { MUSTER_API_PATH } from './error-handler.js';
import type { ServerTls } from './build-app.js';
import type { Duty } from './duties/index.js';
import { DutyRunner, compactionDuty, heartbeatDuty } from './duties/index.js';
import { auditRetentionDuty } from './duties/audit-retention-duty.js';
import type { LimitSettings } from './limits.js';
import { jobRetentionDuty, jobSchedulerDuty, triggerDuty } from './duties/job-duties.js';
import type { NodeDirectory } from '../jobs/node-directory.js';
import { registryDirectory } from '../jobs/registry-directory.js';
import { planRunnerDuty } from './duties/plan-duty.js';
import { DEFAULT_JOB_RETENTION_MS } from '../jobs/job-model.js';

/**
 * Where a server is in its life:
 * - STARTING: opening the store, building the app, binding the port;
 * - RUNNING: serving requests; the duties run (on the server that leads them);
 * - DRAINING: no new connections; running requests finish, streams are cut after
 *   `drainMs`, the duties stop and give up their leadership;
 * - STOPPED: the store is closed.
 */
export type ServerState = 'STARTING' | 'RUNNING' | 'DRAINING' | 'STOPPED';

export interface MusterServerOptions {
  /** The store: `{ kind: 'sqlite', dataDir }` (":memory:" for a throwaway one) or `{ kind: 'etcd', endpoints, prefix }`. */
  readonly store: BackendConfig;
  /** @default "127.0.0.1" */
  readonly host?: string;
  /** 0 picks a free port. @default 4100 */
  readonly port?: number;
  /** Time and randomness for the store, the app and the duties. @default systemRuntime */
  readonly runtime?: Runtime;
  /** pino options, or false for none. @default warnings and errors to stdout */
  readonly logger?: FastifyServerOptions['logger'];
  /** @default 1 MiB */
  readonly maxValueBytes?: number;
  /** Revisions of history kept (older ones are compacted by a duty). @default 100000 */
  readonly retention?: number;
  /** The duties' session TTL, in seconds: a dead leader is replaced within it. @default 10 */
  readonly dutiesTtl?: number;
  /** How often the compaction duty looks at the history, in ms. @default 10000 */
  readonly compactionIntervalMs?: number;
  /** More duties to run (webhook delivery, job scheduling, plan steps register here). */
  readonly duties?: readonly Duty[];
  /** How long running requests get on stop before open streams are cut, in ms. @default 3000 */
  readonly drainMs?: number;
  /** This server's name among several (the duties' election value). @default "<hostname>:<port>/<pid>" */
  readonly serverId?: string;
  /** Told about the duties' failures (logged by default). */
  readonly onDutyError?: (error: unknown, where: string) => void;
  /**
   * Who may do what. 'off' lets every request act as an admin (`--insecure-no-auth`).
   * Otherwise tokens are checked, and the first admin token is provided or kept
   * in `adminTokenFile` (see security/admin-bootstrap.ts).
   * @default tokens; the admin token kept in `<dataDir>/admin.token` (an in-memory
   * store's, or etcd's without a data folder, is only in `adminOutcome`)
   */
  readonly auth?: 'off' | { readonly adminToken?: string | undefined; readonly adminTokenFile: string | null };
  /** Serve HTTPS (PEM certificate and key; `clientCa` requires client certificates). @default plain HTTP */
  readonly tls?: ServerTls;
  /** Per-token limits (with auth on). @default 1,000 open watches and 10,000 blocked calls per token, no request rate limit */
  readonly limits?: LimitSettings;
  /** How long audit records are kept, in ms. @default 7 days */
  readonly auditRetentionMs?: number;
  /** Also serve Noah's API (docs/noah.md) on this address, such as 127.0.0.1:5678 (Noah's port). @default none */
  readonly noahListen?: { readonly host: string; readonly port: number };
  /** Output kept per node per job, bytes (`--job-output-limit`). @default 1 MiB */
  readonly jobOutputLimit?: number;
  /** How long finished jobs are kept, ms (`--job-retention`). @default 7 days */
  readonly jobRetentionMs?: number;
  /** Where the job scheduler finds nodes. @default the node registry */
  readonly nodeDirectory?: NodeDirectory;
  /** How often the scheduler checks timeouts and node liveness, ms. @default 1000 */
  readonly jobTickMs?: number;
  /** How often the plan runner looks at running plans, ms. @default 1000 */
  readonly planTickMs?: number;
}

/**
 * One muster server: the store, the HTTP app and the duties, with a documented
 * life (ServerState). The CLI's `muster server`, the tests and the simulator all
 * start one the same way: `await MusterServer.start(options)`, then `stop()`.
 * The duties run on both stores: on etcd the servers in front of one cluster hold
 * an election and only its winner runs them; on the embedded store the one server
 * wins it.
 */
export class MusterServer {
  private currentState: ServerState = 'STARTING';
  private readonly listeners = new Set<(state: ServerState) => void>();
  private stopping: Promise<void> | null = null;
  /** The second address serving Noah's API (`noahListen`), or null. */
  private noahServer: Server | null = null;
  /** Where Noah's API is served too, such as `http://127.0.0.1:5678`, or null. */
  noahUrl: string | null = null;

  private constructor(
    readonly backend: Backend,
    readonly app: FastifyInstance,
    readonly duties: DutyRunner,
    /** Where it listens, such as `http://127.0.0.1:4100`. */
    readonly url: string,
    private readonly drainMs: number,
    /** The tokens (null when auth is off). */
    readonly tokens: TokenRegistry | null,
    /** How the first admin token was set up (null when auth is off). */
    readonly adminOutcome: AdminOutcome | null,
  ) {}

  /** Open the store, build the app, listen, start the duties; resolves once RUNNING. */
  static async start(options: MusterServerOptions): Promise<MusterServer> {
    const runtime = options.runtime ?? systemRuntime;
    const store: BackendConfig =
      options.store.kind === 'sqlite' ? { clock: runtime.clock, ...options.store } : options.store;
    const backend = await createBackend(store);
    let app: FastifyInstance | null = null;
    const auth = options.auth ?? {
      adminTokenFile:
        options.store.kind === 'sqlite' && options.store.dataDir !== ':memory:'
          ? join(options.store.dataDir, ADMIN_TOKEN_FILE)
          : null,
    };
    const tokens = auth === 'off' ? null : new TokenRegistry(backend, runtime.clock);
    // Which nodes there are and which are up: the jobs, the groups and the plans ask it.
    const directory = options.nodeDirectory ?? registryDirectory(backend, runtime.clock);
    try {
      let adminOutcome: AdminOutcome | null = null;
      if (tokens !== null && auth !== 'off') {
        await tokens.start();
        adminOutcome = await bootstrapAdmin(tokens, { provided: auth.adminToken, file: auth.adminTokenFile });
      }
      app = await buildApp({
        backend,
        runtime,
        auth: tokens === null ? 'off' : { tokens },
        ...(options.tls ? { tls: options.tls } : {}),
        ...(options.limits ? { limits: options.limits } : {}),
        ...(options.logger !== undefined ? { logger: options.logger } : {}),
        ...(options.maxValueBytes !== undefined ? { maxValueBytes: options.maxValueBytes } : {}),
        ...(options.jobOutputLimit !== undefined ? { jobOutputLimit: options.jobOutputLimit } : {}),
        nodeDirectory: directory,
      });
      await listen(app, options.host ?? '127.0.0.1', options.port ?? 4100);
      const address = app.server.address() as AddressInfo;
      const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
      const url = `${options.tls ? 'https' : 'http'}://${host}:${address.port}`;
      const log = app.log;
      const duties = new DutyRunner({
        backend,
        runtime,
        sessionTtl: options.dutiesTtl ?? 10,
        serverId: options.serverId ?? `${hostname()}:${address.port}/${process.pid}`,
        onError:
          options.onDutyError ??
          ((error, where) => log.warn(`duties: ${where}: ${error instanceof Error ? error.message : String(error)}`)),
      });
      // Which of several servers leads, and when it last ran the duties: only a
      // shared store has several (on the embedded one it would be a write every few seconds for nobody).
      if (options.store.kind === 'etcd') {
        duties.register(heartbeatDuty({ intervalMs: Math.min(5000, ((options.dutiesTtl ?? 10) * 1000) / 3) }));
      }
      duties.register(
        compactionDuty({
          retention: options.retention ?? 100_000,
          ...(options.compactionIntervalMs !== undefined ? { intervalMs: options.compactionIntervalMs } : {}),
        }),
      );
      if (tokens !== null) {
        duties.register(auditRetentionDuty({ retentionMs: options.auditRetentionMs ?? 7 * 86_400_000 }));
      }
      duties.register(
        jobSchedulerDuty({
          directory,
          ...(options.jobTickMs !== undefined ? { tickMs: options.jobTickMs } : {}),
        }),
      );
      duties.register(jobRetentionDuty({ retentionMs: options.jobRetentionMs ?? DEFAULT_JOB_RETENTION_MS }));
      duties.register(
        planRunnerDuty({ directory, ...(options.planTickMs !== undefined ? { tickMs: options.planTickMs } : {}) }),
      );
      duties.register(triggerDuty(options.jobTickMs !== undefined ? { tickMs: options.jobTickMs } : {}));
      for (const duty of options.duties ?? []) duties.register(duty);
      const server = new MusterServer(backend, app, duties, url, options.drainMs ?? 3000, tokens, adminOutcome);
      if (options.noahListen) {
        const noahServer = await listenNoah(app, options.noahListen, options.tls);
        const noahAddress = noahServer.address() as AddressInfo;
        const noahHost = noahAddress.family === 'IPv6' ? `[${noahAddress.address}]` : noahAddress.address;
        server.noahServer = noahServer;
        server.noahUrl = `${options.tls ? 'https' : 'http'}://${noahHost}:${noahAddress.port}`;
      }
      duties.start();
      server.moveTo('RUNNING');
      return server;
    } catch (error) {
      tokens?.stop();
      if (app !== null) await app.close().catch(() => undefined);
      await backend.close().catch(() => undefined);
      throw error;
    }
  }

  get state(): ServerState {
    return this.currentState;
  }

  /** Called on every change of state; returns a function that stops the calls. */
  onStateChange(listener: (state: ServerState) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /**
   * Drain and stop: stop accepting connections, let running requests finish (open
   * streams such as watches never finish on their own: they are cut after
   * `drainMs`, and their clients resume elsewhere), stop the duties and give up
   * their leadership, close the store. Resolves once STOPPED; calling it again
   * waits for the same stop.
   */
  stop(): Promise<void> {
    this.stopping ??= this.drain();
    return this.stopping;
  }

  private async drain(): Promise<void> {
    this.moveTo('DRAINING');
    try {
      const noah = this.noahServer;
      const noahClosed = noah ? new Promise<void>((done) => noah.close(() => done())) : Promise.resolve();
      noah?.closeIdleConnections();
      const closing = Promise.all([this.app.close(), noahClosed]);
      const timer = setTimeout(() => {
        this.app.server.closeAllConnections();
        noah?.closeAllConnections();
      }, this.drainMs);
      try {
        await closing;
      } finally {
        clearTimeout(timer);
      }
    } finally {
      await this.duties.stop();
      this.tokens?.stop();
      await this.backend.close();
      this.moveTo('STOPPED');
    }
  }

  private moveTo(state: ServerState): void {
    this.currentState = state;
    for (const listener of [...this.listeners]) {
      try {
        listener(state);
      } catch {
        // A listener's failure must not stop the server's own life.
      }
    }
  }
}

async function listen(app: FastifyInstance, host: string, port: number): Promise<void> {
  await app.listen({ host, port }).catch((error: unknown) => {
    const code = (error as { code?: unknown }).code;
    if (code !== 'EADDRINUSE' && code !== 'EADDRNOTAVAIL' && code !== 'EACCES') throw error;
    const why =
      code === 'EADDRINUSE'
        ? 'the address is in use (another server?)'
        : code === 'EACCES'
          ? 'permission denied'
          : 'no such address here';
    throw new Error(`cannot listen on ${host}:${port}: ${why}`, { cause: error });
  });
}

/**
 * A second address for Noah's clients (they hard-code port 5678): the same app, so
 * the same store, tokens and routes; requests under /v1 get Noah's 404 there.
 */
async function listenNoah(
  app: FastifyInstance,
  address: { readonly host: string; readonly port: number },
  tls: ServerTls | undefined,
): Promise<Server> {
  const handler = (request: IncomingMessage, response: ServerResponse): void => {
    const path = (request.url ?? '/').split('?')[0] ?? '/';
    if (MUSTER_API_PATH.test(path)) {
      response.writeHead(404, { 'content-type': 'application/json;charset=utf-8' });
      response.end(' {"result":"failure","error_message":"Resource not found"}');
      return;
    }
    app.routing(request, response);
  };
  const server: Server = tls
    ? (createHttpsServer({ cert: tls.cert, key: tls.key }, handler) as unknown as Server)
    : createServer(handler);
  await new Promise<void>((resolve, reject) => {
    server.once('error', (error: NodeJS.ErrnoException) => {
      const why =
        error.code === 'EADDRINUSE'
          ? 'the address is in use (another server?)'
          : error.code === 'EACCES'
            ? 'permission denied'
            : error.message;
      reject(new Error(`cannot listen on ${address.host}:${address.port} (--noah-listen): ${why}`, { cause: error }));
    });
    server.listen(address.port, address.host, () => resolve());
  });
  return server;
}
