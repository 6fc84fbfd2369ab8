/**
 * The pipelined group commit of the SQLite backend: a caller is answered only after
 * a sync that started after its batch committed; batches committed while a sync
 * runs wait for the next one; a failed sync fails every waiting caller and every
 * later write.
 */
import { setImmediate as nextTurn } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import type { WatchBatch } from '../src/core/backend.js';
import { GroupCommit } from '../src/backends/sqlite/group-commit.js';
import { WatchHub } from '../src/backends/sqlite/sqlite-watch.js';

/** A GroupCommit whose syncs the test finishes by hand. */
function harness(withSync = true) {
  let revision = 0;
  const syncs: { upTo: number; finish: (error?: Error) => void }[] = [];
  const durable: number[] = [];
  const commits: number[] = [];
  const writer = new GroupCommit({
    transaction: (body) => body(),
    item: (apply) => apply(),
    afterCommit: () => commits.push(revision),
    afterRollback: () => undefined,
    mark: () => revision,
    afterDurable: (upTo) => durable.push(upTo),
    ...(withSync
      ? {
          sync: () =>
            new Promise<void>((resolve, reject) => {
              syncs.push({ upTo: revision, finish: (error) => (error ? reject(error) : resolve()) });
            }),
        }
      : {}),
    syncFailed: (error) => new Error(`sync failed: ${String(error)}`),
  });
  const write = (): Promise<number> => writer.submit(() => ++revision);
  return { writer, write, syncs, durable, commits };
}

/** Settle what is settled, and tell which of `promises` have resolved. */
async function settledFlags(promises: Promise<unknown>[]): Promise<boolean[]> {
  const flags = promises.map(() => false);
  promises.forEach(
    (p, i) =>
      void p.then(
        () => (flags[i] = true),
        () => (flags[i] = true),
      ),
  );
  await nextTurn();
  await nextTurn();
  return flags;
}

describe('group commit with a sync hook', () => {
  it('answers a batch only after the sync that covers it', async () => {
    const { write, syncs, durable, commits } = harness();
    const first = [write(), write(), write()];
    await nextTurn();
    expect(commits).toEqual([3]); // one batch, one commit
    expect(syncs.map((s) => s.upTo)).toEqual([3]);
    expect(await settledFlags(first)).toEqual([false, false, false]);

    // A batch committed while the first sync runs waits for a second sync.
    const second = [write(), write()];
    await nextTurn();
    expect(commits).toEqual([3, 5]);
    expect(syncs).toHaveLength(1);

    syncs[0]?.finish();
    expect(await Promise.all(first)).toEqual([1, 2, 3]);
    expect(durable).toEqual([3]);
    expect(await settledFlags(second)).toEqual([false, false]);
    expect(syncs.map((s) => s.upTo)).toEqual([3, 5]);

    syncs[1]?.finish();
    expect(await Promise.all(second)).toEqual([4, 5]);
    expect(durable).toEqual([3, 5]);
  });

  it('lets a read wait until what it saw is durable', async () => {
    const { writer, write, syncs } = harness();
    expect(writer.pending).toBe(false);
    await expect(writer.durable()).resolves.toBeUndefined();

    const written = write();
    await nextTurn();
    expect(writer.pending).toBe(true);
    const read = writer.durable();
    expect(await settledFlags([read, written])).toEqual([false, false]);
    syncs[0]?.finish();
    await read;
    await written;
    expect(writer.pending).toBe(false);
  });

  it('fails every waiting caller and every later write when a sync fails', async () => {
    const { writer, write, syncs } = harness();
    const first = write();
    await nextTurn();
    const second = write();
    await nextTurn();
    syncs[0]?.finish(new Error('EIO'));
    await expect(first).rejects.toThrow(/sync failed: Error: EIO/);
    await expect(second).rejects.toThrow(/sync failed/);
    await expect(write()).rejects.toThrow(/sync failed/);
    await expect(writer.durable()).rejects.toThrow(/sync failed/);
    expect(syncs).toHaveLength(1);
  });
});

describe('group commit without a sync hook (in memory)', () => {
  it('answers a batch as soon as it commits', async () => {
    const { write, durable } = harness(false);
    expect(await Promise.all([write(), write()])).toEqual([1, 2]);
    expect(durable).toEqual([2]);
  });
});

describe('watch hub fed one sync at a time', () => {
  it('delivers to a watch whose start falls inside a published range, from its start on', async () => {
    let durable = 1;
    const hub = new WatchHub({
      currentRevision: () => durable,
      oldestRevision: () => 1,
      readHistory: (_filter, _from, to) => ({ events: [], next: to + 1 }),
    });
    const watch = hub.open('/x', { fromRevision: 4 });
    const event = (revision: number) => ({
      type: 'put' as const,
      revision,
      kv: {
        key: '/x',
        value: new Uint8Array(0),
        createRevision: 1,
        modRevision: revision,
        version: revision,
        lease: null,
      },
      prevKv: null,
    });
    // One sync made revisions 2..5 durable at once.
    durable = 5;
    hub.publish([event(2), event(3), event(4), event(5)], 2, 5);
    const iterator = watch[Symbol.asyncIterator]();
    const first: IteratorResult<WatchBatch> = await iterator.next();
    expect(first.done).toBe(false);
    expect(first.done ? [] : first.value.events.map((e) => e.revision)).toEqual([4, 5]);
    watch.close();
  });
});
