import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import type { WireKeyValue, WirePutResponse, WireRangeResponse } from '../../src/api/wire.js';
import { expectError, makeApp, track, waitUntil } from './harness.js';
import type { TestApp } from './harness.js';

let t: TestApp;
beforeEach(async () => {
  t = await makeApp();
});
afterEach(async () => {
  await t.close();
});

async function put(url: string, payload: string | Buffer, headers: Record<string, string> = {}) {
  return t.app.inject({ method: 'PUT', url, payload, headers });
}

describe('PUT and GET', () => {
  test('a binary value comes back byte for byte with revision headers', async () => {
    const bytes = Buffer.from([0, 1, 2, 0xff, 0xfe, 0x80, 10, 13]);
    const res = await put('/v1/kv/bin/blob', bytes, { 'content-type': 'application/octet-stream' });
    expect(res.statusCode).toBe(200);
    expect(res.json<WirePutResponse>()).toEqual({
      revision: 1,
      key: '/bin/blob',
      createRevision: 1,
      modRevision: 1,
      version: 1,
    });
    await put('/v1/kv/other', 'x');
    const get = await t.app.inject({ method: 'GET', url: '/v1/kv/bin/blob' });
    expect(get.statusCode).toBe(200);
    expect(get.rawPayload.equals(bytes)).toBe(true);
    expect(get.headers['content-type']).toBe('application/octet-stream');
    expect(get.headers['x-muster-revision']).toBe('2');
    expect(get.headers['x-muster-mod-revision']).toBe('1');
  });

  test('an empty value is a value, not an absent key', async () => {
    expect((await put('/v1/kv/empty', '')).statusCode).toBe(200);
    const get = await t.app.inject({ method: 'GET', url: '/v1/kv/empty' });
    expect(get.statusCode).toBe(200);
    expect(get.rawPayload.length).toBe(0);
    const meta = await t.app.inject({ method: 'GET', url: '/v1/kv/empty?meta=true' });
    expect(meta.json<WireKeyValue>()).toMatchObject({ key: '/empty', value: '', version: 1 });
  });

  test.each([
    ['application/json', '{"not": "parsed"'],
    ['text/plain', 'plain text'],
    ['application/x-www-form-urlencoded', 'a=1&b=2'],
    ['image/png', '\x89PNG'],
  ])('a body of content type %s is stored as raw bytes', async (type, body) => {
    const res = await put('/v1/kv/typed', body, { 'content-type': type });
    expect(res.statusCode).toBe(200);
    const get = await t.app.inject({ method: 'GET', url: '/v1/kv/typed' });
    expect(get.rawPayload.equals(Buffer.from(body))).toBe(true);
  });

  test('a body with no content type is stored', async () => {
    const res = await t.app.inject({ method: 'PUT', url: '/v1/kv/untyped', payload: Buffer.from('no type') });
    expect(res.statusCode).toBe(200);
    expect((await t.app.inject({ method: 'GET', url: '/v1/kv/untyped' })).payload).toBe('no type');
  });

  test('a second put bumps version and modRevision and keeps createRevision', async () => {
    await put('/v1/kv/a', '1');
    await put('/v1/kv/b', 'x');
    const second = (await put('/v1/kv/a', '2')).json<WirePutResponse>();
    expect(second).toEqual({ revision: 3, key: '/a', createRevision: 1, modRevision: 3, version: 2 });
  });

  test('?meta=true gives JSON with UTF-8 text, or base64 for other bytes', async () => {
    await put('/v1/kv/text', 'héllo wörld');
    const text = (await t.app.inject({ method: 'GET', url: '/v1/kv/text?meta=true' })).json<
      WireKeyValue & { revision: number }
    >();
    expect(text).toEqual({
      key: '/text',
      value: 'héllo wörld',
      createRevision: 1,
      modRevision: 1,
      version: 1,
      lease: null,
      revision: 1,
    });
    expect(text.encoding).toBeUndefined();
    const bytes = Buffer.from([0xff, 0x00, 0xc3]);
    await put('/v1/kv/bytes', bytes);
    const bin = await t.app.inject({ method: 'GET', url: '/v1/kv/bytes?meta=true' });
    expect(bin.headers['content-type']).toMatch(/application\/json/);
    const body = bin.json<WireKeyValue>();
    expect(body.encoding).toBe('base64');
    expect(Buffer.from(body.value, 'base64').equals(bytes)).toBe(true);
  });

  test('GET of a missing key is 404 key_not_found', async () => {
    expectError(await t.app.inject({ method: 'GET', url: '/v1/kv/missing' }), 404, 'key_not_found', /\/missing/);
  });

  test('GET ?revision reads a past value', async () => {
    await put('/v1/kv/a', 'old');
    await put('/v1/kv/a', 'new');
    const past = await t.app.inject({ method: 'GET', url: '/v1/kv/a?revision=1' });
    expect(past.payload).toBe('old');
    expect((await t.app.inject({ method: 'GET', url: '/v1/kv/a' })).payload).toBe('new');
  });
});

