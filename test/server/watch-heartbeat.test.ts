import { afterEach, beforeEach, expect, test } from 'vitest';
import { ManualClock } from '../../src/core/clock.js';
import { SseStream, makeApp, waitUntil } from './harness.js';
import type { TestApp } from './harness.js';

/** The watch stream's heartbeat runs on the injected clock, so it is tested without waiting 15 s. */

let t: TestApp;
let clock: ManualClock;
beforeEach(async () => {
  clock = new ManualClock();
  t = await makeApp({ clock });
  await t.listen();
});
afterEach(async () => {
  await t.close();
});

const beats = (text: string) => text.split(': keep-alive\n\n').length - 1;

test('an idle stream gets a comment line every 15 s, and nothing in between', async () => {
  const stream = await SseStream.open(t.port, '/v1/watch/idle/');
  await waitUntil(() => stream.text.startsWith(': watching'), 'the stream opens');
  clock.advance(14_999);
  // A write that lands in the stream proves the earlier advance wrote nothing after it.
  await t.app.inject({ method: 'PUT', url: '/v1/kv/idle/a', payload: 'x' });
  await stream.next();
  expect(beats(stream.text)).toBe(0);
  clock.advance(1);
  await waitUntil(() => beats(stream.text) === 1, 'the first heartbeat');
  clock.advance(15_000);
  await waitUntil(() => beats(stream.text) === 2, 'the second heartbeat');
  // Heartbeats are comments: no event is parsed from them.
  expect(stream.pending()).toBe(0);
  stream.close();
});
