import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import { SqliteBackend } from '../../src/backends/sqlite/sqlite-backend.js';
import type { Backend } from '../../src/core/backend.js';
import { buildApp } from '../../src/server/build-app.js';
import { expectError, makeApp, metricValue } from './harness.js';
import type { TestApp } from './harness.js';

/**
 * /healthz recovering with its store, /metrics in detail, and the documented
 * response shapes of the JSON answers (catalogue.test.ts
 * covers the served documents in general).
 */

let t: TestApp;
beforeEach(async () => {
  t = await makeApp();
});
afterEach(async () => {
  await t.close();
});

/** The value of a metric line whose labels include every pair of `labels`, in any order. */
function labelled(text: string, name: string, labels: Record<string, string>): number | undefined {
  const line = text.split('\n').find((l) => {
    if (!l.startsWith(`${name}{`)) return false;
    const inner = l.slice(name.length + 1, l.indexOf('}'));
    return Object.entries(labels).every(([k, v]) => inner.split(',').includes(`${k}="${v}"`));
  });
  return line === undefined ? undefined : Number(line.slice(line.indexOf('} ') + 2));
}

describe('GET /healthz', () => {
  test('200 with the store revision when the store answers', async () => {
    await t.backend.put('/a', Buffer.from('1'));
    const res = await t.app.inject({ method: 'GET', url: '/healthz' });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ status: 'ok', backend: 'sqlite', revision: 1 });
  });

  test('503 unavailable while the store does not answer, 200 again once it does', async () => {
    const backend = SqliteBackend.open({ dataDir: ':memory:' });
    let down = false;
    // The store as the app sees it: revision() fails while `down`.
    const flaky = new Proxy<Backend>(backend, {
      get(target, property) {
        if (property === 'revision' && down) return () => Promise.reject(new Error('disk unplugged'));
        const value: unknown = Reflect.get(target, property, target);
        return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(target) : value;
      },
    });
    const app = await buildApp({ backend: flaky, auth: 'off' });
    try {
      expect((await app.inject({ method: 'GET', url: '/healthz' })).statusCode).toBe(200);
      down = true;
      const err = expectError(
        await app.inject({ method: 'GET', url: '/healthz' }),
        503,
        'unavailable',
        /disk unplugged/,
      );
      expect(err.retryable).toBe(true);
      down = false;
      expect((await app.inject({ method: 'GET', url: '/healthz' })).statusCode).toBe(200);
    } finally {
      await app.close();
      await backend.close();
    }
  });
});

describe('GET /metrics', () => {
  test('Prometheus text: requests by route, method and status, with a latency histogram', async () => {
    await t.app.inject({ method: 'PUT', url: '/v1/kv/a', payload: 'x' });
    await t.app.inject({ method: 'PUT', url: '/v1/kv/b', payload: 'y' });
    await t.app.inject({ method: 'GET', url: '/v1/kv/missing' });
    // Under /v1: outside it, GET /a/b/c is Noah's link page route (docs/noah.md).
    await t.app.inject({ method: 'GET', url: '/v1/no/such/route' });
    const res = await t.app.inject({ method: 'GET', url: '/metrics' });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toMatch(/^text\/plain; version=0\.0\.4/);
    const text = res.payload;
    expect(labelled(text, 'muster_http_requests_total', { route: '/v1/kv/*', method: 'PUT', status: '200' })).toBe(2);
    expect(labelled(text, 'muster_http_requests_total', { route: '/v1/kv/*', method: 'GET', status: '404' })).toBe(1);
    expect(labelled(text, 'muster_http_requests_total', { route: 'unmatched', method: 'GET', status: '404' })).toBe(1);
    const putLatency = { route: '/v1/kv/*', method: 'PUT', status: '200' };
    expect(labelled(text, 'muster_http_request_duration_seconds_count', putLatency)).toBe(2);
    expect(labelled(text, 'muster_http_request_duration_seconds_sum', putLatency)).toBeGreaterThan(0);
    expect(labelled(text, 'muster_http_request_duration_seconds_bucket', { ...putLatency, le: '+Inf' })).toBe(2);
  });

  test('the revision gauge follows the store; the open-watches gauge starts at 0', async () => {
    const before = (await t.app.inject({ method: 'GET', url: '/metrics' })).payload;
    expect(metricValue(before, 'muster_revision')).toBe(0);
    expect(metricValue(before, 'muster_open_watches')).toBe(0);
    await t.backend.put('/a', Buffer.from('1'));
    await t.backend.put('/a', Buffer.from('2'));
    const after = (await t.app.inject({ method: 'GET', url: '/metrics' })).payload;
    expect(metricValue(after, 'muster_revision')).toBe(2);
    expect(labelled(after, 'muster_backend_info', { backend: 'sqlite' })).toBe(1);
  });

  test('two apps in one process keep separate registries', async () => {
    const other = await makeApp();
    try {
      await other.app.inject({ method: 'PUT', url: '/v1/kv/a', payload: 'x' });
      const mine = (await t.app.inject({ method: 'GET', url: '/metrics' })).payload;
      const theirs = (await other.app.inject({ method: 'GET', url: '/metrics' })).payload;
      expect(labelled(mine, 'muster_http_requests_total', { route: '/v1/kv/*', method: 'PUT' })).toBeUndefined();
      expect(labelled(theirs, 'muster_http_requests_total', { route: '/v1/kv/*', method: 'PUT', status: '200' })).toBe(
        1,
      );
    } finally {
      await other.close();
    }
  });
});