describe('compare-and-swap with prevRevision', () => {
  test('prevRevision=0 creates only when absent', async () => {
    expect((await put('/v1/kv/c?prevRevision=0', 'first')).statusCode).toBe(200);
    const err = expectError(await put('/v1/kv/c?prevRevision=0', 'second'), 409, 'revision_conflict', /already exists/);
    expect(err.currentModRevision).toBe(1);
    expect((await t.app.inject({ method: 'GET', url: '/v1/kv/c' })).payload).toBe('first');
    expect(await t.backend.revision()).toBe(1);
  });

  test('a matching prevRevision writes; a stale one is 409 with the current modRevision', async () => {
    await put('/v1/kv/c', 'v1');
    await put('/v1/kv/c', 'v2');
    const ok = await put('/v1/kv/c?prevRevision=2', 'v3');
    expect(ok.json<WirePutResponse>()).toMatchObject({ revision: 3, modRevision: 3, version: 3, createRevision: 1 });
    const err = expectError(
      await put('/v1/kv/c?prevRevision=2', 'stale'),
      409,
      'revision_conflict',
      /modRevision 3, not 2/,
    );
    expect(err).toMatchObject({ currentModRevision: 3, expectedModRevision: 2, key: '/c' });
    expect((await t.app.inject({ method: 'GET', url: '/v1/kv/c' })).payload).toBe('v3');
    expect(await t.backend.revision()).toBe(3);
  });

  test('prevRevision on an absent key is a conflict with currentModRevision 0', async () => {
    const err = expectError(await put('/v1/kv/absent?prevRevision=5', 'x'), 409, 'revision_conflict');
    expect(err.currentModRevision).toBe(0);
  });
});

describe('leases on put', () => {
  test('?lease binds the key; revoking the lease deletes it', async () => {
    const lease = (await t.app.inject({ method: 'POST', url: '/v1/leases', payload: { ttl: 30 } })).json<{
      id: string;
    }>();
    expect((await put(`/v1/kv/eph?lease=${lease.id}`, 'up')).statusCode).toBe(200);
    const meta = (await t.app.inject({ method: 'GET', url: '/v1/kv/eph?meta=true' })).json<WireKeyValue>();
    expect(meta.lease).toBe(lease.id);
    expect((await t.app.inject({ method: 'DELETE', url: `/v1/leases/${lease.id}` })).statusCode).toBe(200);
    expectError(await t.app.inject({ method: 'GET', url: '/v1/kv/eph' }), 404, 'key_not_found');
  });

  test('an unknown lease is 404 lease_not_found and writes nothing', async () => {
    await put('/v1/kv/k', 'before');
    expectError(await put('/v1/kv/k?lease=abcdef', 'after'), 404, 'lease_not_found', /lease abcdef/);
    expect((await t.app.inject({ method: 'GET', url: '/v1/kv/k' })).payload).toBe('before');
    expect(await t.backend.revision()).toBe(1);
  });
});

