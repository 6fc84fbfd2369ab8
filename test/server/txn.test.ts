import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import type { WireKeyValue, WireTxnRequest, WireTxnResponse } from '../../src/api/wire.js';
import { expectError, makeApp } from './harness.js';
import type { TestApp } from './harness.js';

let t: TestApp;
beforeEach(async () => {
  t = await makeApp();
});
afterEach(async () => {
  await t.close();
});

async function txn(body: WireTxnRequest): Promise<WireTxnResponse> {
  const res = await t.app.inject({ method: 'POST', url: '/v1/txn', payload: body });
  expect(res.statusCode, res.payload).toBe(200);
  return res.json<WireTxnResponse>();
}

const value = async (key: string) => {
  const res = await t.app.inject({ method: 'GET', url: `/v1/kv${key}` });
  return res.statusCode === 200 ? res.payload : null;
};

describe('POST /v1/txn', () => {
  test('an empty transaction succeeds and writes nothing', async () => {
    expect(await txn({})).toEqual({ succeeded: true, revision: 0, results: [] });
  });

  test('success writes several keys at one revision', async () => {
    const res = await txn({
      compare: [{ key: '/a', target: 'version', op: '=', value: 0 }],
      success: [
        { type: 'put', key: '/a', value: 'A' },
        { type: 'put', key: '/b', value: 'B' },
        { type: 'put', key: '/c', value: '/w==', encoding: 'base64' },
      ],
      failure: [{ type: 'get', key: '/a' }],
    });
    expect(res).toEqual({
      succeeded: true,
      revision: 1,
      results: [
        { type: 'put', revision: 1, prevKv: null },
        { type: 'put', revision: 1, prevKv: null },
        { type: 'put', revision: 1, prevKv: null },
      ],
    });
    expect(await value('/a')).toBe('A');
    const c = (await t.app.inject({ method: 'GET', url: '/v1/kv/c' })).rawPayload;
    expect([...c]).toEqual([0xff]);
    const meta = (await t.app.inject({ method: 'GET', url: '/v1/kv/b?meta=true' })).json<WireKeyValue>();
    expect(meta).toMatchObject({ createRevision: 1, modRevision: 1, version: 1 });
  });

  test('a failed compare runs the failure branch and leaves the success writes undone', async () => {
    await t.app.inject({ method: 'PUT', url: '/v1/kv/a', payload: 'current' });
    const res = await txn({
      compare: [{ key: '/a', target: 'value', op: '=', value: 'expected' }],
      success: [
        { type: 'put', key: '/a', value: 'new' },
        { type: 'put', key: '/b', value: 'new' },
      ],
      failure: [{ type: 'get', key: '/a' }],
    });
    expect(res.succeeded).toBe(false);
    expect(res.revision).toBe(1);
    expect(res.results).toEqual([
      {
        type: 'get',
        revision: 1,
        kvs: [{ key: '/a', value: 'current', createRevision: 1, modRevision: 1, version: 1, lease: null }],
        more: false,
        count: 1,
      },
    ]);
    expect(await value('/a')).toBe('current');
    expect(await value('/b')).toBeNull();
  });

  test.each([
    ['version', '=', 2, true],
    ['version', '>', 2, false],
    ['version', '<', 3, true],
    ['version', '!=', 2, false],
    ['createRevision', '=', 1, true],
    ['createRevision', '>', 0, true],
    ['modRevision', '=', 3, true],
    ['modRevision', '<', 3, false],
  ] as const)('compare %s %s %i → succeeded %s, and only then writes', async (target, op, n, expected) => {
    // /x: createRevision 1, modRevision 3, version 2.
    await t.app.inject({ method: 'PUT', url: '/v1/kv/x', payload: 'one' });
    await t.app.inject({ method: 'PUT', url: '/v1/kv/z', payload: 'pad' });
    await t.app.inject({ method: 'PUT', url: '/v1/kv/x', payload: 'two' });
    const res = await txn({
      compare: [{ key: '/x', target, op, value: n }],
      success: [{ type: 'put', key: '/flag', value: 'set' }],
    });
    expect(res.succeeded).toBe(expected);
    expect(res.revision).toBe(expected ? 4 : 3);
    expect(await value('/flag')).toBe(expected ? 'set' : null);
  });

  test('value compares take base64, and lease compares take an id or null', async () => {
    const lease = (await t.backend.grantLease(30)).id;
    await t.app.inject({ method: 'PUT', url: `/v1/kv/bin?lease=${lease}`, payload: Buffer.from([1, 2, 3]) });
    const byValue = await txn({
      compare: [{ key: '/bin', target: 'value', op: '=', value: 'AQID', encoding: 'base64' }],
    });
    expect(byValue.succeeded).toBe(true);
    expect(
      (await txn({ compare: [{ key: '/bin', target: 'value', op: '=', value: 'AQIE', encoding: 'base64' }] }))
        .succeeded,
    ).toBe(false);
    expect((await txn({ compare: [{ key: '/bin', target: 'lease', op: '=', value: lease }] })).succeeded).toBe(true);
    expect((await txn({ compare: [{ key: '/bin', target: 'lease', op: '=', value: null }] })).succeeded).toBe(false);
    expect((await txn({ compare: [{ key: '/missing', target: 'lease', op: '=', value: null }] })).succeeded).toBe(true);
  });

  test('put with lease, delete of a prefix, and get with limit, in one transaction', async () => {
    const lease = (await t.backend.grantLease(30)).id;
    for (const k of ['/p/1', '/p/2', '/q/1', '/q/2', '/q/3'])
      await t.app.inject({ method: 'PUT', url: `/v1/kv${k}`, payload: k });
    const res = await txn({
      success: [
        { type: 'put', key: '/new', value: 'n', lease },
        { type: 'delete', key: '/p/', prefix: true },
        { type: 'get', key: '/q/', prefix: true, limit: 2, keysOnly: true },
      ],
    });
    expect(res.revision).toBe(6);
    expect(res.results[0]).toEqual({ type: 'put', revision: 6, prevKv: null });
    expect(res.results[1]).toEqual({ type: 'delete', revision: 6, deleted: 2 });
    expect(res.results[2]).toMatchObject({ type: 'get', more: true, count: 3 });
    const get = res.results[2];
    expect(get?.type === 'get' ? get.kvs.map((kv) => [kv.key, kv.value]) : []).toEqual([
      ['/q/1', ''],
      ['/q/2', ''],
    ]);
    expect((await t.app.inject({ method: 'GET', url: '/v1/kv/new?meta=true' })).json<WireKeyValue>().lease).toBe(lease);
    expect(await value('/p/1')).toBeNull();
  });

  test('put returns the previous key; get at a past revision sees the past', async () => {
    await t.app.inject({ method: 'PUT', url: '/v1/kv/a', payload: 'old' });
    const res = await txn({ success: [{ type: 'put', key: '/a', value: 'new' }] });
    expect(res.results[0]).toEqual({
      type: 'put',
      revision: 2,
      prevKv: { key: '/a', value: 'old', createRevision: 1, modRevision: 1, version: 1, lease: null },
    });
    const past = await txn({ success: [{ type: 'get', key: '/a', revision: 1 }] });
    expect(past.results[0]).toMatchObject({ kvs: [{ value: 'old' }] });
  });

  test('128 ops in all are taken', async () => {
    const res = await txn({
      compare: Array.from({ length: 28 }, (_, i) => ({
        key: `/c/${i}`,
        target: 'version' as const,
        op: '=' as const,
        value: 0,
      })),
      success: Array.from({ length: 100 }, (_, i) => ({ type: 'put' as const, key: `/t/${i}`, value: String(i) })),
    });
    expect(res.succeeded).toBe(true);
    const range = (await t.app.inject({ method: 'GET', url: '/v1/kv/t/?prefix=true&keysOnly=true' })).json<{
      count: number;
    }>();
    expect(range.count).toBe(100);
  });

  test('an unknown lease on one put applies nothing of the transaction', async () => {
    await t.app.inject({ method: 'PUT', url: '/v1/kv/a', payload: 'keep' });
    expectError(
      await t.app.inject({
        method: 'POST',
        url: '/v1/txn',
        payload: {
          success: [
            { type: 'put', key: '/a', value: 'lost' },
            { type: 'put', key: '/b', value: 'lost', lease: 'abcdef' },
          ],
        },
      }),
      404,
      'lease_not_found',
    );
    expect(await value('/a')).toBe('keep');
    expect(await value('/b')).toBeNull();
    expect(await t.backend.revision()).toBe(1);
  });
});
