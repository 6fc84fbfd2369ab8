import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import type { WireLeaseGrant, WireLeaseInfo } from '../../src/api/wire.js';
import { ManualClock } from '../../src/core/clock.js';
import { expectError, makeApp, waitUntil } from './harness.js';
import type { TestApp } from './harness.js';

let clock: ManualClock;
let t: TestApp;
beforeEach(async () => {
  clock = new ManualClock();
  t = await makeApp({ clock });
});
afterEach(async () => {
  await t.close();
});

async function grant(ttl: unknown): Promise<WireLeaseGrant> {
  const res = await t.app.inject({ method: 'POST', url: '/v1/leases', payload: { ttl } });
  expect(res.statusCode).toBe(200);
  return res.json<WireLeaseGrant>();
}

const info = async (id: string) => t.app.inject({ method: 'GET', url: `/v1/leases/${id}` });
const keyExists = async (key: string) =>
  (await t.app.inject({ method: 'GET', url: `/v1/kv${key}` })).statusCode === 200;

describe('grant', () => {
  test.each([
    [10, 10],
    ['15s', 15],
    ['1m30s', 90],
    ['500ms', 1],
    ['86400', 86_400],
    ['24h', 86_400],
  ])('ttl %j grants %i seconds', async (ttl, seconds) => {
    const lease = await grant(ttl);
    expect(lease.id).toMatch(/^[0-9a-f]{1,16}$/);
    expect(lease.ttl).toBe(seconds);
    expect((await info(lease.id)).json<WireLeaseInfo>()).toEqual({
      id: lease.id,
      ttl: seconds,
      grantedTtl: seconds,
      keys: [],
    });
  });

  test('grants do not move the store revision, and each lease has its own id', async () => {
    const a = await grant(5);
    const b = await grant(5);
    expect(a.id).not.toBe(b.id);
    expect(await t.backend.revision()).toBe(0);
    const list = (await t.app.inject({ method: 'GET', url: '/v1/leases' })).json<{ leases: string[] }>();
    expect(list.leases.sort()).toEqual([a.id, b.id].sort());
  });
});

describe('show', () => {
  test('ttl counts down with the clock; keys bound to the lease are listed', async () => {
    const lease = await grant(10);
    await t.app.inject({ method: 'PUT', url: `/v1/kv/nodes/a?lease=${lease.id}`, payload: 'up' });
    await t.app.inject({ method: 'PUT', url: `/v1/kv/nodes/b?lease=${lease.id}`, payload: 'up' });
    await t.app.inject({ method: 'PUT', url: '/v1/kv/nodes/c', payload: 'no lease' });
    clock.advance(4_000);
    const shown = (await info(lease.id)).json<WireLeaseInfo>();
    expect(shown).toMatchObject({ id: lease.id, ttl: 6, grantedTtl: 10 });
    expect(shown.keys.sort()).toEqual(['/nodes/a', '/nodes/b']);
  });

  test('an unknown lease is 404 lease_not_found', async () => {
    expectError(await info('deadbeef'), 404, 'lease_not_found', /lease deadbeef not found/);
  });
});

describe('keepalive and expiry', () => {
  test('keepalive renews to the full TTL; without it the lease expires and deletes its keys at one revision', async () => {
    const lease = await grant(10);
    await t.app.inject({ method: 'PUT', url: `/v1/kv/eph/a?lease=${lease.id}`, payload: '1' });
    await t.app.inject({ method: 'PUT', url: `/v1/kv/eph/b?lease=${lease.id}`, payload: '2' });
    clock.advance(8_000);
    const renewed = await t.app.inject({ method: 'POST', url: `/v1/leases/${lease.id}/keepalive` });
    expect(renewed.statusCode).toBe(200);
    expect(renewed.json<WireLeaseGrant>()).toEqual({ id: lease.id, ttl: 10 });
    expect((await info(lease.id)).json<WireLeaseInfo>().ttl).toBe(10);
    clock.advance(8_000);
    // 16 s since the grant: alive only because of the keepalive.
    expect(await keyExists('/eph/a')).toBe(true);
    expect((await info(lease.id)).json<WireLeaseInfo>().ttl).toBe(2);
    const before = await t.backend.revision();
    clock.advance(2_001);
    await waitUntil(async () => !(await keyExists('/eph/a')), 'the expired lease deletes its keys');
    expect(await keyExists('/eph/b')).toBe(false);
    expect(await t.backend.revision()).toBe(before + 1);
    expectError(await info(lease.id), 404, 'lease_not_found');
    expectError(
      await t.app.inject({ method: 'POST', url: `/v1/leases/${lease.id}/keepalive` }),
      404,
      'lease_not_found',
      /expired/,
    );
    expect((await t.app.inject({ method: 'GET', url: '/v1/leases' })).json<{ leases: string[] }>().leases).toEqual([]);
    // A put bound to the dead lease is refused.
    expectError(
      await t.app.inject({ method: 'PUT', url: `/v1/kv/eph/a?lease=${lease.id}`, payload: '3' }),
      404,
      'lease_not_found',
    );
  });

  test('keepalive of an unknown lease is 404', async () => {
    expectError(
      await t.app.inject({ method: 'POST', url: '/v1/leases/abc123/keepalive' }),
      404,
      'lease_not_found',
      /abc123/,
    );
  });
});

describe('revoke', () => {
  test('revoke deletes the keys now, once; the lease is gone from the list', async () => {
    const lease = await grant(60);
    const other = await grant(60);
    await t.app.inject({ method: 'PUT', url: `/v1/kv/r/a?lease=${lease.id}`, payload: '1' });
    await t.app.inject({ method: 'PUT', url: `/v1/kv/r/b?lease=${other.id}`, payload: '2' });
    const res = await t.app.inject({ method: 'DELETE', url: `/v1/leases/${lease.id}` });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ revoked: true, id: lease.id });
    expect(await keyExists('/r/a')).toBe(false);
    expect(await keyExists('/r/b')).toBe(true);
    expect(await t.backend.revision()).toBe(3);
    expectError(await t.app.inject({ method: 'DELETE', url: `/v1/leases/${lease.id}` }), 404, 'lease_not_found');
    expect(await t.backend.revision()).toBe(3);
    expect((await t.app.inject({ method: 'GET', url: '/v1/leases' })).json<{ leases: string[] }>().leases).toEqual([
      other.id,
    ]);
  });
});
