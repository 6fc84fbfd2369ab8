import { request } from 'node:http';
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import { ManualClock } from '../../src/core/clock.js';
import { SseStream, jsonFetch, makeApp, track, waitUntil } from './harness.js';
import type { TestApp } from './harness.js';

let clock: ManualClock;
let t: TestApp;
let port: number;
beforeEach(async () => {
  clock = new ManualClock();
  t = await makeApp({ clock });
  port = await t.listen();
});
afterEach(async () => {
  await t.close();
});

const call = (method: string, path: string, body?: unknown) => jsonFetch(port, method, path, body);
const newLease = async () => (await t.backend.grantLease(600)).id;
const keyExists = async (key: string) => (await t.backend.get(key)) !== null;

interface Held {
  key: string;
  token: number;
  lease: string;
}

describe('locks', () => {
  const status = async (name: string) =>
    (await call('GET', `/v1/locks/${name}`)).body as { holder: Held | null; waiting: number };

  test('acquire, a second acquire blocks until release, and the token increases', async () => {
    const [a, b] = [await newLease(), await newLease()];
    const first = await call('POST', '/v1/locks/db/acquire', { lease: a });
    expect(first.status).toBe(200);
    expect(first.body).toMatchObject({ name: 'db', key: `/muster/locks/db/waiters/${a}`, lease: a });
    const heldA = first.body as unknown as Held;
    expect(heldA.token).toBeGreaterThan(0);

    const second = track(call('POST', '/v1/locks/db/acquire', { lease: b }));
    await waitUntil(async () => (await status('db')).waiting === 1, 'the second caller queues');
    expect(second.settled()).toBe(false);
    expect((await status('db')).holder).toMatchObject({ key: heldA.key, token: heldA.token, lease: a });

    const released = await call('POST', '/v1/locks/db/release', { key: heldA.key, token: heldA.token });
    expect(released).toEqual({ status: 200, body: { released: true } });
    const got = await second.promise;
    expect(got.status).toBe(200);
    const heldB = got.body as unknown as Held;
    expect(heldB.key).toBe(`/muster/locks/db/waiters/${b}`);
    expect(heldB.token).toBeGreaterThan(heldA.token);
    expect(await status('db')).toMatchObject({ holder: { key: heldB.key, token: heldB.token }, waiting: 0 });
  });

  test("lockDelay: when a holder's session is lost, the next holder waits its delay on the server clock", async () => {
    const [a, b] = [await newLease(), await newLease()];
    await call('POST', '/v1/locks/db/acquire', { lease: a, lockDelay: '15s' });
    const second = track(call('POST', '/v1/locks/db/acquire', { lease: b }));
    await waitUntil(async () => (await status('db')).waiting === 1, 'the second caller queues');
    await t.backend.revokeLease(a);
    await waitUntil(async () => (await status('db')).holder?.lease === b, 'the waiter is first in the queue');
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(second.settled()).toBe(false);
    clock.advance(14_000);
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(second.settled()).toBe(false);
    clock.advance(1_000);
    const got = await second.promise;
    expect(got.status).toBe(200);
    expect(got.body).toMatchObject({ lease: b });
  });

  test.each([
    ['-1s', /invalid lock delay/],
    ['soon', /invalid lock delay/],
    ['2h', /lock delay must be at most 1h/],
  ])('lockDelay %j → 400 invalid_duration and no waiter key', async (lockDelay, message) => {
    const a = await newLease();
    const before = await t.backend.revision();
    const res = await call('POST', '/v1/locks/db/acquire', { lease: a, lockDelay });
    expect(res.status).toBe(400);
    expect(res.body).toMatchObject({ error: { code: 'invalid_duration', message: expect.stringMatching(message) } });
    expect(await t.backend.revision()).toBe(before);
  });

  test('release with a stale token is 409 not_holder and does not free the lock', async () => {
    const [a, b] = [await newLease(), await newLease()];
    const heldA = (await call('POST', '/v1/locks/db/acquire', { lease: a })).body as unknown as Held;
    await call('POST', '/v1/locks/db/release', { key: heldA.key, token: heldA.token });
    const heldB = (await call('POST', '/v1/locks/db/acquire', { lease: b })).body as unknown as Held;
    const stale = await call('POST', '/v1/locks/db/release', { key: heldA.key, token: heldA.token });
    expect(stale.status).toBe(409);
    expect(stale.body).toMatchObject({ error: { code: 'not_holder' } });
    // B's key with A's (older) token: still not the holder.
    const wrongToken = await call('POST', '/v1/locks/db/release', { key: heldB.key, token: heldA.token });
    expect(wrongToken.status).toBe(409);
    expect(await keyExists(heldB.key)).toBe(true);
  });

  test("release through another lock's name is 409 not_holder and leaves the key", async () => {
    const a = await newLease();
    const held = (await call('POST', '/v1/locks/db/acquire', { lease: a })).body as unknown as Held;
    const other = await call('POST', '/v1/locks/other/release', { key: held.key, token: held.token });
    expect(other.status).toBe(409);
    expect(other.body).toMatchObject({ error: { code: 'not_holder' } });
    expect(await keyExists(held.key)).toBe(true);
  });

  test('a timeout is 408 timeout and takes the waiter key out of the queue', async () => {
    const [a, b] = [await newLease(), await newLease()];
    await call('POST', '/v1/locks/db/acquire', { lease: a });
    const waiting = call('POST', '/v1/locks/db/acquire', { lease: b, timeout: '5s' });
    await waitUntil(() => keyExists(`/muster/locks/db/waiters/${b}`), 'the waiter key is written');
    await waitUntil(() => t.backend.openWatches > 0, 'the waiter watches its predecessor');
    clock.advance(5_000);
    const res = await waiting;
    expect(res.status).toBe(408);
    expect(res.body).toMatchObject({
      error: { code: 'timeout', message: expect.stringMatching(/lock db timed out after 5s/) },
    });
    expect(await keyExists(`/muster/locks/db/waiters/${b}`)).toBe(false);
    expect((await status('db')).waiting).toBe(0);
  });

  test('a client that disconnects mid-wait keeps its place until its lease ends; a retry finds it', async () => {
    const [a, b] = [await newLease(), await newLease()];
    const heldA = (await call('POST', '/v1/locks/db/acquire', { lease: a })).body as unknown as Held;
    const req = request({
      host: '127.0.0.1',
      port,
      method: 'POST',
      path: '/v1/locks/db/acquire',
      headers: { 'content-type': 'application/json' },
    });
    req.on('error', () => undefined);
    req.end(JSON.stringify({ lease: b }));
    const waiterKey = `/muster/locks/db/waiters/${b}`;
    await waitUntil(() => keyExists(waiterKey), 'the waiter key is written');
    await waitUntil(() => t.backend.openWatches > 0, 'the waiter watches its predecessor');
    const place = (await t.backend.get(waiterKey))?.createRevision;
    req.destroy();
    await waitUntil(() => t.backend.openWatches === 0, 'the server gives up the wait');
    expect(await keyExists(waiterKey)).toBe(true);
    expect((await status('db')).waiting).toBe(1);

    // A retry with the same session queues at its old place.
    const retry = track(call('POST', '/v1/locks/db/acquire', { lease: b }));
    await waitUntil(() => t.backend.openWatches > 0, 'the retry waits');
    await call('POST', '/v1/locks/db/release', { key: heldA.key, token: heldA.token });
    const got = await retry.promise;
    expect(got.body).toMatchObject({ key: waiterKey, token: place });

    // Revoking the session removes the key.
    await t.app.inject({ method: 'DELETE', url: `/v1/leases/${b}` });
    expect(await keyExists(waiterKey)).toBe(false);
    expect((await status('db')).holder).toBeNull();
  });

  test('a waiter whose lease is revoked mid-wait is answered 404 lease_not_found', async () => {
    const [a, b] = [await newLease(), await newLease()];
    await call('POST', '/v1/locks/db/acquire', { lease: a });
    const waiting = call('POST', '/v1/locks/db/acquire', { lease: b });
    await waitUntil(() => t.backend.openWatches > 0, 'the waiter watches its predecessor');
    await t.backend.revokeLease(b);
    const res = await waiting;
    expect(res.status).toBe(404);
    expect(res.body).toMatchObject({ error: { code: 'lease_not_found' } });
  });
});