describe('GET /openapi.json response schemas', () => {
  interface Schema {
    properties?: Record<string, unknown>;
    anyOf?: Schema[];
    items?: Schema;
    required?: string[];
  }
  type Responses = Record<string, { content?: Record<string, { schema: Schema }> }>;
  interface Doc {
    paths: Record<string, Record<string, { responses: Responses }>>;
  }

  test('GET /v1/kv documents the raw value and both JSON shapes; txn documents every result type', async () => {
    const doc = (await t.app.inject({ method: 'GET', url: '/openapi.json' })).json<Doc>();
    const kv = doc.paths['/v1/kv/{*}']?.get?.responses;
    expect(Object.keys(kv?.['200']?.content ?? {}).sort()).toEqual(['application/json', 'application/octet-stream']);
    const shapes = kv?.['200']?.content?.['application/json']?.schema.anyOf ?? [];
    expect(shapes.map((s) => s.required?.includes('kvs'))).toEqual([false, true]);
    expect(kv?.['204']).toBeDefined();
    const txn = doc.paths['/v1/txn']?.post?.responses['200']?.content?.['application/json']?.schema;
    const results = txn?.properties?.results as Schema | undefined;
    expect(results?.items?.anyOf?.map((s) => (s.properties?.type as { enum: string[] }).enum[0])).toEqual([
      'put',
      'delete',
      'get',
    ]);
  });

  test('what GET and txn send matches the documented shapes (the fields the schema names)', async () => {
    await t.app.inject({ method: 'PUT', url: '/v1/kv/a', payload: Buffer.from([0xff]) });
    const meta = (await t.app.inject({ method: 'GET', url: '/v1/kv/a?meta=true' })).json<Record<string, unknown>>();
    expect(Object.keys(meta).sort()).toEqual([
      'createRevision',
      'encoding',
      'key',
      'lease',
      'modRevision',
      'revision',
      'value',
      'version',
    ]);
    const range = (await t.app.inject({ method: 'GET', url: '/v1/kv/?prefix=true' })).json<Record<string, unknown>>();
    expect(Object.keys(range).sort()).toEqual(['count', 'kvs', 'more', 'revision']);
    const txn = await t.app.inject({
      method: 'POST',
      url: '/v1/txn',
      payload: {
        success: [
          { type: 'put', key: '/b', value: 'x' },
          { type: 'get', key: '/a' },
          { type: 'delete', key: '/a' },
        ],
      },
    });
    expect(txn.headers['content-type']).toMatch(/^application\/json/);
    const body = txn.json<{ results: Record<string, unknown>[] }>();
    expect(body.results.map((r) => Object.keys(r).sort())).toEqual([
      ['prevKv', 'revision', 'type'],
      ['count', 'kvs', 'more', 'revision', 'type'],
      ['deleted', 'revision', 'type'],
    ]);
  });
});

describe('muster_blocked_requests', () => {
  test('counts blocking calls while they wait', async () => {
    const blocked = async () =>
      metricValue((await t.app.inject({ method: 'GET', url: '/metrics' })).body, 'muster_blocked_requests');
    expect(await blocked()).toBe(0);
    const waiting = t.app.inject({ method: 'GET', url: '/v1/wait/flag?exists=true&timeout=30s' });
    for (let i = 0; i < 100 && (await blocked()) !== 1; i++) await new Promise((resolve) => setTimeout(resolve, 10));
    expect(await blocked()).toBe(1);
    await t.backend.put('/flag', Buffer.from('up'));
    expect((await waiting).statusCode).toBe(200);
    expect(await blocked()).toBe(0);
  });
});
