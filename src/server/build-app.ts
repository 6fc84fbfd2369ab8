import { setMaxListeners } from 'node:events';
import Fastify, { LogController } from 'fastify';
import type { FastifyInstance, FastifyServerOptions } from 'fastify';
import swagger from '@fastify/swagger';
import { AjvCompiler } from '@fastify/ajv-compiler';
import type { Backend } from '../core/backend.js';
import type { Runtime } from '../core/runtime.js';
import { systemRuntime } from '../core/runtime.js';
import { BackendClosedError, InvalidArgumentError } from '../core/errors.js';
import { answerClientError } from './client-errors.js';
import { errorResponse, installErrorHandling } from './error-handler.js';
import { ServerMetrics } from './metrics.js';
import { accessControl } from './access.js';
import type { TokenRegistry } from '../security/token-registry.js';
import { tokenRoutes } from './routes/tokens.js';
import { auditRoutes } from './routes/audit.js';
import { AuditLog } from '../security/audit-log.js';
import { Limits } from './limits.js';
import type { LimitSettings } from './limits.js';
import { healthRoutes } from './routes/health.js';
import { kvRoutes } from './routes/kv.js';
import { leaseRoutes } from './routes/leases.js';
import { primitiveRoutes } from './routes/primitives.js';
import { snapshotRoutes } from './routes/snapshot.js';
import { txnRoutes } from './routes/txn.js';
import { watchRoutes } from './routes/watch.js';
import { access } from './access.js';
import { noahRoutes } from '../noah/routes.js';
import { uiRoutes } from './routes/ui.js';
import { primitiveListRoutes } from './routes/primitive-list.js';
import { UiSessions } from './ui/ui-sessions.js';
import type { UiSessionSettings } from './ui/ui-sessions.js';
import { defaultUiDir, loadUiAssets } from './ui/ui-assets.js';
import { jobRoutes } from './routes/jobs.js';
import { planRoutes } from './routes/plans.js';
import { nodeRoutes } from './routes/nodes.js';
import { registryDirectory } from '../jobs/registry-directory.js';
import type { NodeDirectory } from '../jobs/node-directory.js';
import { JobStore } from '../jobs/job-store.js';
import { triggerRoutes } from './routes/triggers.js';
import { TriggerStore } from '../jobs/trigger-store.js';
import { hookRoutes } from './routes/hooks.js';
import { HookStore } from '../hooks/hook-store.js';

export interface AppDeps {
  readonly backend: Backend;
  /** pino options, or false for no logging. @default true: warnings and errors only (pino to stdout) */
  readonly logger?: FastifyServerOptions['logger'];
  /** The largest value a key may hold, in bytes. @default 1 MiB */
  readonly maxValueBytes?: number;
  /** Time (heartbeats, timeouts, lock-delays) and randomness. @default systemRuntime */
  readonly runtime?: Runtime;
  /**
   * Who may do what: the tokens to check every request against, or 'off' (every
   * request is an admin's: `--insecure-no-auth`, and tests of other things).
   */
  readonly auth: { readonly tokens: TokenRegistry } | 'off';
  /** Serve HTTPS with this certificate and key (PEM); with `clientCa`, clients must present a certificate it signed. */
  readonly tls?: ServerTls;
  /** Per-token limits (with auth on). @default DEFAULT_LIMITS */
  readonly limits?: LimitSettings;
  /**
   * The dashboard: the folder of its built files (null: none served), and how long
   * its sign-in sessions last. @default dist/ui/ of this package, when built
   */
  readonly ui?: { readonly dir?: string | null; readonly sessions?: UiSessionSettings };
  /** Output kept per node per job, bytes (`--job-output-limit`). @default 1 MiB */
  readonly jobOutputLimit?: number;
  /** Which nodes there are and which are up (groups, plans). @default the registry in the store */
  readonly nodeDirectory?: NodeDirectory;
}

export interface ServerTls {
  readonly cert: string;
  readonly key: string;
  readonly clientCa?: string;
}