describe('semaphores', () => {
  test('at most `limit` holders; a waiter gets a slot on release; a different limit is 409 limit_mismatch', async () => {
    const [a, b, c, d] = [await newLease(), await newLease(), await newLease(), await newLease()];
    const slotA = await call('POST', '/v1/semaphores/web/acquire', { lease: a, limit: 2 });
    const slotB = await call('POST', '/v1/semaphores/web/acquire', { lease: b, limit: 2 });
    expect([slotA.status, slotB.status]).toEqual([200, 200]);
    expect(slotA.body).toMatchObject({ name: 'web', limit: 2, lease: a });
    const third = track(call('POST', '/v1/semaphores/web/acquire', { lease: c, limit: 2 }));
    await waitUntil(
      async () => (await call('GET', '/v1/semaphores/web')).body.waiting === 1,
      'the third caller queues',
    );
    expect(third.settled()).toBe(false);
    const st = (await call('GET', '/v1/semaphores/web')).body as { limit: number; holders: Held[] };
    expect(st.limit).toBe(2);
    expect(st.holders.map((h) => h.lease)).toEqual([a, b]);

    const mismatch = await call('POST', '/v1/semaphores/web/acquire', { lease: d, limit: 3 });
    expect(mismatch.status).toBe(409);
    expect(mismatch.body).toMatchObject({
      error: { code: 'limit_mismatch', message: expect.stringMatching(/limit of 2.*asked for 3/) },
    });
    expect(await keyExists(`/muster/semaphores/web/${d}`)).toBe(false);

    const heldA = slotA.body as unknown as Held;
    expect((await call('POST', '/v1/semaphores/web/release', { key: heldA.key, token: heldA.token })).status).toBe(200);
    const got = await third.promise;
    expect(got.status).toBe(200);
    expect((got.body as unknown as Held).token).toBeGreaterThan((slotB.body as unknown as Held).token);
    expect((await call('POST', '/v1/semaphores/web/release', { key: heldA.key, token: heldA.token })).status).toBe(409);
  });
});

