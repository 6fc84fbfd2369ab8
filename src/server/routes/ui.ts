/**
 * The dashboard: its files under /ui/ (strict Content-Security-Policy, no inline
 * script), and signing in and out (`/v1/ui/session`, a cookie bound to a token).
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { FastifyReply, FastifyRequest } from 'fastify';
import Type from 'typebox';
import { InvalidArgumentError, MusterError } from '../../core/errors.js';
import type { TokenRegistry } from '../../security/token-registry.js';
import { access } from '../access.js';
import { WireWhoAmI } from '../../api/wire.js';
import type { UiAsset } from '../ui/ui-assets.js';
import type { UiSessions } from '../ui/ui-sessions.js';
import { sessionCookie, sessionIdOf } from '../ui/ui-sessions.js';

export interface UiRouteDeps {
  /** The built files (null: not built, /ui/ says how to build it). */
  readonly assets: ReadonlyMap<string, UiAsset> | null;
  readonly tokens: TokenRegistry | null;
  readonly sessions: UiSessions;
}

/** No inline script or style, nothing from elsewhere: every asset is bundled. */
export const UI_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "font-src 'self'",
  "connect-src 'self'",
  "manifest-src 'self'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join('; ');

/** The dashboard is not built (a checkout without `npm run build`). */
class UiNotBuiltError extends MusterError {
  readonly code = 'not_found';
  constructor() {
    super('the dashboard is not built: run `npm run build` (it builds dist/ui/), then restart the server');
  }
}

export const uiRoutes: FastifyPluginAsyncTypebox<UiRouteDeps> = async (app, { assets, tokens, sessions }) => {
  const send = (request: FastifyRequest, reply: FastifyReply, path: string): FastifyReply => {
    if (assets === null) throw new UiNotBuiltError();
    // Hash routes (#/jobs) keep the page itself at /ui/; any other unknown page is the app too.
    const asset = assets.get(path) ?? (path.startsWith('assets/') ? undefined : assets.get('index.html'));
    if (!asset) {
      return reply
        .code(404)
        .type('application/json; charset=utf-8')
        .send({ error: { code: 'not_found', message: `no dashboard file /ui/${path}` } });
    }
    reply
      .header('content-security-policy', UI_CSP)
      .header('x-content-type-options', 'nosniff')
      .header('referrer-policy', 'no-referrer')
      .header('x-frame-options', 'DENY')
      .header('cache-control', asset.immutable ? 'public, max-age=31536000, immutable' : 'no-cache')
      .header('etag', asset.etag)
      .header('vary', 'accept-encoding')
      .type(asset.type);
    if (request.headers['if-none-match'] === asset.etag) return reply.code(304).send();
    const gzipOk = asset.gzip !== null && /\bgzip\b/.test(String(request.headers['accept-encoding'] ?? ''));
    if (gzipOk) reply.header('content-encoding', 'gzip');
    return reply.send(gzipOk ? asset.gzip : asset.body);
  };

  app.get('/ui', { schema: { hide: true }, config: { access: access.public } }, async (_request, reply) =>
    reply.redirect('/ui/', 302),
  );
  app.get('/ui/', { schema: { hide: true }, config: { access: access.public } }, async (request, reply) =>
    send(request, reply, 'index.html'),
  );
  app.get<{ Params: { '*': string } }>(
    '/ui/*',
    { schema: { hide: true }, config: { access: access.public } },
    async (request, reply) => {
      const path = request.params['*'];
      if (path.split('/').some((segment) => segment === '..' || segment === '.')) {
        throw new InvalidArgumentError('a dashboard path may not contain "." or ".." segments', 'invalid_request');
      }
      return send(request, reply, path);
    },
  );

  app.post(
    '/v1/ui/session',
    {
      // The token in the body is checked here: the route itself is how one signs in.
      config: { access: access.public },
      schema: {
        summary: "Sign in to the dashboard: a token in, an HttpOnly session cookie out (the token's rights, unchanged)",
        body: Type.Object({ token: Type.String({ minLength: 1, maxLength: 512 }) }, { additionalProperties: false }),
        response: { 200: WireWhoAmI },
      },
    },
    async (request, reply) => {
      if (tokens === null) {
        return { auth: false, tokenId: 'none', role: 'admin' as const, policy: 'admin (--insecure-no-auth)' };
      }
      const principal = await tokens.authenticate(request.body.token.trim());
      const id = sessions.create(request.body.token.trim());
      reply.header('set-cookie', sessionCookie(id, request.protocol === 'https', sessions.cookieMaxAgeSeconds));
      return { auth: true, tokenId: principal.tokenId, role: principal.role, policy: principal.policy.describe() };
    },
  );

  app.delete(
    '/v1/ui/session',
    {
      config: { access: access.public },
      schema: {
        summary: "Sign out of the dashboard: the session ends on the server and the browser's cookie is cleared",
        response: { 200: Type.Object({ signedOut: Type.Boolean() }) },
      },
    },
    async (request, reply) => {
      const id = sessionIdOf(request);
      const ended = id !== undefined && sessions.end(id);
      reply.header('set-cookie', sessionCookie(null, request.protocol === 'https', 0));
      return { signedOut: ended };
    },
  );
};
