/**
 * Compaction and hooks: history an active hook has not delivered is kept (up to
 * hookHistoryBound); a hook whose history is gone jumps forward and shows `missed`.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { createBackend } from '../../src/backends/create-backend.js';
import { hookHistoryHold } from '../../src/hooks/hook-deliverer.js';
import { HookStore } from '../../src/hooks/hook-store.js';
import { systemClock } from '../../src/core/clock.js';
import { MusterClient } from '../../src/client/muster-client.js';
import { MusterServer } from '../../src/server/muster-server.js';
import { eventually } from '../conformance/harness.js';
import { Receiver } from './receiver.js';

describe('hooks and compaction (sqlite)', () => {
  const cleanup: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const step of cleanup.reverse()) await step();
    cleanup.length = 0;
  });

  it('hookHistoryHold: the oldest active cursor, never further back than the bound; paused hooks hold nothing', async () => {
    const backend = await createBackend({ kind: 'sqlite', dataDir: ':memory:' });
    cleanup.push(() => backend.close());
    const store = new HookStore(backend, systemClock);
    expect(await hookHistoryHold(backend, 100, 1000)).toBeNull();
    await store.add({ name: 'a', prefix: '/a/', url: 'http://127.0.0.1:1/' }, 't');
    const cursor = (await store.get('a')).cursor.revision;
    expect(await hookHistoryHold(backend, 100, 1000)).toBe(cursor);
    expect(await hookHistoryHold(backend, 10_000, 1000)).toBe(10_000 - 1000 + 1);
    await store.pause('a');
    expect(await hookHistoryHold(backend, 100, 1000)).toBeNull();
  });

  it('a paused hook whose history was compacted resumes past it and records missed', async () => {
    const receiver = await new Receiver().start();
    cleanup.push(() => receiver.stop());
    const server = await MusterServer.start({
      store: { kind: 'sqlite', dataDir: ':memory:' },
      port: 0,
      logger: false,
      auth: 'off',
      retention: 10,
      compactionIntervalMs: 100,
    });
    cleanup.push(() => server.stop());
    const client = new MusterClient({ endpoints: server.url });
    const added = await client.addHook({ name: 'late', prefix: '/m/', url: receiver.url });
    await client.pauseHook('late');
    // A pause takes effect within the duty's sync interval (250 ms).
    await new Promise((resolve) => setTimeout(resolve, 600));
    const firstWrite = (await client.put('/m/first', 'x')).revision;
    for (let i = 0; i < 50; i++) await client.put(`/m/${i}`, String(i));
    await eventually(async () => expect(await server.backend.oldestRevision()).toBeGreaterThan(30), 10_000);
    await client.resumeHook('late');
    await eventually(async () => expect((await client.getHook('late')).missed).not.toBeNull(), 10_000);
    const shown = await client.getHook('late');
    // From the cursor (which may have moved on while nothing under /m/ changed) up to the first write at least.
    expect(shown.missed!.from).toBeGreaterThanOrEqual(added.cursor.revision);
    expect(shown.missed!.from).toBeLessThanOrEqual(firstWrite);
    expect(shown.missed!.to).toBeGreaterThan(30);
    // What was still kept is delivered.
    await eventually(() => expect(receiver.received.length).toBeGreaterThan(0), 10_000);
    const first = receiver.bodies<{ revision: number }>()[0]!.revision;
    expect(first).toBe(shown.missed!.to + 1);
  });

  it('an active hook holds the history it has not delivered', async () => {
    const receiver = await new Receiver().start();
    receiver.script = Array.from({ length: 1000 }, () => 'hang' as const);
    cleanup.push(() => receiver.stop());
    const server = await MusterServer.start({
      store: { kind: 'sqlite', dataDir: ':memory:' },
      port: 0,
      logger: false,
      auth: 'off',
      retention: 10,
      compactionIntervalMs: 100,
      hookTimeoutMs: 60_000,
    });
    cleanup.push(() => server.stop());
    const client = new MusterClient({ endpoints: server.url });
    const added = await client.addHook({ name: 'held', prefix: '/h/', url: receiver.url });
    for (let i = 0; i < 50; i++) await client.put(`/h/${i}`, String(i));
    await new Promise((resolve) => setTimeout(resolve, 1000));
    expect(await server.backend.oldestRevision()).toBeLessThanOrEqual(added.cursor.revision);
  });
});
