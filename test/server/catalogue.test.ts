import { readFileSync, readdirSync } from 'node:fs';
import { join, relative } from 'node:path';
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import { errorFromWire } from '../../src/client/error-from-wire.js';
import { errorCatalogue } from '../../src/core/error-catalogue.js';
import { makeApp, metricValue } from './harness.js';
import type { TestApp } from './harness.js';

const root = join(import.meta.dirname, '..', '..');

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return sourceFiles(path);
    return entry.name.endsWith('.ts') ? [path] : [];
  });
}

/**
 * The top-level arguments of every call `name(...)` in `text`, as source
 * strings: parentheses, brackets, braces, strings and template literals nest.
 */
function callArguments(text: string, name: string): string[][] {
  const calls: string[][] = [];
  let from = 0;
  for (;;) {
    const at = text.indexOf(name + '(', from);
    if (at < 0) return calls;
    let i = at + name.length + 1;
    let depth = 0;
    let current = '';
    const args: string[] = [];
    let quote: string | null = null;
    for (; i < text.length; i++) {
      const c = text[i] as string;
      if (quote) {
        current += c;
        if (c === '\\') current += text[++i] ?? '';
        else if (c === quote) quote = null;
        continue;
      }
      if (c === "'" || c === '"' || c === '`') quote = c;
      if ('([{'.includes(c)) depth++;
      if (')]}'.includes(c)) {
        if (depth === 0) break;
        depth--;
      }
      if (c === ',' && depth === 0) {
        args.push(current.trim());
        current = '';
        continue;
      }
      current += c;
    }
    if (current.trim()) args.push(current.trim());
    calls.push(args);
    from = i;
  }
}

/** Every error code the source can answer with, and where it comes from. */
function codesInSource(): Map<string, string> {
  const found = new Map<string, string>();
  const add = (code: string, file: string) => {
    if (!found.has(code)) found.set(code, relative(root, file));
  };
  for (const file of sourceFiles(join(root, 'src'))) {
    const text = readFileSync(file, 'utf8');
    for (const m of text.matchAll(/readonly code = '([a-z_]+)'/g)) add(m[1] as string, file);
    // InvalidArgumentError(message, code) and the subclasses' super(message, code).
    for (const name of ['new InvalidArgumentError', 'super']) {
      for (const args of callArguments(text, name)) {
        const code = /^'([a-z_]+)'$/.exec(args[1] ?? '')?.[1];
        if (code) add(code, file);
      }
    }
  }
  const handler = join(root, 'src', 'server', 'error-handler.ts');
  const text = readFileSync(handler, 'utf8');
  for (const m of text.matchAll(/code: '([a-z_]+)'/g)) add(m[1] as string, handler);
  for (const m of text.matchAll(/FST_ERR_[A-Z_]+: '([a-z_]+)'/g)) add(m[1] as string, handler);
  for (const m of text.matchAll(/\? error\.code : '([a-z_]+)'/g)) add(m[1] as string, handler);
  return found;
}

/** The `| code | status | meaning |` rows of docs/errors.md (cells trimmed: the formatter pads them). */
function documentedRows(): Map<string, { status: number; meaning: string }> {
  const text = readFileSync(join(root, 'docs', 'errors.md'), 'utf8');
  const rows = new Map<string, { status: number; meaning: string }>();
  for (const m of text.matchAll(/^\|\s*`([a-z_]+)`\s*\|\s*(\d{3})\s*\|(.+)\|\s*$/gm)) {
    rows.set(m[1] as string, { status: Number(m[2]), meaning: (m[3] as string).trim() });
  }
  return rows;
}