describe('elections', () => {
  test('campaign, leader, proclaim, resign; observe sees every change in order', async () => {
    const [a, b] = [await newLease(), await newLease()];
    const observer = await SseStream.open(port, '/v1/elections/k8s/observe');
    try {
      expect(observer.status).toBe(200);
      expect(observer.headers['content-type']).toMatch(/text\/event-stream/);
      const leaderOf = async () =>
        JSON.parse((await observer.next()).data) as { leader: { value: string; key: string } | null };
      expect(await leaderOf()).toEqual({ leader: null });

      const wonA = await call('POST', '/v1/elections/k8s/campaign', { lease: a, value: '10.0.0.1' });
      expect(wonA.status).toBe(200);
      const heldA = wonA.body as unknown as Held;
      expect(heldA.key).toBe(`/muster/elections/k8s/candidates/${a}`);
      expect((await leaderOf()).leader).toMatchObject({ value: '10.0.0.1', key: heldA.key });
      expect((await call('GET', '/v1/elections/k8s/leader')).body).toMatchObject({
        leader: { value: '10.0.0.1', token: heldA.token },
      });

      const campaignB = track(call('POST', '/v1/elections/k8s/campaign', { lease: b, value: '10.0.0.2' }));
      await waitUntil(() => keyExists(`/muster/elections/k8s/candidates/${b}`), 'B is a candidate');
      expect(campaignB.settled()).toBe(false);

      const leadA = { key: heldA.key, token: heldA.token, lease: heldA.lease };
      const proclaimed = await call('POST', '/v1/elections/k8s/proclaim', { ...leadA, value: '10.0.0.9' });
      expect(proclaimed.status).toBe(200);
      expect((await leaderOf()).leader).toMatchObject({ value: '10.0.0.9' });
      const stale = await call('POST', '/v1/elections/k8s/proclaim', {
        ...leadA,
        token: heldA.token + 100,
        value: 'x',
      });
      expect(stale.status).toBe(409);
      expect(stale.body).toMatchObject({ error: { code: 'not_holder' } });

      expect((await call('POST', '/v1/elections/k8s/resign', { key: heldA.key, token: heldA.token })).body).toEqual({
        resigned: true,
      });
      const wonB = await campaignB.promise;
      expect(wonB.status).toBe(200);
      const heldB = wonB.body as unknown as Held;
      expect(heldB.token).toBeGreaterThan(heldA.token);
      expect((await leaderOf()).leader).toMatchObject({ value: '10.0.0.2', key: heldB.key });
      expect((await call('POST', '/v1/elections/k8s/resign', { key: heldA.key, token: heldA.token })).status).toBe(409);

      await call('POST', '/v1/elections/k8s/resign', { key: heldB.key, token: heldB.token });
      expect(await leaderOf()).toEqual({ leader: null });
      expect((await call('GET', '/v1/elections/k8s/leader')).body).toEqual({ leader: null });
      expect(observer.pending()).toBe(0);
    } finally {
      observer.close();
    }
    await waitUntil(() => t.backend.openWatches === 0, 'the observer closes its watch when the client goes');
  });

  test('a bad election name on observe is a JSON 400, not a stream', async () => {
    const res = await fetch(`http://127.0.0.1:${port}/v1/elections/.x/observe`);
    expect(res.status).toBe(400);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe('invalid_name');
  });
});

