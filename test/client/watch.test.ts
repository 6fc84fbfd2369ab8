import { afterEach, describe, expect, it, vi } from 'vitest';
import { ManualClock } from '../../src/core/clock.js';
import type { WatchEvent } from '../../src/core/backend.js';
import { MusterClient } from '../../src/client/muster-client.js';
import type { WatchStatus } from '../../src/client/watch-stream.js';
import { CompactedError } from '../../src/core/errors.js';
import { TcpProxy } from './tcp-proxy.js';
import type { TestServer } from './test-server.js';
import { startTestServer } from './test-server.js';

const text = (bytes: Uint8Array): string => Buffer.from(bytes).toString('utf8');
const summary = (e: WatchEvent): string =>
  `${e.revision} ${e.type} ${e.kv.key}${e.type === 'put' ? `=${text(e.kv.value)}` : ''}`;

/** Pull events from an iterator until `count` have arrived. */
async function take(iterator: AsyncIterator<WatchEvent>, count: number): Promise<WatchEvent[]> {
  const events: WatchEvent[] = [];
  while (events.length < count) {
    const next = await iterator.next();
    if (next.done === true) throw new Error(`the watch ended after ${events.length} of ${count} events`);
    events.push(next.value);
  }
  return events;
}

describe('MusterClient.watch', () => {
  const cleanups: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  async function serve(): Promise<{ server: TestServer; client: MusterClient }> {
    const server = await startTestServer();
    cleanups.push(() => server.close());
    return { server, client: new MusterClient({ endpoints: server.url }) };
  }

  it('replays history from a revision, then follows live, in order', async () => {
    const { client } = await serve();
    const first = await client.put('/w/a', '1');
    await client.put('/w/b', '2');
    await client.put('/other', 'ignored');
    await client.delete('/w/a');

    const iterator = client.watch('/w/', { fromRevision: first.revision })[Symbol.asyncIterator]();
    cleanups.push(async () => void (await iterator.return?.()));
    const replayed = await take(iterator, 3);
    expect(replayed.map(summary)).toEqual([
      `${first.revision} put /w/a=1`,
      `${first.revision + 1} put /w/b=2`,
      `${first.revision + 3} delete /w/a`,
    ]);
    const live = await client.put('/w/c', '3');
    expect((await take(iterator, 1)).map(summary)).toEqual([`${live.revision} put /w/c=3`]);
  });

  it('without fromRevision, delivers only changes after it started', async () => {
    const { client } = await serve();
    await client.put('/n/before', 'x');
    const statuses: WatchStatus[] = [];
    let connected!: () => void;
    const isConnected = new Promise<void>((resolve) => (connected = resolve));
    const iterator = client
      .watch('/n/', {
        onStatus: (status) => {
          statuses.push(status);
          if (status.type === 'connected') connected();
        },
      })
      [Symbol.asyncIterator]();
    cleanups.push(async () => void (await iterator.return?.()));
    const pending = iterator.next();
    await isConnected;
    const after = await client.put('/n/after', 'y');
    const event = (await pending).value as WatchEvent;
    expect(summary(event)).toBe(`${after.revision} put /n/after=y`);
  });

  it('watches one key with prefix: false', async () => {
    const { client } = await serve();
    const start = await client.put('/k/a', '1');
    await client.put('/k/ab', 'not this one');
    await client.put('/k/a', '2');
    const iterator = client.watch('/k/a', { prefix: false, fromRevision: start.revision })[Symbol.asyncIterator]();
    cleanups.push(async () => void (await iterator.return?.()));
    expect((await take(iterator, 2)).map((e) => text(e.kv.value))).toEqual(['1', '2']);
  });

  it('throws CompactedError with the oldest revision when its start is compacted', async () => {
    const { server, client } = await serve();
    for (let i = 0; i < 5; i++) await client.put('/c/k', String(i));
    const revision = await server.backend.revision();
    await server.backend.compact(revision);
    const iterator = client.watch('/c/', { fromRevision: 1 })[Symbol.asyncIterator]();
    const error = await iterator.next().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(CompactedError);
    expect((error as CompactedError).oldestRevision).toBe(await server.backend.oldestRevision());
  });

  it('ends when its signal aborts', async () => {
    const { client } = await serve();
    const controller = new AbortController();
    const iterator = client.watch('/s/', { signal: controller.signal })[Symbol.asyncIterator]();
    const pending = iterator.next();
    controller.abort();
    expect(await pending).toEqual({ done: true, value: undefined });
  });

  it('a quiet watch resumes after a cut from the server progress mark, even once its start is compacted', async () => {
    const clock = new ManualClock();
    const server = await startTestServer({ clock });
    cleanups.push(() => server.close());
    const proxy = await TcpProxy.start(server.port);
    cleanups.push(() => proxy.close());
    const direct = new MusterClient({ endpoints: server.url });
    const client = new MusterClient({ endpoints: proxy.url });
    const statuses: WatchStatus[] = [];
    const start = (await direct.put('/noise/0', 'x')).revision + 1;
    const iterator = client
      .watch('/quiet/', { fromRevision: start, onStatus: (s) => statuses.push(s) })
      [Symbol.asyncIterator]();
    cleanups.push(async () => void (await iterator.return?.()));
    const pending = iterator.next();
    await vi.waitFor(() => expect(statuses.some((s) => s.type === 'connected')).toBe(true));
    // Much happens elsewhere, and the history the watch started from is compacted away.
    for (let i = 1; i <= 20; i++) await direct.put(`/noise/${i}`, 'x');
    const compactTo = (await direct.put('/noise/last', 'x')).revision;
    await server.backend.compact(compactTo);
    // A heartbeat: the server says the watch has everything up to now.
    clock.advance(15_000);
    await new Promise((resolve) => setTimeout(resolve, 100));
    proxy.cutAll();
    const written = await direct.put('/quiet/a', 'seen');
    const [event] = [await pending];
    expect(event.done).toBe(false);
    expect(event.value).toMatchObject({ revision: written.revision, kv: { key: '/quiet/a' } });
  });

  it('resumes after a cut in the middle of a revision: nothing missed, nothing repeated', async () => {
    const { server, client: direct } = await serve();
    const proxy = await TcpProxy.start(server.port);
    cleanups.push(() => proxy.close());
    const client = new MusterClient({ endpoints: proxy.url });

    const first = await direct.put('/r/before', 'b');
    // One revision with 20 events: the cut falls between its 10th and 11th.
    const batch = await direct.txn({
      compare: [],
      success: Array.from({ length: 20 }, (_, i) => ({
        type: 'put' as const,
        key: `/r/batch/${String(i).padStart(2, '0')}`,
        value: `v${i}`,
      })),
      failure: [],
    });
    const cut = proxy.cutAfter('/r/batch/10"');
    const iterator = client.watch('/r/', { fromRevision: first.revision })[Symbol.asyncIterator]();
    cleanups.push(async () => void (await iterator.return?.()));

    const firstEvent = await take(iterator, 1);
    await cut;
    const rest = await take(iterator, 20);
    const after = await direct.put('/r/after', 'a');
    const last = await take(iterator, 1);

    const keys = [...firstEvent, ...rest, ...last].map((e) => `${e.revision} ${e.kv.key}`);
    expect(keys).toEqual([
      `${first.revision} /r/before`,
      ...Array.from({ length: 20 }, (_, i) => `${batch.revision} /r/batch/${String(i).padStart(2, '0')}`),
      `${after.revision} /r/after`,
    ]);
  });

  it('replaces a connection that went silent without closing, and misses nothing', async () => {
    const { server, client: direct } = await serve();
    const proxy = await TcpProxy.start(server.port);
    cleanups.push(() => proxy.close());
    const client = new MusterClient({ endpoints: proxy.url });
    const start = await direct.put('/f/1', 'one');
    const statuses: WatchStatus[] = [];
    const iterator = client
      .watch('/f/', { fromRevision: start.revision, idleTimeoutMs: 300, onStatus: (s) => statuses.push(s) })
      [Symbol.asyncIterator]();
    cleanups.push(async () => void (await iterator.return?.()));
    expect((await take(iterator, 1)).map(summary)).toEqual([`${start.revision} put /f/1=one`]);

    proxy.freezeAll();
    const second = await direct.put('/f/2', 'two');
    expect((await take(iterator, 1)).map(summary)).toEqual([`${second.revision} put /f/2=two`]);
    const lost = statuses.find((s) => s.type === 'disconnected');
    expect(lost?.type === 'disconnected' ? lost.error.message : '').toContain('no answer from the server for 300 ms');
  });

  it('follows a server restart on the same data, delivering what was written while it was down', async () => {
    const first = await startTestServer();
    const backend = first.backend;
    const proxy = await TcpProxy.start(first.port);
    cleanups.push(async () => {
      await proxy.close();
      await backend.close();
    });
    const client = new MusterClient({ endpoints: proxy.url });
    const direct = new MusterClient({ endpoints: first.url });

    const statuses: WatchStatus['type'][] = [];
    const start = await direct.put('/d/1', 'one');
    const iterator = client
      .watch('/d/', { fromRevision: start.revision, onStatus: (s) => statuses.push(s.type) })
      [Symbol.asyncIterator]();
    cleanups.push(async () => void (await iterator.return?.()));
    expect((await take(iterator, 1)).map(summary)).toEqual([`${start.revision} put /d/1=one`]);

    await first.stopHttp();
    proxy.cutAll();
    // Written while no server is listening: the watch must still see them.
    await backend.put('/d/2', Buffer.from('two'));
    await backend.delete({ key: '/d/1' });
    const second = await startTestServer({ backend });
    cleanups.push(() => second.stopHttp());
    proxy.targetPort = second.port;

    const afterRestart = await take(iterator, 2);
    const live = await new MusterClient({ endpoints: second.url }).put('/d/3', 'three');
    const liveEvents = await take(iterator, 1);
    expect([...afterRestart, ...liveEvents].map(summary)).toEqual([
      `${start.revision + 1} put /d/2=two`,
      `${start.revision + 2} delete /d/1`,
      `${live.revision} put /d/3=three`,
    ]);
    expect(statuses).toContain('disconnected');
    expect(statuses.filter((s) => s === 'connected').length).toBeGreaterThanOrEqual(2);
  });
});
