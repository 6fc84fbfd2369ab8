import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { SqliteBackend } from '../../src/backends/sqlite/sqlite-backend.js';
import { ManualClock } from '../../src/core/clock.js';
import { buildApp } from '../../src/server/build-app.js';
import { defaultUiDir } from '../../src/server/ui/ui-assets.js';
import { TokenRegistry } from '../../src/security/token-registry.js';
import type { FastifyInstance } from 'fastify';
import { MusterClient } from '../../src/client/muster-client.js';

/**
 * The dashboard's server side: its files under /ui/ (CSP, caching, gzip), and
 * signing in with a token for an HttpOnly session cookie that the access checks
 * treat exactly as the token (tests in a browser: test/ui/).
 */

let dir: string;
let app: FastifyInstance;
let url: string;
let backend: SqliteBackend;
let tokens: TokenRegistry;
const clock = new ManualClock(Date.parse('2026-12-04T00:00:00Z'));
const secret: Record<string, string> = {};
const BIG_JS = 'console.log("muster");\n'.repeat(200);

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'muster-ui-'));
  mkdirSync(join(dir, 'assets'));
  writeFileSync(
    join(dir, 'index.html'),
    '<!doctype html><script type="module" src="/ui/assets/app-abc123.js"></script>',
  );
  writeFileSync(join(dir, 'assets', 'app-abc123.js'), BIG_JS);
  backend = SqliteBackend.open({ dataDir: ':memory:', clock });
  tokens = new TokenRegistry(backend, clock);
  await tokens.start();
  for (const spec of [
    { role: 'admin' as const },
    { role: 'reader' as const },
    { role: 'cluster' as const, cluster: 'k8s' },
  ]) {
    secret[spec.role] = (await tokens.create(spec)).token;
  }
  app = await buildApp({
    backend,
    auth: { tokens },
    logger: false,
    runtime: { clock, random: Math.random },
    ui: { dir, sessions: { idleMs: 60_000 } },
  });
  await app.listen({ host: '127.0.0.1', port: 0 });
  const address = app.server.address();
  if (address === null || typeof address === 'string') throw new Error('no address');
  url = `http://127.0.0.1:${address.port}`;
});

afterAll(async () => {
  tokens.stop();
  await app.close();
  await backend.close();
  rmSync(dir, { recursive: true, force: true });
});

async function signIn(token: string): Promise<{ status: number; cookie: string | null; body: unknown }> {
  const res = await fetch(`${url}/v1/ui/session`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ token }),
  });
  const setCookie = res.headers.get('set-cookie');
  return { status: res.status, cookie: setCookie ? setCookie.split(';')[0]! : null, body: await res.json() };
}