describe('the error catalogue', () => {
  test('docs/errors.md lists exactly the catalogue, with the same statuses', () => {
    const documented = new Map([...documentedRows()].map(([code, row]) => [code, row.status]));
    const catalogued = new Map(Object.entries(errorCatalogue).map(([code, entry]) => [code, entry.status]));
    expect(documented.size).toBeGreaterThan(20);
    expect(Object.fromEntries(documented)).toEqual(Object.fromEntries(catalogued));
  });

  test('the docs carry each entry’s description', () => {
    const documented = documentedRows();
    for (const [code, entry] of Object.entries(errorCatalogue)) {
      expect(documented.get(code), code).toEqual({ status: entry.status, meaning: entry.description });
    }
  });

  test('every code the source can produce is in the catalogue', () => {
    const found = codesInSource();
    // The scan must see the codes we know are there, or it proves nothing.
    for (const known of [
      'revision_conflict',
      'invalid_key',
      'invalid_duration',
      'invalid_name',
      'duplicate_key',
      'method_not_allowed',
      'body_too_large',
    ]) {
      expect(found.has(known), known).toBe(true);
    }
    const missing = [...found].filter(([code]) => !(code in errorCatalogue)).map(([code, file]) => `${code} (${file})`);
    expect(missing).toEqual([]);
  });

  test('the client decodes every 4xx code of the catalogue back to an error carrying that code', () => {
    for (const [code, entry] of Object.entries(errorCatalogue)) {
      if (entry.status >= 500) continue;
      const error = errorFromWire(entry.status, { error: { code, message: 'm' } });
      expect(error.code, code).toBe(code);
    }
    // A code from a newer server is kept in the message, never dropped.
    const unknown = errorFromWire(400, { error: { code: 'from_the_future', message: 'm' } });
    expect(unknown.message).toContain('from_the_future');
  });

  test('the scanner reads multi-line calls and nested template literals', () => {
    const sample = "throw new InvalidArgumentError(\n  `a ${fn(x, `y`)} b`,\n  'some_code',\n);";
    expect(callArguments(sample, 'new InvalidArgumentError')).toEqual([['`a ${fn(x, `y`)} b`', "'some_code'"]]);
  });
});