describe('barriers', () => {
  test('count reached releases everyone; a late arrival passes; reset closes it again', async () => {
    const leases = [await newLease(), await newLease(), await newLease(), await newLease(), await newLease()];
    const enter = (i: number, extra: Record<string, unknown> = {}) =>
      call('POST', '/v1/barriers/hadoop/enter', { lease: leases[i], count: 3, id: `node-${i}`, ...extra });
    const first = track(enter(0));
    const second = track(enter(1));
    await waitUntil(async () => (await call('GET', '/v1/barriers/hadoop')).body.arrived === 2, 'two arrived');
    expect((await call('GET', '/v1/barriers/hadoop')).body).toEqual({
      name: 'hadoop',
      count: 3,
      arrived: 2,
      ready: false,
    });
    expect(first.settled() || second.settled()).toBe(false);
    const third = await enter(2);
    expect(third).toMatchObject({ status: 200, body: { ready: true, arrived: 3 } });
    expect((await first.promise).body).toMatchObject({ ready: true });
    expect((await second.promise).body).toMatchObject({ ready: true });

    const late = await enter(3);
    expect(late).toMatchObject({ status: 200, body: { ready: true } });

    const mismatch = await call('POST', '/v1/barriers/hadoop/enter', { lease: leases[4], count: 5, id: 'node-x' });
    expect(mismatch.status).toBe(409);
    expect(mismatch.body).toMatchObject({ error: { code: 'limit_mismatch' } });

    const reset = await call('DELETE', '/v1/barriers/hadoop');
    expect(reset.body).toMatchObject({ reset: true });
    expect((await call('GET', '/v1/barriers/hadoop')).body).toEqual({
      name: 'hadoop',
      count: null,
      arrived: 0,
      ready: false,
    });

    // After the reset, one arrival waits again, until its timeout.
    const alone = call('POST', '/v1/barriers/hadoop/enter', {
      lease: leases[4],
      count: 3,
      id: 'node-4',
      timeout: '1m',
    });
    await waitUntil(() => t.backend.openWatches === 1, 'the arrival waits');
    clock.advance(60_000);
    const res = await alone;
    expect(res.status).toBe(408);
    expect(res.body).toMatchObject({ error: { code: 'timeout' } });
  });
});

describe('once', () => {
  const begin = (lease: string) => call('POST', '/v1/once/schema-v42/begin', { lease });

  test('the first caller runs, the others wait and get its result; status; reset', async () => {
    const [a, b, c] = [await newLease(), await newLease(), await newLease()];
    const runner = await begin(a);
    expect(runner.status).toBe(200);
    expect(runner.body).toMatchObject({ role: 'runner', key: `/muster/once/schema-v42/runners/${a}` });
    const { key, token, startedAt } = runner.body as unknown as { key: string; token: number; startedAt: string };
    const turn = { key, token, startedAt };

    const waiter = track(begin(b));
    await waitUntil(
      async () => (await call('GET', '/v1/once/schema-v42')).body.waiting === 1,
      'the second caller waits',
    );
    expect(waiter.settled()).toBe(false);
    expect((await call('GET', '/v1/once/schema-v42')).body).toMatchObject({
      state: 'running',
      runner: { key: turn.key, token: turn.token },
    });

    const done = await call('POST', '/v1/once/schema-v42/complete', {
      ...turn,
      exitCode: 3,
      output: 'migrated',
      runner: 'host-a',
    });
    expect(done.status).toBe(200);
    expect(done.body).toMatchObject({
      result: { exitCode: 3, output: 'migrated', runner: 'host-a', token: turn.token },
    });
    expect((await waiter.promise).body).toMatchObject({ role: 'done', result: { exitCode: 3, output: 'migrated' } });
    expect((await begin(c)).body).toMatchObject({ role: 'done', result: { exitCode: 3 } });
    expect((await call('GET', '/v1/once/schema-v42')).body).toMatchObject({
      state: 'done',
      result: { exitCode: 3 },
      runner: null,
    });

    // Completing twice is refused.
    expect((await call('POST', '/v1/once/schema-v42/complete', { ...turn, exitCode: 0 })).status).toBe(409);

    expect((await call('DELETE', '/v1/once/schema-v42')).body).toEqual({ reset: true });
    expect((await call('GET', '/v1/once/schema-v42')).body).toMatchObject({ state: 'idle', result: null });
    expect((await begin(c)).body).toMatchObject({ role: 'runner' });
  });

  test("a waiter takes over when the runner's lease is revoked; the old runner cannot complete", async () => {
    const [a, b] = [await newLease(), await newLease()];
    const { key, token } = (await begin(a)).body as unknown as { key: string; token: number };
    const turnA = { key, token };
    const waiter = track(begin(b));
    await waitUntil(() => keyExists(`/muster/once/schema-v42/runners/${b}`), 'the waiter queues');
    expect(waiter.settled()).toBe(false);
    await t.app.inject({ method: 'DELETE', url: `/v1/leases/${a}` });
    const takeover = await waiter.promise;
    expect(takeover.body).toMatchObject({ role: 'runner', key: `/muster/once/schema-v42/runners/${b}` });
    const late = await call('POST', '/v1/once/schema-v42/complete', { ...turnA, exitCode: 0 });
    expect(late.status).toBe(409);
    expect(late.body).toMatchObject({ error: { code: 'not_holder' } });
    expect((await call('GET', '/v1/once/schema-v42')).body).toMatchObject({ state: 'running' });
  });

  test("complete with another once's runner key is refused and records nothing", async () => {
    const a = await newLease();
    const { key, token } = (await call('POST', '/v1/once/one/begin', { lease: a })).body as unknown as {
      key: string;
      token: number;
    };
    const turn = { key, token };
    const res = await call('POST', '/v1/once/two/complete', { ...turn, exitCode: 0 });
    expect(res.status).toBe(409);
    expect(await keyExists('/muster/once/two/result')).toBe(false);
    expect(await keyExists(turn.key)).toBe(true);
  });
});

