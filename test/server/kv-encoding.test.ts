import { request } from 'node:http';
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import { expectError, makeApp, rawRequest, waitUntil } from './harness.js';
import type { TestApp } from './harness.js';

/**
 * Keys travel URL-encoded in the path, one segment at a time; JSON routes take
 * JSON only; a long poll whose client goes away lets go of its watch.
 */

let t: TestApp;
beforeEach(async () => {
  t = await makeApp();
});
afterEach(async () => {
  await t.close();
});

describe('keys in the path', () => {
  test.each([
    ['/v1/kv/a%2Fb', '/a/b'],
    ['/v1/kv/sp%20ace/%C3%A9t%C3%A9', '/sp ace/été'],
    ['/v1/kv/q%3Fx%26y', '/q?x&y'],
    ['/v1/kv/100%25', '/100%'],
  ])('PUT %s writes the key %s, and GET of the same path reads it', async (path, key) => {
    const res = await t.app.inject({ method: 'PUT', url: path, payload: 'v' });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toMatchObject({ key, revision: 1 });
    expect(new TextDecoder().decode((await t.backend.get(key))?.value)).toBe('v');
    const read = await t.app.inject({ method: 'GET', url: path });
    expect(read.statusCode).toBe(200);
    expect(read.payload).toBe('v');
  });

  test('an encoded "/" that makes an empty segment is 400 invalid_key, and nothing is written', async () => {
    expectError(
      await t.app.inject({ method: 'PUT', url: '/v1/kv/a%2F%2Fb', payload: 'v' }),
      400,
      'invalid_key',
      /empty segment/,
    );
    expectError(
      await t.app.inject({ method: 'PUT', url: '/v1/kv/a%2F', payload: 'v' }),
      400,
      'invalid_key',
      /must not end with "\/"/,
    );
    expect(await t.backend.revision()).toBe(0);
  });

  test('an encoded control character is 400 invalid_key', async () => {
    expectError(
      await t.app.inject({ method: 'PUT', url: '/v1/kv/a%00b', payload: 'v' }),
      400,
      'invalid_key',
      /control character/,
    );
    expectError(
      await t.app.inject({ method: 'PUT', url: '/v1/kv/a%0Ab', payload: 'v' }),
      400,
      'invalid_key',
      /control character/,
    );
    expect(await t.backend.revision()).toBe(0);
  });
});

describe('media types', () => {
  test.each([
    ['/v1/txn', 'text/plain', '{"success":[{"type":"put","key":"/k","value":"x"}]}'],
    ['/v1/txn', 'application/x-www-form-urlencoded', 'success=1'],
    ['/v1/leases', 'text/plain', '{"ttl":10}'],
  ])('POST %s as %s is 415 unsupported_media_type, and nothing changes', async (url, type, payload) => {
    const res = await t.app.inject({ method: 'POST', url, headers: { 'content-type': type }, payload });
    expectError(res, 415, 'unsupported_media_type');
    expect(await t.backend.revision()).toBe(0);
    expect(await t.backend.listLeases()).toEqual([]);
  });

  test('PUT of a key takes any content type as the raw value', async () => {
    for (const type of ['application/json', 'text/plain', 'image/png', 'application/x-www-form-urlencoded']) {
      const res = await t.app.inject({
        method: 'PUT',
        url: '/v1/kv/k',
        headers: { 'content-type': type },
        payload: `{"not":"parsed"}`,
      });
      expect(res.statusCode, type).toBe(200);
    }
    const kv = await t.backend.get('/k');
    expect(new TextDecoder().decode(kv?.value)).toBe('{"not":"parsed"}');
    expect(kv?.version).toBe(4);
  });
});

describe('long poll', () => {
  test('timeout without waitAfter is 400 invalid_request', async () => {
    await t.backend.put('/k', new TextEncoder().encode('v'));
    expectError(await t.app.inject({ method: 'GET', url: '/v1/kv/k?timeout=5s' }), 400, 'invalid_request', /waitAfter/);
  });

  test.each(['abc', '-1', '1.5'])('waitAfter=%s is 400 invalid_request', async (waitAfter) => {
    expectError(
      await t.app.inject({ method: 'GET', url: `/v1/kv/k?waitAfter=${waitAfter}` }),
      400,
      'invalid_request',
      /waitAfter/,
    );
  });

  test('a client that goes away ends the long poll and closes its backend watch', async () => {
    const port = await t.listen();
    await t.backend.put('/k', new TextEncoder().encode('v'));
    // A plain socket, destroyed: a client that really goes away (fetch's abort may keep the connection for reuse).
    const req = request({ host: '127.0.0.1', port, path: '/v1/kv/k?waitAfter=1&timeout=10m', agent: false });
    const failed = new Promise((resolve) => req.on('error', resolve));
    req.end();
    await waitUntil(() => t.backend.openWatches === 1, 'the long poll watches the key');
    req.destroy();
    await failed;
    await waitUntil(() => t.backend.openWatches === 0, 'the long poll closed its watch');
    // The server still answers, and the key is untouched.
    const res = await rawRequest(port, 'GET', '/v1/kv/k');
    expect(res.status).toBe(200);
    expect(res.body).toBe('v');
  });
});