describe('range', () => {
  beforeEach(async () => {
    for (const k of ['/app/a', '/app/b', '/app/c', '/apple', '/other']) await put(`/v1/kv${k}`, `v${k}`);
  });

  const range = async (url: string) => {
    const res = await t.app.inject({ method: 'GET', url });
    expect(res.statusCode).toBe(200);
    return res.json<WireRangeResponse>();
  };

  test('a prefix without a slash matches /app/... and /apple; a trailing slash only the folder', async () => {
    expect((await range('/v1/kv/app?prefix=true')).kvs.map((kv) => kv.key)).toEqual([
      '/app/a',
      '/app/b',
      '/app/c',
      '/apple',
    ]);
    const folder = await range('/v1/kv/app/?prefix=true');
    expect(folder.kvs.map((kv) => kv.key)).toEqual(['/app/a', '/app/b', '/app/c']);
    expect(folder.kvs[0]).toMatchObject({
      value: 'v/app/a',
      createRevision: 1,
      modRevision: 1,
      version: 1,
      lease: null,
    });
    expect(folder).toMatchObject({ revision: 5, more: false, count: 3 });
  });

  test('/v1/kv/ with prefix=true is every key', async () => {
    const all = await range('/v1/kv/?prefix=true');
    expect(all.kvs.map((kv) => kv.key)).toEqual(['/app/a', '/app/b', '/app/c', '/apple', '/other']);
    expect(all.count).toBe(5);
  });

  test('limit cuts the result, sets more, and count is the total', async () => {
    const page = await range('/v1/kv/app/?prefix=true&limit=2');
    expect(page.kvs.map((kv) => kv.key)).toEqual(['/app/a', '/app/b']);
    expect(page).toMatchObject({ more: true, count: 3 });
    expect((await range('/v1/kv/app/?prefix=true&limit=3')).more).toBe(false);
  });

  test('keysOnly leaves values empty', async () => {
    const keys = await range('/v1/kv/app/?prefix=true&keysOnly=true');
    expect(keys.kvs.map((kv) => kv.value)).toEqual(['', '', '']);
    expect(keys.kvs.map((kv) => kv.modRevision)).toEqual([1, 2, 3]);
  });

  test('revision reads the prefix as it was', async () => {
    await t.app.inject({ method: 'DELETE', url: '/v1/kv/app/a' });
    await put('/v1/kv/app/d', 'new');
    const then = await range('/v1/kv/app/?prefix=true&revision=2');
    expect(then.kvs.map((kv) => kv.key)).toEqual(['/app/a', '/app/b']);
    const now = await range('/v1/kv/app/?prefix=true');
    expect(now.kvs.map((kv) => kv.key)).toEqual(['/app/b', '/app/c', '/app/d']);
  });

  test('an empty prefix range is 200 with no keys', async () => {
    expect(await range('/v1/kv/nothing/?prefix=true')).toEqual({ revision: 5, kvs: [], more: false, count: 0 });
  });
});

describe('DELETE', () => {
  test('a key: deleted 1 and the revision moves; a missing key: deleted 0 and it does not', async () => {
    await put('/v1/kv/a', '1');
    const res = await t.app.inject({ method: 'DELETE', url: '/v1/kv/a' });
    expect(res.json()).toEqual({ revision: 2, deleted: 1 });
    expectError(await t.app.inject({ method: 'GET', url: '/v1/kv/a' }), 404, 'key_not_found');
    expect((await t.app.inject({ method: 'DELETE', url: '/v1/kv/a' })).json()).toEqual({ revision: 2, deleted: 0 });
  });

  test('a prefix deletes the folder at one revision and nothing beside it', async () => {
    for (const k of ['/d/a', '/d/b', '/dx']) await put(`/v1/kv${k}`, 'x');
    expect((await t.app.inject({ method: 'DELETE', url: '/v1/kv/d/?prefix=true' })).json()).toEqual({
      revision: 4,
      deleted: 2,
    });
    expect((await t.app.inject({ method: 'GET', url: '/v1/kv/dx' })).statusCode).toBe(200);
  });

  test('prevRevision deletes only at that revision', async () => {
    await put('/v1/kv/a', '1');
    await put('/v1/kv/a', '2');
    const err = expectError(
      await t.app.inject({ method: 'DELETE', url: '/v1/kv/a?prevRevision=1' }),
      409,
      'revision_conflict',
    );
    expect(err.currentModRevision).toBe(2);
    expect((await t.app.inject({ method: 'GET', url: '/v1/kv/a' })).payload).toBe('2');
    expect((await t.app.inject({ method: 'DELETE', url: '/v1/kv/a?prevRevision=2' })).json()).toEqual({
      revision: 3,
      deleted: 1,
    });
  });

  test('prevRevision with prefix is refused', async () => {
    await put('/v1/kv/p/a', '1');
    expectError(
      await t.app.inject({ method: 'DELETE', url: '/v1/kv/p/?prefix=true&prevRevision=1' }),
      400,
      'invalid_request',
      /prevRevision/,
    );
    expect(await t.backend.revision()).toBe(1);
  });
});

