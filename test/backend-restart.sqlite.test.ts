/**
 * What the SQLite backend keeps across a close and a reopen of the same data
 * folder: keys, history, leases (with a fresh full TTL, as etcd does) and the
 * compaction point.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterEach, beforeEach, describe, expect, it } from 'vitest';

import { SqliteBackend } from '../src/backends/sqlite/sqlite-backend.js';
import type { WatchEvent } from '../src/core/backend.js';
import { ManualClock } from '../src/core/clock.js';
import { BackendClosedError, BackendUnavailableError, CompactedError, LeaseNotFoundError } from '../src/core/errors.js';
import { WatchRecorder, bytes, eventually, hex, rejection, text } from './conformance/harness.js';

/** Every byte value 0..255 once, in order. */
const ALL_BYTES = Uint8Array.from({ length: 256 }, (_, i) => i);

describe('SQLite backend across a restart', () => {
  let dir: string;
  let clock: ManualClock;
  /** The backend currently open on `dir`. */
  let backend: SqliteBackend;
  const recorders: WatchRecorder[] = [];

  function open(): SqliteBackend {
    backend = SqliteBackend.open({ dataDir: dir, clock });
    return backend;
  }

  async function restart(): Promise<SqliteBackend> {
    for (const recorder of recorders.splice(0)) recorder.close();
    await backend.close();
    return open();
  }

  async function advance(ms: number): Promise<void> {
    clock.advance(ms);
    await new Promise<void>((resolve) => setImmediate(resolve));
    await new Promise<void>((resolve) => setImmediate(resolve));
  }

  function watch(key: string, fromRevision: number): WatchRecorder {
    const recorder = new WatchRecorder(backend.watch(key, { prefix: true, fromRevision }));
    recorders.push(recorder);
    return recorder;
  }

  function shape(events: readonly WatchEvent[]): unknown[] {
    return events.map((e) => ({ ...e, kv: { ...e.kv, value: hex(e.kv.value) } }));
  }

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'muster-restart-'));
    clock = new ManualClock();
    open();
  });

  afterEach(async () => {
    for (const recorder of recorders.splice(0)) recorder.close();
    await backend.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('keeps keys, values, versions and revisions', async () => {
    await backend.put('/app/a', bytes('a1'));
    await backend.put('/app/a', bytes('a2'));
    await backend.put('/app/bin', ALL_BYTES);
    await backend.put('/app/empty', new Uint8Array());
    await backend.put('/app/gone', bytes('x'));
    await backend.delete({ key: '/app/gone' });
    const before = await backend.range({ key: '/', prefix: true });
    const revision = await backend.revision();

    await restart();

    expect(await backend.revision()).toBe(revision);
    const after = await backend.range({ key: '/', prefix: true });
    expect(after.revision).toBe(before.revision);
    expect(after.kvs.map((kv) => ({ ...kv, value: hex(kv.value) }))).toEqual(
      before.kvs.map((kv) => ({ ...kv, value: hex(kv.value) })),
    );
    expect(hex((await backend.get('/app/bin'))?.value ?? new Uint8Array())).toBe(hex(ALL_BYTES));
    expect(await backend.get('/app/a')).toMatchObject({ version: 2 });
    expect(await backend.get('/app/gone')).toBeNull();
  });

  it('continues the revision after a restart, never reusing one', async () => {
    const last = (await backend.put('/k', bytes('1'))).revision;
    await restart();
    const next = await backend.put('/k', bytes('2'));
    expect(next.revision).toBe(last + 1);
    expect(await backend.get('/k')).toMatchObject({ version: 2, modRevision: last + 1 });
  });

  it('keeps the whole history: a watch from revision 1 replays the same events as before', async () => {
    await backend.put('/h/a', bytes('1'));
    await backend.put('/h/b', ALL_BYTES);
    await backend.txn({
      compare: [],
      success: [
        { type: 'put', key: '/h/c', value: bytes('3') },
        { type: 'delete', key: '/h/a' },
      ],
      failure: [],
    });
    await backend.put('/h/b', bytes('4'));
    const count = 5;
    const beforeEvents = await watch('/h/', 1).waitForEvents(count);

    await restart();

    const replay = watch('/h/', 1);
    const afterEvents = await replay.waitForEvents(count);
    expect(shape(afterEvents)).toEqual(shape(beforeEvents));
    // And the replay turns into a live watch on the reopened store.
    const live = await backend.put('/h/d', bytes('5'));
    const [, , , , , sixth] = await replay.waitForEvents(count + 1);
    expect(sixth?.revision).toBe(live.revision);
  });

  it('keeps a lease and its keys, giving the lease a fresh full TTL on start', async () => {
    const lease = await backend.grantLease(10);
    await backend.put('/nodes/a', bytes('up'), { lease: lease.id });
    await backend.put('/nodes/b', bytes('up'), { lease: lease.id });
    // 8 of its 10 seconds pass before the restart...
    await advance(8_000);

    await restart();

    // ...and the lease starts again with all 10.
    const info = await backend.leaseInfo(lease.id);
    expect(info.grantedTtl).toBe(10);
    expect(info.ttl).toBe(10);
    expect([...info.keys].sort()).toEqual(['/nodes/a', '/nodes/b']);
    expect(await backend.listLeases()).toContain(lease.id);
    expect((await backend.get('/nodes/a'))?.lease).toBe(lease.id);

    await advance(9_000);
    expect(await backend.get('/nodes/a')).not.toBeNull();

    const recorder = watch('/nodes/', (await backend.revision()) + 1);
    await advance(1_500);
    const events = await recorder.waitForEvents(2);
    expect(events.map((e) => [e.type, e.kv.key])).toEqual([
      ['delete', '/nodes/a'],
      ['delete', '/nodes/b'],
    ]);
    expect(events[0]?.revision).toBe(events[1]?.revision);
    await eventually(async () => expect(await backend.listLeases()).not.toContain(lease.id));
    await rejection(() => backend.leaseInfo(lease.id), LeaseNotFoundError);
  });

  it('does not bring back a lease that was revoked, or one that expired, before the restart', async () => {
    const revoked = await backend.grantLease(30);
    await backend.put('/r', bytes('r'), { lease: revoked.id });
    await backend.revokeLease(revoked.id);
    const expired = await backend.grantLease(1);
    await backend.put('/e', bytes('e'), { lease: expired.id });
    await advance(1_500);
    await eventually(async () => expect(await backend.get('/e')).toBeNull());

    await restart();

    expect(await backend.listLeases()).toEqual([]);
    await rejection(() => backend.keepAlive(revoked.id), LeaseNotFoundError);
    await rejection(() => backend.keepAlive(expired.id), LeaseNotFoundError);
    expect(await backend.get('/r')).toBeNull();
    expect(await backend.get('/e')).toBeNull();
  });

  it('grants new leases with ids distinct from the leases that survived', async () => {
    const kept = await backend.grantLease(30);
    await restart();
    const fresh = await backend.grantLease(30);
    expect(fresh.id).not.toBe(kept.id);
    expect([...(await backend.listLeases())].sort()).toEqual([kept.id, fresh.id].sort());
  });

  it('keeps the compaction point', async () => {
    const old = (await backend.put('/c', bytes('1'))).revision;
    const kept = (await backend.put('/c', bytes('2'))).revision;
    await backend.put('/c', bytes('3'));
    await backend.compact(kept);

    await restart();

    expect(await backend.oldestRevision()).toBe(kept);
    const err = await rejection(() => backend.range({ key: '/c', revision: old }), CompactedError);
    expect(err.oldestRevision).toBe(kept);
    expect(text((await backend.get('/c', { revision: kept }))?.value ?? new Uint8Array())).toBe('2');
    const recorder = watch('/c', old);
    await recorder.waitForEnd();
    expect(recorder.error).toBeInstanceOf(CompactedError);
  });

  it('survives several restarts in a row with writes in between', async () => {
    const written = new Map<string, number>();
    for (let cycle = 0; cycle < 4; cycle++) {
      for (let i = 0; i < 5; i++) {
        const key = `/cycle/${cycle}/${i}`;
        written.set(key, (await backend.put(key, bytes(`${cycle}.${i}`))).revision);
      }
      await restart();
    }
    const all = await backend.range({ key: '/cycle/', prefix: true });
    expect(all.count).toBe(20);
    for (const kv of all.kvs) expect(kv.modRevision).toBe(written.get(kv.key));
    expect(await backend.revision()).toBe(Math.max(...written.values()));
  });

  it('refuses a second backend on a data folder in use, and opens once the first has closed', async () => {
    await backend.put('/a', bytes('1'));
    expect(() => SqliteBackend.open({ dataDir: dir, clock })).toThrow(BackendUnavailableError);
    expect(() => SqliteBackend.open({ dataDir: dir, clock })).toThrow(/in use by another muster server/);
    expect(text((await backend.get('/a'))?.value ?? new Uint8Array())).toBe('1');
    await restart();
    expect(text((await backend.get('/a'))?.value ?? new Uint8Array())).toBe('1');
  });

  it('fails calls made after close with BackendClosedError', async () => {
    await backend.put('/k', bytes('v'));
    await backend.close();
    await rejection(() => backend.get('/k'), BackendClosedError);
    await rejection(() => backend.put('/k', bytes('w')), BackendClosedError);
    await rejection(() => backend.grantLease(5), BackendClosedError);
    // Reopen so afterEach has something to close, and check the failed put left no trace.
    open();
    expect(text((await backend.get('/k'))?.value ?? new Uint8Array())).toBe('v');
  });
});