describe('the dashboard files', () => {
  test('/ui/ is the page, with a strict CSP, revalidated every time', async () => {
    const res = await fetch(`${url}/ui/`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/html/);
    const csp = res.headers.get('content-security-policy') ?? '';
    expect(csp).toContain("script-src 'self'");
    expect(csp).toContain("default-src 'none'");
    expect(csp).not.toContain('unsafe-inline');
    expect(res.headers.get('x-content-type-options')).toBe('nosniff');
    expect(res.headers.get('cache-control')).toBe('no-cache');
    expect(await res.text()).toContain('/ui/assets/app-abc123.js');
    // The ETag answers 304 for a page the browser has.
    const again = await fetch(`${url}/ui/`, { headers: { 'if-none-match': res.headers.get('etag')! } });
    expect(again.status).toBe(304);
  });

  test('hashed assets are cached for a year and sent gzipped to who accepts it', async () => {
    const res = await fetch(`${url}/ui/assets/app-abc123.js`, { headers: { 'accept-encoding': 'identity' } });
    expect(res.status).toBe(200);
    expect(res.headers.get('cache-control')).toBe('public, max-age=31536000, immutable');
    expect(res.headers.get('content-type')).toMatch(/^text\/javascript/);
    expect(await res.text()).toBe(BIG_JS);
    // Raw request (fetch would decompress on its own): the bytes on the wire are gzip.
    const raw = await app.inject({
      method: 'GET',
      url: '/ui/assets/app-abc123.js',
      headers: { 'accept-encoding': 'gzip' },
    });
    expect(raw.headers['content-encoding']).toBe('gzip');
    expect(raw.rawPayload.length).toBeLessThan(BIG_JS.length / 5);
    expect(gunzipSync(raw.rawPayload).toString()).toBe(BIG_JS);
  });

  test('/ui redirects to /ui/; unknown pages are the app; a missing asset is a JSON 404; ".." is refused', async () => {
    const redirect = await fetch(`${url}/ui`, { redirect: 'manual' });
    expect(redirect.status).toBe(302);
    expect(redirect.headers.get('location')).toBe('/ui/');
    const page = await fetch(`${url}/ui/jobs/123`);
    expect(page.status).toBe(200);
    expect(await page.text()).toContain('<!doctype html>');
    const missing = await fetch(`${url}/ui/assets/nope.js`);
    expect(missing.status).toBe(404);
    expect(((await missing.json()) as { error: { code: string } }).error.code).toBe('not_found');
    const escape = await app.inject({ method: 'GET', url: '/ui/assets/../../package.json' });
    expect(escape.statusCode).toBeGreaterThanOrEqual(400);
    expect(escape.statusCode).toBeLessThan(500);
    expect(escape.body).not.toContain('"dependencies"');
  });

  test('a server without a built dashboard says how to build it', async () => {
    const bare = await buildApp({ backend, auth: 'off', logger: false, ui: { dir: null } });
    const res = await bare.inject({ method: 'GET', url: '/ui/' });
    expect(res.statusCode).toBe(404);
    expect(res.json().error.message).toContain('npm run build');
    await bare.close();
  });

  test('npm run build puts the real dashboard where the server finds it', () => {
    const built = defaultUiDir();
    // `npm test` builds first (pretest); a bare `vitest run` on a fresh checkout may not have.
    if (built === null && process.env.CI !== 'true') return;
    expect(built).not.toBeNull();
  });
});