describe('wait', () => {
  const wait = (query: string) => call('GET', `/v1/wait/ephemerals/db/ready?${query}`);
  const putValue = (value: string) =>
    t.app.inject({ method: 'PUT', url: '/v1/kv/ephemerals/db/ready', payload: value });

  test('exists: returns when the key appears', async () => {
    const waiting = track(wait('exists=true'));
    await waitUntil(() => t.backend.openWatches === 1, 'the wait watches the key');
    await t.app.inject({ method: 'PUT', url: '/v1/kv/ephemerals/db/other', payload: 'x' });
    expect(waiting.settled()).toBe(false);
    await putValue('booting');
    const res = await waiting.promise;
    expect(res).toMatchObject({
      status: 200,
      body: { key: '/ephemerals/db/ready', satisfied: true, revision: 2, kv: { value: 'booting' } },
    });
  });

  test('equals: ignores other values', async () => {
    const waiting = track(wait('equals=ready'));
    await waitUntil(() => t.backend.openWatches === 1, 'the wait watches the key');
    await putValue('booting');
    await putValue('almost');
    expect(waiting.settled()).toBe(false);
    await putValue('ready');
    expect((await waiting.promise).body).toMatchObject({ revision: 3, kv: { value: 'ready', version: 3 } });
  });

  test('matches: a regular expression', async () => {
    await putValue('v1');
    const waiting = wait(`matches=${encodeURIComponent('^v[2-9]$')}`);
    await waitUntil(() => t.backend.openWatches === 1, 'the wait watches the key');
    await putValue('v2');
    expect((await waiting).body).toMatchObject({ kv: { value: 'v2' } });
  });

  test('deleted: returns when the key goes, with kv null', async () => {
    await putValue('here');
    const waiting = wait('deleted=true');
    await waitUntil(() => t.backend.openWatches === 1, 'the wait watches the key');
    await t.app.inject({ method: 'DELETE', url: '/v1/kv/ephemerals/db/ready' });
    expect((await waiting).body).toEqual({ key: '/ephemerals/db/ready', satisfied: true, revision: 2, kv: null });
  });

  test('a condition that already holds returns at once', async () => {
    await putValue('ready');
    expect((await wait('equals=ready')).body).toMatchObject({ revision: 1, kv: { value: 'ready' } });
  });

  test('a timeout is 408 timeout', async () => {
    const waiting = wait('exists=true&timeout=10s');
    await waitUntil(() => t.backend.openWatches === 1, 'the wait watches the key');
    clock.advance(10_000);
    const res = await waiting;
    expect(res.status).toBe(408);
    expect(res.body).toMatchObject({
      error: { code: 'timeout', message: expect.stringMatching(/timed out after 10s/) },
    });
    await waitUntil(() => t.backend.openWatches === 0, 'the wait closes its watch');
  });

  test.each(['', 'exists=true&equals=x', 'deleted=true&matches=x', 'exists=false'])(
    'conditions %j: exactly one is required → 400',
    async (query) => {
      const res = await wait(query);
      expect(res.status).toBe(400);
      expect(res.body).toMatchObject({
        error: { code: 'invalid_request', message: expect.stringMatching(/exactly one condition/) },
      });
    },
  );
});

