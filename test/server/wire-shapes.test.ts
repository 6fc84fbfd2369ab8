import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import { systemClock } from '../../src/core/clock.js';
import { barrierStatus } from '../../src/primitives/barrier.js';
import { leader } from '../../src/primitives/election.js';
import { acquireLock, lockStatus } from '../../src/primitives/lock.js';
import { beginOnce, completeOnce, onceStatus } from '../../src/primitives/once.js';
import { acquireSemaphore, semaphoreStatus } from '../../src/primitives/semaphore.js';
import { makeApp } from './harness.js';
import type { TestApp } from './harness.js';

/**
 * One source for each wire shape: a route answers with exactly what its
 * primitive returns. The response serializer keeps only the fields its schema
 * names, so a field added to a primitive's result without its schema would be
 * dropped here, silently, and these comparisons would fail.
 */

let t: TestApp;
beforeEach(async () => {
  t = await makeApp();
});
afterEach(async () => {
  await t.close();
});

async function get(url: string): Promise<unknown> {
  const res = await t.app.inject({ method: 'GET', url });
  expect(res.statusCode, res.payload).toBe(200);
  return res.json();
}

async function post(url: string, payload: object): Promise<unknown> {
  const res = await t.app.inject({ method: 'POST', url, payload });
  expect(res.statusCode, res.payload).toBe(200);
  return res.json();
}

describe('routes answer with exactly what the primitives return', () => {
  test('lock, semaphore, once and barrier status, held and idle', async () => {
    const a = await t.backend.grantLease(30);
    const b = await t.backend.grantLease(30);
    for (const name of ['idle', 'held']) {
      if (name === 'held') {
        await acquireLock(t.backend, name, a.id);
        await acquireSemaphore(t.backend, name, 2, a.id);
        await acquireSemaphore(t.backend, name, 2, b.id);
        const turn = await beginOnce(t.backend, name, a.id, systemClock);
        if (turn.role !== 'runner') throw new Error('expected to run');
        await completeOnce(t.backend, name, turn, { exitCode: 3, output: 'out', runner: 'r' }, systemClock);
      }
      expect(await get(`/v1/locks/${name}`)).toEqual(await lockStatus(t.backend, name));
      expect(await get(`/v1/semaphores/${name}`)).toEqual(await semaphoreStatus(t.backend, name));
      expect(await get(`/v1/once/${name}`)).toEqual(await onceStatus(t.backend, name));
      expect(await get(`/v1/barriers/${name}`)).toEqual(await barrierStatus(t.backend, name));
    }
  });

  test('acquire answers carry every field of the handle', async () => {
    const a = await t.backend.grantLease(30);
    const lock = await post('/v1/locks/l/acquire', { lease: a.id });
    expect(lock).toEqual({ name: 'l', key: expect.any(String), token: expect.any(Number), lease: a.id });
    const slot = await post('/v1/semaphores/s/acquire', { lease: a.id, limit: 3 });
    expect(slot).toEqual({ name: 's', key: expect.any(String), token: expect.any(Number), lease: a.id, limit: 3 });
    const leadership = await post('/v1/elections/e/campaign', { lease: a.id, value: 'v' });
    expect(leadership).toEqual({ election: 'e', key: expect.any(String), token: expect.any(Number), lease: a.id });
    const now = await leader(t.backend, 'e');
    expect(await get('/v1/elections/e/leader')).toEqual({
      leader: { key: now?.key, value: 'v', token: now?.token, lease: a.id, revision: now?.revision },
    });
  });

  test('lease info and a running once', async () => {
    const a = await t.backend.grantLease(30);
    await t.backend.put('/k', Buffer.from('v'), { lease: a.id });
    expect(await get(`/v1/leases/${a.id}`)).toEqual(await t.backend.leaseInfo(a.id));
    const turn = await post('/v1/once/o/begin', { lease: a.id });
    expect(turn).toEqual({
      role: 'runner',
      key: expect.any(String),
      token: expect.any(Number),
      startedAt: expect.any(String),
    });
    expect(await get('/v1/once/o')).toEqual(await onceStatus(t.backend, 'o'));
  });
});
