import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import type { WireCompactedEvent, WireWatchEvent } from '../../src/api/wire.js';
import { SseStream, makeApp, metricValue, waitUntil } from './harness.js';
import type { SseEvent, TestApp } from './harness.js';

let t: TestApp;
let port: number;
beforeEach(async () => {
  t = await makeApp();
  port = await t.listen();
});
afterEach(async () => {
  await t.close();
});

const streams: SseStream[] = [];
async function watch(path: string, headers: Record<string, string> = {}): Promise<SseStream> {
  const stream = await SseStream.open(port, path, headers);
  streams.push(stream);
  return stream;
}
afterEach(() => {
  for (const s of streams.splice(0)) s.close();
});

const put = (key: string, value: string) => t.app.inject({ method: 'PUT', url: `/v1/kv${key}`, payload: value });
const del = (key: string) => t.app.inject({ method: 'DELETE', url: `/v1/kv${key}` });
const txnPut = (...keys: string[]) =>
  t.app.inject({
    method: 'POST',
    url: '/v1/txn',
    payload: { success: keys.map((key) => ({ type: 'put', key, value: `t${key}` })) },
  });
const data = (e: SseEvent) => JSON.parse(e.data) as WireWatchEvent;
const summary = (events: SseEvent[]) => events.map((e) => [e.event, data(e).key, data(e).revision, e.id ?? null]);

async function openWatches(): Promise<number | undefined> {
  const res = await fetch(`http://127.0.0.1:${port}/metrics`);
  return metricValue(await res.text(), 'muster_open_watches');
}

describe('SSE framing', () => {
  test('event: put|delete, data: JSON, and id: only on the last event of each revision', async () => {
    await put('/w/a', 'A'); // 1
    await txnPut('/w/b', '/w/c', '/w/d'); // 2
    await put('/wx/other', 'not under /w/'); // 3
    await del('/w/a'); // 4
    const stream = await watch('/v1/watch/w/?fromRevision=1');
    expect(stream.status).toBe(200);
    expect(stream.headers['content-type']).toMatch(/^text\/event-stream/);
    expect(stream.headers['cache-control']).toBe('no-cache');
    const events = await stream.take(5);
    expect(summary(events)).toEqual([
      ['put', '/w/a', 1, '1'],
      ['put', '/w/b', 2, null],
      ['put', '/w/c', 2, null],
      ['put', '/w/d', 2, '2'],
      ['delete', '/w/a', 4, '4'],
    ]);
    expect(data(events[0] as SseEvent)).toEqual({
      type: 'put',
      revision: 1,
      key: '/w/a',
      value: 'A',
      createRevision: 1,
      modRevision: 1,
      version: 1,
      lease: null,
    });
    expect(data(events[4] as SseEvent)).toMatchObject({
      type: 'delete',
      key: '/w/a',
      value: '',
      version: 0,
      modRevision: 4,
    });
    // The fields come in the order id, event, data, one per line.
    expect(events[3]?.lines.map((l) => l.split(':')[0])).toEqual(['id', 'event', 'data']);
    expect(events[1]?.lines.map((l) => l.split(':')[0])).toEqual(['event', 'data']);
    expect(stream.text).toMatch(/^: watching\n\n/);
    expect(stream.text).not.toContain('/wx/other');
  });

  test('binary values arrive as base64 with encoding', async () => {
    await t.app.inject({ method: 'PUT', url: '/v1/kv/bin/x', payload: Buffer.from([0xff, 0xfe]) });
    const stream = await watch('/v1/watch/bin/?fromRevision=1');
    const event = data(await stream.next());
    expect(event).toMatchObject({ encoding: 'base64', value: '//4=' });
  });

  test('prefix=false watches one key only; prevKv=true carries the previous value', async () => {
    await put('/k', 'old');
    const stream = await watch('/v1/watch/k?prefix=false&prevKv=true');
    await put('/kk', 'sibling');
    await put('/k', 'new');
    const event = data(await stream.next());
    expect(event).toMatchObject({
      key: '/k',
      value: 'new',
      revision: 3,
      prevKv: { key: '/k', value: 'old', modRevision: 1 },
    });
  });
});