describe('bad names and missing leases', () => {
  const longName = 'n'.repeat(129);
  test.each([
    ['POST', '/v1/locks/.hidden/acquire', { lease: 'abc' }],
    ['POST', '/v1/locks/a%20b/release', { key: '/muster/locks/a b/waiters/abc', token: 1 }],
    ['GET', '/v1/locks/-x', undefined],
    ['POST', '/v1/semaphores/a%2Fb/acquire', { lease: 'abc', limit: 1 }],
    ['POST', '/v1/semaphores/_x/release', { key: '/muster/semaphores/_x/abc', token: 1 }],
    ['GET', '/v1/elections/x%2Fy/leader', undefined],
    ['POST', '/v1/elections/a%20b/resign', { key: '/muster/elections/a b/candidates/abc', token: 1 }],
    [
      'POST',
      '/v1/elections/.e/proclaim',
      { key: '/muster/elections/.e/candidates/abc', token: 1, lease: 'abc', value: 'v' },
    ],
    ['POST', '/v1/barriers/-b/enter', { lease: 'abc', count: 2 }],
    ['DELETE', '/v1/barriers/b%3Fc', undefined],
    ['POST', '/v1/once/.o/begin', { lease: 'abc' }],
    ['POST', '/v1/once/o%21/complete', { key: '/muster/once/o!/runners/abc', token: 1, exitCode: 0 }],
  ] as const)('%s %s → 400 invalid_name', async (method, path, body) => {
    const res = await call(method, path, body);
    expect(res.status).toBe(400);
    expect(res.body).toMatchObject({
      error: { code: 'invalid_name', message: expect.stringMatching(/invalid [a-z]+ name/) },
    });
    expect(await t.backend.revision()).toBe(0);
  });

  test('a name of 128 characters is taken; 129 are refused with 400 naming the name', async () => {
    expect((await call('GET', `/v1/locks/${'n'.repeat(128)}`)).status).toBe(200);
    const res = await call('GET', `/v1/locks/${longName}`);
    expect(res.status).toBe(400);
    expect(res.body).toMatchObject({ error: { code: 'invalid_request', message: expect.stringMatching(/name/) } });
  });

  test.each([
    ['/v1/locks/l/acquire', {}],
    ['/v1/semaphores/s/acquire', { limit: 2 }],
    ['/v1/elections/e/campaign', { value: 'v' }],
    ['/v1/barriers/b/enter', { count: 2 }],
    ['/v1/once/o/begin', {}],
  ])('%s without a lease → 400 naming lease', async (path, body) => {
    const res = await call('POST', path, body);
    expect(res.status).toBe(400);
    expect(res.body).toMatchObject({
      error: { code: 'invalid_request', message: expect.stringMatching(/missing field lease/) },
    });
  });

  test.each([
    ['/v1/locks/l/acquire', {}],
    ['/v1/semaphores/s/acquire', { limit: 2 }],
    ['/v1/elections/e/campaign', { value: 'v' }],
    ['/v1/once/o/begin', {}],
  ])('%s with an unknown lease → 404 lease_not_found, no key left', async (path, body) => {
    const res = await call('POST', path, { ...body, lease: 'abcdef' });
    expect(res.status).toBe(404);
    expect(res.body).toMatchObject({ error: { code: 'lease_not_found' } });
    expect(await t.backend.revision()).toBe(0);
  });
});

test('blocked calls answer 503 closed when the server shuts down', async () => {
  const [a, b] = [await newLease(), await newLease()];
  await call('POST', '/v1/locks/db/acquire', { lease: a });
  const waiting = call('POST', '/v1/locks/db/acquire', { lease: b });
  await waitUntil(() => t.backend.openWatches > 0, 'the second caller waits');
  const closing = t.app.close();
  const res = await waiting;
  await closing;
  expect(res.status).toBe(503);
  expect(res.body).toMatchObject({ error: { code: 'closed' } });
});
