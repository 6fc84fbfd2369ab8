import { connect } from 'node:net';
import { afterEach, beforeEach, expect, test } from 'vitest';
import type { TestApp } from './harness.js';
import { SseStream, makeApp, waitUntil } from './harness.js';

/** Warnings the process emitted during a test (a listener leak shows up as MaxListenersExceededWarning). */
let warnings: Error[];
const onWarning = (warning: Error) => warnings.push(warning);
let t: TestApp;
beforeEach(async () => {
  warnings = [];
  process.on('warning', onWarning);
  t = await makeApp({ maxValueBytes: 512 * 1024 });
  await t.listen();
});
afterEach(async () => {
  process.off('warning', onWarning);
  await t.close();
});

test('a slow reader meeting backpressure on every write leaves no listener behind', async () => {
  const socket = connect(t.port, '127.0.0.1');
  await new Promise((resolve) => socket.once('connect', resolve));
  socket.write(`GET /v1/watch/big/ HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n`);
  let received = 0;
  socket.on('data', (chunk: Buffer) => (received += chunk.length));
  await waitUntil(() => received > 0, 'the stream opens');
  socket.pause(); // the reader stops reading: the server meets backpressure
  const value = 'v'.repeat(256 * 1024);
  for (let i = 0; i < 60; i++) {
    await t.app.inject({ method: 'PUT', url: `/v1/kv/big/${i % 4}`, payload: value });
    if (i % 10 === 9) {
      // Read a little, then stall again: drain after drain on the same response.
      socket.resume();
      await new Promise((resolve) => setTimeout(resolve, 20));
      socket.pause();
    }
  }
  socket.resume();
  await waitUntil(() => received > 60 * 256 * 1024, 'every event arrives', 20_000);
  socket.destroy();
  expect(warnings.map((w) => w.message)).toEqual([]);
});

test('many streams open at once and reconnecting add no listener that outlives them', async () => {
  for (let round = 0; round < 3; round++) {
    const streams = await Promise.all(Array.from({ length: 15 }, () => SseStream.open(t.port, '/v1/watch/many/')));
    await waitUntil(() => streams.every((s) => s.text.startsWith(': watching')), 'the streams open');
    for (const stream of streams) stream.close();
  }
  await new Promise((resolve) => setTimeout(resolve, 50));
  expect(warnings.map((w) => w.message)).toEqual([]);
});