describe('replay and live', () => {
  test('fromRevision replays history in order, then follows live writes', async () => {
    await put('/r/1', 'a'); // 1
    await put('/r/2', 'b'); // 2
    await put('/r/3', 'c'); // 3
    const stream = await watch('/v1/watch/r/?fromRevision=2');
    expect(summary(await stream.take(2))).toEqual([
      ['put', '/r/2', 2, '2'],
      ['put', '/r/3', 3, '3'],
    ]);
    await put('/r/4', 'd');
    await del('/r/1');
    expect(summary(await stream.take(2))).toEqual([
      ['put', '/r/4', 4, '4'],
      ['delete', '/r/1', 5, '5'],
    ]);
  });

  test('without fromRevision only changes after the watch starts arrive', async () => {
    await put('/n/old', 'x');
    const stream = await watch('/v1/watch/n/');
    await waitUntil(() => t.backend.openWatches === 1, 'the watch is open');
    await put('/n/new', 'y');
    expect(summary([await stream.next()])).toEqual([['put', '/n/new', 2, '2']]);
  });

  test('Last-Event-ID resumes after the last revision seen: nothing missed, nothing repeated', async () => {
    await put('/l/a', '1'); // 1
    await txnPut('/l/b', '/l/c'); // 2
    const first = await watch('/v1/watch/l/?fromRevision=1');
    const seen = await first.take(3);
    const lastId = seen.filter((e) => e.id !== undefined).at(-1)?.id;
    expect(lastId).toBe('2');
    first.close();
    await waitUntil(() => t.backend.openWatches === 0, 'the first watch is closed');
    // Written while the client was away.
    await txnPut('/l/d', '/l/e'); // 3
    await del('/l/a'); // 4
    // fromRevision is ignored when Last-Event-ID is given (as EventSource resends the URL).
    const resumed = await watch('/v1/watch/l/?fromRevision=1', { 'last-event-id': String(lastId) });
    expect(summary(await resumed.take(3))).toEqual([
      ['put', '/l/d', 3, null],
      ['put', '/l/e', 3, '3'],
      ['delete', '/l/a', 4, '4'],
    ]);
    await put('/l/f', 'live');
    expect(summary([await resumed.next()])).toEqual([['put', '/l/f', 5, '5']]);
    expect(resumed.pending()).toBe(0);
  });
});

describe('compaction', () => {
  test('a start older than the history gives event: compacted with the oldest revision, then the stream ends', async () => {
    for (let i = 1; i <= 5; i++) await put('/c/k', String(i));
    await t.backend.compact(4);
    const stream = await watch('/v1/watch/c/?fromRevision=2');
    const event = await stream.next();
    expect(event.event).toBe('compacted');
    expect(event.id).toBeUndefined();
    const body = JSON.parse(event.data) as WireCompactedEvent;
    expect(body).toEqual({ requestedRevision: 2, oldestRevision: 4 });
    await stream.ended;
    expect(stream.pending()).toBe(0);
    await waitUntil(() => t.backend.openWatches === 0, 'the compacted watch is closed');
  });

  test('a Last-Event-ID older than the history is compacted too; the oldest revision itself replays', async () => {
    for (let i = 1; i <= 5; i++) await put('/c/k', String(i));
    await t.backend.compact(4);
    const stale = await watch('/v1/watch/c/', { 'last-event-id': '1' });
    expect((await stale.next()).event).toBe('compacted');
    await stale.ended;
    const fresh = await watch('/v1/watch/c/', { 'last-event-id': '3' });
    expect(summary(await fresh.take(2))).toEqual([
      ['put', '/c/k', 4, '4'],
      ['put', '/c/k', 5, '5'],
    ]);
  });
});

describe('disconnects and shutdown', () => {
  test('a client that goes away closes the backend watch; muster_open_watches goes back to 0', async () => {
    expect(await openWatches()).toBe(0);
    const a = await watch('/v1/watch/d/');
    const b = await watch('/v1/watch/e/?fromRevision=1');
    await waitUntil(async () => (await openWatches()) === 2, 'two watches are counted');
    expect(t.backend.openWatches).toBe(2);
    a.close();
    await waitUntil(async () => (await openWatches()) === 1, 'the gauge drops to 1');
    await waitUntil(() => t.backend.openWatches === 1, 'the backend watch is closed');
    b.close();
    await waitUntil(async () => (await openWatches()) === 0, 'the gauge drops to 0');
    await waitUntil(() => t.backend.openWatches === 0, 'every backend watch is closed');
  });

  test('closing the server ends open streams', async () => {
    const stream = await watch('/v1/watch/s/');
    await waitUntil(() => t.backend.openWatches === 1, 'the watch is open');
    await t.app.close();
    await stream.ended;
    expect(t.backend.openWatches).toBe(0);
  });
});