describe('signing in', () => {
  test('a valid token gives an HttpOnly, SameSite=Strict cookie; a bad one gives 401 and no cookie', async () => {
    const bad = await signIn('mst_0123456789ab_' + 'x'.repeat(43));
    expect(bad.status).toBe(401);
    expect(bad.cookie).toBeNull();
    const res = await fetch(`${url}/v1/ui/session`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ token: secret.admin }),
    });
    expect(res.status).toBe(200);
    const cookie = res.headers.get('set-cookie') ?? '';
    expect(cookie).toMatch(/^muster_session=[A-Za-z0-9_-]{40,};/);
    expect(cookie).toContain('HttpOnly');
    expect(cookie).toContain('SameSite=Strict');
    expect(cookie).toContain('Path=/');
    // The token itself is not in the cookie.
    expect(cookie).not.toContain(secret.admin!.slice(4, 16));
    expect(((await res.json()) as { role: string }).role).toBe('admin');
  });

  test('malformed sign-in bodies are 400s naming the problem', async () => {
    for (const body of ['{', '{"token":""}', '{"token":"x","extra":1}', '[]']) {
      const res = await fetch(`${url}/v1/ui/session`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body,
      });
      expect(res.status, body).toBe(400);
      expect(((await res.json()) as { error: { message: string } }).error.message.length).toBeGreaterThan(5);
    }
  });

  test("the cookie is the token: same rights, changes need the dashboard's CSRF header", async () => {
    const reader = await signIn(secret.reader!);
    const admin = await signIn(secret.admin!);
    const as = (cookie: string, csrf: boolean) =>
      new MusterClient({
        endpoints: url,
        fetch: (input, init) =>
          fetch(input, { ...init, headers: { ...(init.headers as Record<string, string>), cookie } }),
        ...(csrf ? { headers: { 'x-muster-csrf': '1' } } : {}),
      });
    expect((await as(reader.cookie!, true).whoami()).role).toBe('reader');
    // A reader's session may read, not write: the policy applies unchanged.
    await expect(as(reader.cookie!, true).put('/app/x', 'v')).rejects.toMatchObject({ code: 'forbidden' });
    // Without the header a cookie cannot change anything (a forged cross-site form)...
    await expect(as(admin.cookie!, false).put('/app/x', 'v')).rejects.toMatchObject({ code: 'forbidden' });
    await expect(backend.get('/app/x')).resolves.toBeNull();
    // ...but reads work (EventSource and links cannot send headers).
    expect((await as(admin.cookie!, false).list('/app/')).kvs).toEqual([]);
    await as(admin.cookie!, true).put('/app/x', 'v');
    expect(new TextDecoder().decode((await backend.get('/app/x'))!.value)).toBe('v');
    // A bearer token still works as before, without any header.
    await new MusterClient({ endpoints: url, token: secret.admin! }).put('/app/y', 'w');
  });

  test('signing out ends the session on the server; so does revoking the token, or a long idle', async () => {
    const first = await signIn(secret.admin!);
    const headers = { cookie: first.cookie! };
    expect((await fetch(`${url}/v1/auth/whoami`, { headers })).status).toBe(200);
    const out = await fetch(`${url}/v1/ui/session`, { method: 'DELETE', headers });
    expect(await out.json()).toEqual({ signedOut: true });
    expect(out.headers.get('set-cookie')).toMatch(/^muster_session=; Max-Age=0/);
    // The old cookie, replayed, is worth nothing.
    expect((await fetch(`${url}/v1/auth/whoami`, { headers })).status).toBe(401);

    const idle = await signIn(secret.admin!);
    clock.advance(61_000);
    expect((await fetch(`${url}/v1/auth/whoami`, { headers: { cookie: idle.cookie! } })).status).toBe(401);

    const { token, info } = await tokens.create({ role: 'operator' });
    const revoked = await signIn(token);
    expect((await fetch(`${url}/v1/auth/whoami`, { headers: { cookie: revoked.cookie! } })).status).toBe(200);
    await tokens.revoke(info.id);
    await expect
      .poll(async () => (await fetch(`${url}/v1/auth/whoami`, { headers: { cookie: revoked.cookie! } })).status)
      .toBe(401);
  });

  test('a forged or unknown session cookie is a 401 like a bad token', async () => {
    for (const cookie of ['muster_session=' + 'A'.repeat(43), 'muster_session=../../x', 'other=1']) {
      const res = await fetch(`${url}/v1/auth/whoami`, { headers: { cookie } });
      expect(res.status, cookie).toBe(401);
    }
  });
});

describe('GET /v1/primitives', () => {
  test('lists what is in use, by kind, only the names the token may read', async () => {
    const admin = new MusterClient({ endpoints: url, token: secret.admin! });
    const cluster = new MusterClient({ endpoints: url, token: secret.cluster! });
    const lease = await admin.grantLease(30);
    await admin.acquireLock('db-migrate', lease.id);
    const clusterLease = await cluster.grantLease(30);
    await cluster.campaign('k8s.master', 'node-1', clusterLease.id);
    const all = await admin.listPrimitives();
    expect(all.primitives).toEqual([
      { kind: 'election', name: 'k8s.master', keys: 1 },
      { kind: 'lock', name: 'db-migrate', keys: 1 },
    ]);
    expect((await admin.listPrimitives('lock')).primitives.map((p) => p.name)).toEqual(['db-migrate']);
    // The cluster token sees its own election, not the lock.
    expect((await cluster.listPrimitives()).primitives.map((p) => p.name)).toEqual(['k8s.master']);
    const bad = await fetch(`${url}/v1/primitives?kind=table`, {
      headers: { authorization: `Bearer ${secret.admin}` },
    });
    expect(bad.status).toBe(400);
  });
});
