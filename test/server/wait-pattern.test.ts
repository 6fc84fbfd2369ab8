import { afterEach, beforeEach, expect, test } from 'vitest';
import type { TestApp } from './harness.js';
import { expectError, makeApp } from './harness.js';

let t: TestApp;
beforeEach(async () => {
  t = await makeApp();
});
afterEach(async () => {
  await t.close();
});

/** The longest the event loop went without running a 5 ms timer while `work` ran. */
async function longestStall(work: () => Promise<unknown>): Promise<number> {
  let last = performance.now();
  let longest = 0;
  const timer = setInterval(() => {
    const now = performance.now();
    longest = Math.max(longest, now - last);
    last = now;
  }, 5);
  try {
    await work();
  } finally {
    clearInterval(timer);
  }
  return longest;
}

test('a catastrophic-backtracking pattern cannot stall the server', async () => {
  // In JavaScript's engine this pattern against 32 a's and a "!" takes seconds, 4× more per 2 a's.
  await t.app.inject({ method: 'PUT', url: '/v1/kv/hostile', payload: `${'a'.repeat(32)}!` });
  const pattern = encodeURIComponent('^(a+)+$');
  const stall = await longestStall(async () => {
    const res = await t.app.inject({ method: 'GET', url: `/v1/wait/hostile?matches=${pattern}&timeout=300ms` });
    expectError(res, 408, 'timeout', /timed out/);
    // And on every change of the key, too.
    const again = t.app.inject({ method: 'GET', url: `/v1/wait/hostile?matches=${pattern}&timeout=300ms` });
    await t.app.inject({ method: 'PUT', url: '/v1/kv/hostile', payload: `${'a'.repeat(40)}!` });
    expectError(await again, 408, 'timeout', /timed out/);
  });
  expect(stall).toBeLessThan(250);
});

test('patterns match as before: anywhere unless anchored, and RE2 refuses backreferences', async () => {
  await t.app.inject({ method: 'PUT', url: '/v1/kv/state', payload: 'node is ready now' });
  const ok = await t.app.inject({ method: 'GET', url: `/v1/wait/state?matches=${encodeURIComponent('ready|up')}` });
  expect(ok.statusCode).toBe(200);
  const anchored = await t.app.inject({
    method: 'GET',
    url: `/v1/wait/state?matches=${encodeURIComponent('^ready$')}&timeout=100ms`,
  });
  expectError(anchored, 408, 'timeout', /timed out/);
  const backref = await t.app.inject({ method: 'GET', url: `/v1/wait/state?matches=${encodeURIComponent('(a)\\1')}` });
  expectError(backref, 400, 'invalid_pattern', /RE2 syntax/);
});