export const DEFAULT_MAX_VALUE_BYTES = 1024 * 1024;
/** JSON bodies (txn, primitives) may be this much larger than a value, for encoding and framing. */
const JSON_BODY_SLACK = 512 * 1024;

/** How requests are validated (see strictBodies for what is coerced). */
const AJV_OPTIONS = {
  removeAdditional: false,
  // Query strings and path parameters are text: "?limit=10" is the number 10.
  coerceTypes: 'array',
  useDefaults: true,
  allErrors: false,
  allowUnionTypes: true,
  // "1e309" is Infinity: not a revision, a limit or a TTL.
  strictNumbers: true,
} as const;

const ajvCompilers = AjvCompiler();

/**
 * Query strings, parameters and headers are coerced to the schema's types; a
 * JSON body is taken as sent: `"ttl": "30"` is refused, not read as 30, and
 * `"exitCode": null` stays null (coerced, it became 0: a command killed by a
 * signal counted as succeeded).
 */
const strictBodies: typeof ajvCompilers = (externalSchemas) => {
  const coercing = ajvCompilers(externalSchemas, { customOptions: AJV_OPTIONS });
  const strict = ajvCompilers(externalSchemas, { customOptions: { ...AJV_OPTIONS, coerceTypes: false } });
  return (route) => (route.httpPart === 'body' ? strict(route) : coercing(route));
};

/**
 * Build the HTTP API v1 app on a backend. Not started: the caller listens (the
 * CLI's `muster server`) or injects requests (tests).
 */