describe('served documents', () => {
  let t: TestApp;
  beforeEach(async () => {
    t = await makeApp();
  });
  afterEach(async () => {
    await t.close();
  });

  /** Every route of the app, as OpenAPI names them. Hidden: /metrics and /openapi.json. */
  const expectedRoutes = [
    'GET /healthz',
    'GET /v1/snapshot',
    'POST /v1/tokens',
    'GET /v1/tokens',
    'GET /v1/tokens/{id}',
    'DELETE /v1/tokens/{id}',
    'GET /v1/auth/whoami',
    'GET /v1/primitives',
    'POST /v1/ui/session',
    'DELETE /v1/ui/session',
    'GET /v1/audit',
    'POST /v1/enrol',
    'PUT /v1/kv/{*}',
    'GET /v1/kv/{*}',
    'DELETE /v1/kv/{*}',
    'POST /v1/txn',
    'POST /v1/leases',
    'GET /v1/leases',
    'POST /v1/leases/{id}/keepalive',
    'DELETE /v1/leases/{id}',
    'GET /v1/leases/{id}',
    'GET /v1/watch/{*}',
    'POST /v1/locks/{name}/acquire',
    'POST /v1/locks/{name}/release',
    'GET /v1/locks/{name}',
    'POST /v1/semaphores/{name}/acquire',
    'POST /v1/semaphores/{name}/release',
    'GET /v1/semaphores/{name}',
    'POST /v1/elections/{name}/campaign',
    'POST /v1/elections/{name}/proclaim',
    'POST /v1/elections/{name}/resign',
    'GET /v1/elections/{name}/leader',
    'GET /v1/elections/{name}/observe',
    'POST /v1/barriers/{name}/enter',
    'POST /v1/barriers/{name}/leave',
    'GET /v1/barriers/{name}',
    'DELETE /v1/barriers/{name}',
    'POST /v1/once/{name}/begin',
    'POST /v1/once/{name}/complete',
    'GET /v1/once/{name}',
    'DELETE /v1/once/{name}',
    'GET /v1/wait/{*}',
    'POST /v1/jobs',
    'GET /v1/jobs',
    'GET /v1/jobs/{id}',
    'DELETE /v1/jobs/{id}',
    'GET /v1/jobs/{id}/nodes/{node}/output',
    'GET /v1/jobs/{id}/events',
    'GET /v1/nodes/{node}/assignments',
    'POST /v1/jobs/{id}/nodes/{node}/report',
    'POST /v1/triggers',
    'GET /v1/triggers',
    'PUT /v1/nodes/{node}',
    'GET /v1/nodes',
    'GET /v1/nodes/{node}',
    'DELETE /v1/nodes/{node}',
    'PUT /v1/groups/{group}',
    'GET /v1/groups',
    'GET /v1/groups/{group}',
    'DELETE /v1/groups/{group}',
    'PUT /v1/desired/{group}',
    'GET /v1/desired/{group}',
    'PUT /v1/state/{group}/{node}',
    'GET /v1/state/{group}',
    'POST /v1/plans',
    'GET /v1/plans',
    'GET /v1/plans/{id}',
    'POST /v1/plans/{id}/pause',
    'POST /v1/plans/{id}/resume',
    'DELETE /v1/plans/{id}',
    'GET /v1/plans/{id}/events',
    'GET /v1/triggers/{name}',
    'DELETE /v1/triggers/{name}',
  ];
  // The dashboard's files (docs/dashboard.md) are not API routes either.
  const hidden = ['GET /metrics', 'GET /openapi.json', 'GET /ui', 'GET /ui/', 'GET /ui/{*}'];

  /** Non-wildcard routes read from printRoutes' tree (it folds every `*` route into one line). */
  function printedRoutes(): string[] {
    const stack: string[] = [];
    const routes: string[] = [];
    for (const line of t.app.printRoutes({ commonPrefix: false }).split('\n')) {
      const m = /^([│ ]*)[├└]── (\S+) \(([A-Z, ]+)\)$/.exec(line);
      if (!m) continue;
      const depth = (m[1] as string).length / 4;
      const path = (stack[depth - 1] ?? '') + (m[2] as string);
      stack[depth] = path;
      stack.length = depth + 1;
      if (path.includes('*')) continue;
      for (const method of (m[3] as string).split(', ')) {
        if (method !== 'HEAD') routes.push(`${method} ${path.replace(/:([a-z]+)/g, '{$1}')}`);
      }
    }
    return routes;
  }

  test('/openapi.json is OpenAPI 3 JSON listing every route of the app', async () => {
    const res = await t.app.inject({ method: 'GET', url: '/openapi.json' });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toMatch(/application\/json/);
    const doc = JSON.parse(res.payload) as {
      openapi: string;
      info: { title: string };
      paths: Record<string, Record<string, { summary?: string }>>;
    };
    expect(doc.openapi).toMatch(/^3\./);
    expect(doc.info.title).toMatch(/muster/);
    const documented = Object.entries(doc.paths).flatMap(([path, methods]) =>
      Object.keys(methods).map((m) => `${m.toUpperCase()} ${path}`),
    );
    expect(documented.sort()).toEqual([...expectedRoutes].sort());
    for (const methods of Object.values(doc.paths))
      for (const op of Object.values(methods)) expect(op.summary).toBeTruthy();

    // The list above is the app's: each exists, and the app has no other (non-wildcard) route.
    for (const route of [...expectedRoutes, ...hidden]) {
      const [method, path] = route.split(' ') as [string, string];
      const url = path.replace('{*}', '*').replace(/\{([a-z]+)\}/g, ':$1');
      expect(t.app.hasRoute({ method: method as 'GET', url }), route).toBe(true);
    }
    const printed = printedRoutes();
    expect(printed.length).toBeGreaterThan(20);
    // Noah's API (docs/noah.md, test/noah/) is served at the root and not in the OpenAPI document.
    const noah = /^[A-Z]+ \/(?:|version|hosts|services|applications|configurations|ephemerals|tags|\{link\}.*)(?:\/|$)/;
    expect(printed.filter((r) => !expectedRoutes.includes(r) && !hidden.includes(r) && !noah.test(r))).toEqual([]);
  });

  test('/healthz is 200 while the store answers and 503 unavailable once it is closed', async () => {
    await t.backend.put('/x', new Uint8Array([1]));
    const ok = await t.app.inject({ method: 'GET', url: '/healthz' });
    expect(ok.statusCode).toBe(200);
    expect(ok.json()).toEqual({ status: 'ok', backend: 'sqlite', revision: 1 });
    await t.backend.close();
    const down = await t.app.inject({ method: 'GET', url: '/healthz' });
    expect(down.statusCode).toBe(503);
    expect(down.json()).toMatchObject({
      error: { code: 'unavailable', message: expect.stringMatching(/sqlite store does not answer/) },
    });
  });

  test('/metrics counts requests by route, method and status', async () => {
    await t.app.inject({ method: 'PUT', url: '/v1/kv/a', payload: 'x' });
    await t.app.inject({ method: 'GET', url: '/v1/kv/a' });
    await t.app.inject({ method: 'GET', url: '/v1/kv/missing' });
    const res = await t.app.inject({ method: 'GET', url: '/metrics' });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toMatch(/text\/plain/);
    const text = res.payload;
    expect(text).toContain('# TYPE muster_http_requests_total counter');
    expect(text).toMatch(/muster_http_requests_total\{route="\/v1\/kv\/\*",method="PUT",status="200"\} 1/);
    expect(text).toMatch(/muster_http_requests_total\{route="\/v1\/kv\/\*",method="GET",status="200"\} 1/);
    expect(text).toMatch(/muster_http_requests_total\{route="\/v1\/kv\/\*",method="GET",status="404"\} 1/);
    expect(text).toMatch(/muster_http_request_duration_seconds_count\{route="\/v1\/kv\/\*",method="PUT"[^}]*\} 1/);
    expect(metricValue(text, 'muster_revision')).toBe(1);
    expect(metricValue(text, 'muster_open_watches')).toBe(0);
    expect(text).toMatch(/muster_backend_info\{backend="sqlite"\} 1/);
  });
});
