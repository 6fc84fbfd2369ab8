import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { WireErrorBody } from '../api/wire.js';
import { MusterError } from '../core/errors.js';
import type { ErrorCode } from '../core/error-catalogue.js';
import { errorCatalogue, isCatalogued } from '../core/error-catalogue.js';

/** Fastify's own error codes, mapped to ours. */
const FASTIFY_CODES: Record<string, ErrorCode> = {
  FST_ERR_CTP_BODY_TOO_LARGE: 'body_too_large',
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'unsupported_media_type',
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: 'invalid_request',
  FST_ERR_CTP_EMPTY_JSON_BODY: 'invalid_json',
  FST_ERR_CTP_INVALID_JSON_BODY: 'invalid_json',
  FST_ERR_CTP_EMPTY_TYPE: 'unsupported_media_type',
  FST_ERR_CTP_INVALID_TYPE: 'unsupported_media_type',
  FST_ERR_VALIDATION: 'invalid_request',
  FST_ERR_BAD_URL: 'invalid_request',
};

/** Fields of an error worth showing to the caller (its context), e.g. currentModRevision. */
function contextOf(error: MusterError): Record<string, unknown> {
  const context: Record<string, unknown> = {};
  for (const [field, value] of Object.entries(error)) {
    if (field === 'code' || field === 'retryable') continue;
    if (['string', 'number', 'boolean'].includes(typeof value)) context[field] = value;
  }
  if (error.retryable) context.retryable = true;
  return context;
}

/** Turn any error into the status and `{ error: { code, message, ... } }` body the API answers with. */
export function errorResponse(error: unknown): { status: number; body: WireErrorBody } {
  if (error instanceof MusterError) {
    const code = isCatalogued(error.code) ? error.code : 'invalid_argument';
    return {
      status: errorCatalogue[code].status,
      body: { error: { code: error.code, message: error.message, ...contextOf(error) } },
    };
  }
  const fastifyError = error as Partial<FastifyError> & { status?: number };
  if (fastifyError.validation) {
    return { status: 400, body: { error: { code: 'invalid_request', message: validationMessage(fastifyError) } } };
  }
  const mapped = fastifyError.code ? FASTIFY_CODES[fastifyError.code] : undefined;
  if (mapped)
    return {
      status: errorCatalogue[mapped].status,
      body: { error: { code: mapped, message: fastifyError.message ?? mapped } },
    };
  if (error instanceof SyntaxError)
    return { status: 400, body: { error: { code: 'invalid_json', message: error.message } } };
  const status = fastifyError.statusCode ?? fastifyError.status;
  if (status === 414) {
    const message = 'the request path is too long: names are at most 128 characters, lease ids 16, keys 1 KiB';
    return { status, body: { error: { code: 'uri_too_long', message } } };
  }
  if (status && status >= 400 && status < 500) {
    return {
      status: 400,
      body: { error: { code: 'invalid_request', message: fastifyError.message ?? 'bad request' } },
    };
  }
  return { status: 500, body: { error: { code: 'internal', message: 'internal error: see the server log' } } };
}

/** Name the field that failed validation, e.g. "querystring: unknown field bogus". */
function validationMessage(error: Partial<FastifyError>): string {
  const where = error.validationContext ?? 'request';
  const first = error.validation?.[0];
  if (!first) return `invalid ${where}`;
  const field = first.instancePath.replace(/^\//, '').replace(/\//g, '.');
  const params = first.params as Record<string, unknown>;
  if (first.keyword === 'additionalProperties') {
    return `invalid ${where}: unknown field ${field ? field + '.' : ''}${String(params.additionalProperty)}`;
  }
  if (first.keyword === 'required') {
    return `invalid ${where}: missing field ${field ? field + '.' : ''}${String(params.missingProperty)}`;
  }
  return `invalid ${where}: ${field || 'value'} ${first.message ?? 'is invalid'}`;
}

/** A route's URL pattern as a regex over request paths: `:param` is one segment, `*` the rest. */
function patternOf(url: string): RegExp {
  const source = url
    .split(/(\*|:[A-Za-z0-9_]+)/)
    .map((part) => (part === '*' ? '.*' : part.startsWith(':') ? '[^/]+' : part.replace(/[.+?^${}()|[\]\\]/g, '\\$&')))
    .join('');
  return new RegExp(`^${source}$`);
}

/**
 * Install the one error handler, and the handler of unmatched requests: 405
 * `method_not_allowed` (with Allow) when the path exists under other methods,
 * else 404 `not_found`. Call before any route is registered.
 */
/** muster's own API: `/v<N>` and below. Other paths are Noah's (docs/noah.md). */
export const MUSTER_API_PATH = /^\/v\d+(?:\/|$)/;

export function installErrorHandling(app: FastifyInstance): void {
  const routes: { pattern: RegExp; methods: string[] }[] = [];
  app.addHook('onRoute', (route) => {
    const methods = Array.isArray(route.method) ? route.method : [route.method];
    routes.push({ pattern: patternOf(route.url), methods: methods.map(String) });
  });
  app.setErrorHandler((error: unknown, request: FastifyRequest, reply: FastifyReply) => {
    const { status, body } = errorResponse(error);
    if (status >= 500 && body.error.code === 'internal') request.log.error({ err: error }, 'request failed');
    return reply.status(status).send(body);
  });
  app.setNotFoundHandler((request, reply) => {
    const path = request.url.split('?')[0] ?? '';
    // Outside muster's versioned API (/v1, /v2…) is Noah's (docs/noah.md): its 404 body, byte for byte.
    if (!MUSTER_API_PATH.test(path)) {
      return reply
        .status(404)
        .type('application/json;charset=utf-8')
        .send(' {"result":"failure","error_message":"Resource not found"}');
    }
    const allowed = new Set(routes.filter((r) => r.pattern.test(path)).flatMap((r) => r.methods));
    if (allowed.size > 0 && !allowed.has(request.method)) {
      const allow = [...allowed].sort().join(', ');
      return reply
        .status(405)
        .header('allow', allow)
        .send({ error: { code: 'method_not_allowed', message: `${path} takes ${allow}, not ${request.method}` } });
    }
    return reply.status(404).send({ error: { code: 'not_found', message: `no route ${request.method} ${path}` } });
  });
}