export async function buildApp(deps: AppDeps): Promise<FastifyInstance> {
  const maxValueBytes = deps.maxValueBytes ?? DEFAULT_MAX_VALUE_BYTES;
  const clock = (deps.runtime ?? systemRuntime).clock;
  const backend = deps.backend;
  const app = Fastify({
    ...(deps.tls
      ? {
          https: {
            cert: deps.tls.cert,
            key: deps.tls.key,
            ...(deps.tls.clientCa ? { ca: deps.tls.clientCa, requestCert: true, rejectUnauthorized: true } : {}),
          },
        }
      : {}),
    // `true` means warnings and errors only: a line per request would cost the hot path.
    logger: deps.logger === undefined || deps.logger === true ? { level: 'warn' } : deps.logger,
    logController: new LogController({ disableRequestLogging: true }),
    // base64 in a JSON txn is 4/3 of the value.
    bodyLimit: Math.ceil((maxValueBytes * 4) / 3) + JSON_BODY_SLACK,
    // Blocking calls and watches may legitimately last hours.
    requestTimeout: 0,
    connectionTimeout: 0,
    keepAliveTimeout: 72_000,
    return503OnClosing: true,
    // Names may be 128 characters (the default cap of 100 answered 414 to valid names);
    // longer ones reach the route and get its 400 naming the problem.
    routerOptions: { maxParamLength: 1024 },
    schemaController: { compilersFactory: { buildValidator: strictBodies } },
    // Node answers a request without Host with an empty 400 of its own; the hook below
    // answers it with the catalogue's body instead.
    http: { requireHostHeader: false },
    clientErrorHandler: answerClientError,
    // A URL the router cannot decode (`%ZZ`) gets the same error body as every other bad request.
    frameworkErrors: (error, _request, reply) => {
      const { status, body } = errorResponse(error);
      reply.raw.statusCode = status;
      reply.raw.setHeader('content-type', 'application/json; charset=utf-8');
      reply.raw.end(JSON.stringify(body));
    },
  });
  // A client that sends its request and then closes its side (`printf … | nc`, and
  // the hostile-input test) still gets the answer: Node's default ends the socket at
  // the client's FIN, dropping any answer not yet written.
  (app.server as { httpAllowHalfOpen?: boolean }).httpAllowHalfOpen = true;
  installErrorHandling(app);
  // Ajv coerces a query string "1e309" to Infinity and passes it as an integer
  // (strictNumbers covers bodies, not coerced values): refuse it here, for every route.
  app.addHook('preHandler', async (request) => {
    const query = request.query as Record<string, unknown> | undefined;
    for (const [name, value] of Object.entries(query ?? {})) {
      if (typeof value === 'number' && !Number.isFinite(value)) {
        throw new InvalidArgumentError(`invalid querystring: ${name} must be a finite number`, 'invalid_request');
      }
    }
  });
  app.addHook('onRequest', async (request) => {
    if (request.raw.httpVersion === '1.1' && !request.headers.host) {
      throw new InvalidArgumentError('an HTTP/1.1 request must have a Host header', 'invalid_request');
    }
  });
  // Routes other than /v1/kv take JSON only: a text/plain body is 415
  // unsupported_media_type, not a string that then fails the body schema.
  app.removeContentTypeParser('text/plain');
  // On close, end watch streams and blocked calls (they answer 503 closed) so
  // that close() only waits for ordinary requests to finish.
  const closing = new AbortController();
  // Every open stream and blocked call listens for shutdown (and stops listening when
  // it ends): as many listeners as open requests is expected, not a leak.
  setMaxListeners(0, closing.signal);
  app.addHook('preClose', async () => closing.abort(new BackendClosedError()));
  const shutdown = closing.signal;
  await app.register(swagger, {
    openapi: {
      openapi: '3.0.3',
      info: {
        title: 'muster HTTP API',
        version: '1',
        description: 'Keys with etcd v3 semantics, leases, watches, and coordination primitives.',
      },
    },
  });
  const tokens = deps.auth === 'off' ? null : deps.auth.tokens;
  const limits = tokens === null ? null : new Limits(clock, deps.limits);
  const audit = tokens === null ? null : new AuditLog(backend, clock);
  // What is still pending reaches the store before it closes.
  if (audit !== null) app.addHook('onClose', async () => audit.flush());
  const sessions = new UiSessions(clock, deps.ui?.sessions);
  // Before every route: each declares its access, and this checks it.
  await app.register(accessControl, { backend, tokens, limits, audit, sessions });
  const metrics = new ServerMetrics(backend);
  metrics.install(app);

  await app.register(healthRoutes, { backend });
  await app.register(tokenRoutes, { tokens });
  await app.register(auditRoutes, { audit, clock });
  await app.register(snapshotRoutes, { backend });
  await app.register(kvRoutes, { backend, clock, maxValueBytes, shutdown });
  await app.register(txnRoutes, { backend, maxValueBytes });
  await app.register(leaseRoutes, { backend });
  await app.register(watchRoutes, { backend, clock, shutdown, onWatchCount: (d) => metrics.openWatches.inc(d) });
  await app.register(primitiveRoutes, {
    backend,
    clock,
    shutdown,
    onBlockedCount: (d) => metrics.blockedRequests.inc(d),
  });

  await app.register(primitiveListRoutes, { backend });

  // Noah's API (lusis/Noah) at the root: docs/noah.md. Encapsulated: its raw-body parser and
  // its failure bodies apply to its routes only.
  await app.register(noahRoutes, { backend, clock, maxValueBytes });

  const uiDir = deps.ui?.dir === undefined ? defaultUiDir() : deps.ui.dir;
  await app.register(uiRoutes, { assets: uiDir === null ? null : loadUiAssets(uiDir), tokens, sessions });
  await app.register(jobRoutes, {
    backend,
    clock,
    shutdown,
    store: new JobStore(backend, deps.runtime ?? systemRuntime, {
      ...(deps.jobOutputLimit !== undefined ? { outputLimit: deps.jobOutputLimit } : {}),
    }),
  });
  await app.register(triggerRoutes, { store: new TriggerStore(backend, clock) });
  await app.register(hookRoutes, { store: new HookStore(backend, clock) });
  await app.register(nodeRoutes, { backend, clock });
  await app.register(planRoutes, {
    backend,
    clock,
    shutdown,
    runtime: deps.runtime ?? systemRuntime,
    directory: deps.nodeDirectory ?? registryDirectory(backend, clock),
  });

  app.get('/openapi.json', { schema: { hide: true }, config: { access: access.public } }, async () => app.swagger());
  return app;
}