describe('long poll (real socket)', () => {
  let base: string;
  beforeEach(async () => {
    base = `http://127.0.0.1:${await t.listen()}`;
  });

  test('returns at once when the key is already newer than waitAfter', async () => {
    await put('/v1/kv/lp', 'one');
    await put('/v1/kv/lp', 'two');
    const res = await fetch(`${base}/v1/kv/lp?waitAfter=1&timeout=30s`);
    expect(res.status).toBe(200);
    expect(await res.text()).toBe('two');
    expect(res.headers.get('x-muster-mod-revision')).toBe('2');
  });

  test('waits for a later put and returns its value (meta=true as JSON)', async () => {
    await put('/v1/kv/lp', 'one');
    const waiting = track(fetch(`${base}/v1/kv/lp?waitAfter=1&timeout=30s&meta=true`));
    await waitUntil(() => t.backend.openWatches > 0, 'the long poll watches the key');
    await put('/v1/kv/unrelated', 'x');
    await put('/v1/kv/lpx', 'x');
    expect(waiting.settled()).toBe(false);
    await put('/v1/kv/lp', 'three');
    const res = await waiting.promise;
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ key: '/lp', value: 'three', modRevision: 4, version: 2 });
  });

  test('a delete after waitAfter answers 404 key_not_found', async () => {
    await put('/v1/kv/lp', 'one');
    const waiting = fetch(`${base}/v1/kv/lp?waitAfter=1&timeout=30s`);
    await waitUntil(() => t.backend.openWatches > 0, 'the long poll watches the key');
    await t.app.inject({ method: 'DELETE', url: '/v1/kv/lp' });
    const res = await waiting;
    expect(res.status).toBe(404);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe('key_not_found');
    expect(res.headers.get('x-muster-revision')).toBe('2');
  });

  test('a key that does not exist yet: waits for its creation', async () => {
    const waiting = fetch(`${base}/v1/kv/later?waitAfter=0&timeout=30s`);
    await waitUntil(() => t.backend.openWatches > 0, 'the long poll watches the key');
    await put('/v1/kv/later', 'born');
    const res = await waiting;
    expect(res.status).toBe(200);
    expect(await res.text()).toBe('born');
  });

  test('204 with no body when the timeout passes first, and the watch is closed', async () => {
    await put('/v1/kv/lp', 'one');
    const started = Date.now();
    const res = await fetch(`${base}/v1/kv/lp?waitAfter=1&timeout=200ms`);
    expect(res.status).toBe(204);
    expect(await res.text()).toBe('');
    expect(Date.now() - started).toBeGreaterThanOrEqual(190);
    await waitUntil(() => t.backend.openWatches === 0, 'the long poll closed its watch');
  });

  test.each(['abc', '0', '-1', '11m', '10x'])('timeout=%s is 400 invalid_duration', async (timeout) => {
    await put('/v1/kv/lp', 'one');
    const res = await fetch(`${base}/v1/kv/lp?waitAfter=1&timeout=${timeout}`);
    expect(res.status).toBe(400);
    const body = (await res.json()) as { error: { code: string; message: string } };
    expect(body.error.code).toBe('invalid_duration');
    expect(body.error.message).toMatch(/timeout/);
  });

  test('waitAfter with prefix=true is refused', async () => {
    const res = await fetch(`${base}/v1/kv/lp/?prefix=true&waitAfter=1`);
    expect(res.status).toBe(400);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe('invalid_request');
  });
});
