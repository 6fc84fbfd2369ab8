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
  // Each heartbeat is followed by the revision delivered so far (Last-Event-ID for a resume).
  let revision = await t.backend.revision();
  const first = await stream.next();
  expect(first).toMatchObject({ event: 'progress', id: String(revision), data: JSON.stringify({ revision }) });
  // A write elsewhere moves the revision; the next heartbeat's progress says so.
  await t.app.inject({ method: 'PUT', url: '/v1/kv/elsewhere', payload: 'y' });
  revision = await t.backend.revision();
  clock.advance(15_000);
  await waitUntil(() => beats(stream.text) === 2, 'the second heartbeat');
  expect(await stream.next()).toMatchObject({ event: 'progress', id: String(revision) });
  expect(stream.pending()).toBe(0);
  stream.close();
});

test('a client that reconnects with the Last-Event-ID of a progress mark gets exactly the gap', async () => {
  const stream = await SseStream.open(t.port, '/v1/watch/quiet/');
  await waitUntil(() => stream.text.startsWith(': watching'), 'the stream opens');
  await t.app.inject({ method: 'PUT', url: '/v1/kv/other/x', payload: '1' });
  clock.advance(15_000);
  const mark = await stream.next();
  expect(mark.event).toBe('progress');
  stream.close();
  // While disconnected: a write to the watched prefix.
  await t.app.inject({ method: 'PUT', url: '/v1/kv/quiet/a', payload: 'missed?' });
  const resumed = await SseStream.open(t.port, '/v1/watch/quiet/', { 'last-event-id': mark.id ?? '' });
  const event = await resumed.next();
  expect(event.event).toBe('put');
  expect(JSON.parse(event.data)).toMatchObject({ key: '/quiet/a', value: 'missed?' });
  expect(resumed.pending()).toBe(0);
  resumed.close();
});
