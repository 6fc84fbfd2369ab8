/**
 * The behavioural contract of a Backend (src/core/backend.ts), as one suite that
 * every backend's test file runs: `describeBackend('sqlite', makeHarness, options)`.
 *
 * Written to run unchanged against a store that other tests may share (etcd):
 * every test works under its own random key prefix, asserts revisions relative to
 * the revision it read first, and lets time pass only through `harness.advance`,
 * asserting expiry effects with `eventually`. Lease TTLs are `minLeaseTtl` (or a
 * small multiple), so the whole suite waits well under a minute on a real clock.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';

import type {
  Backend,
  Compare,
  CompareOp,
  KeyValue,
  LeaseGrant,
  LeaseId,
  TxnOpResult,
  WatchEvent,
  WatchOptions,
} from '../../src/core/backend.js';
import {
  CompactedError,
  FutureRevisionError,
  InvalidArgumentError,
  LeaseNotFoundError,
} from '../../src/core/errors.js';
import type { BackendHarness, HarnessOptions, MakeHarness } from './harness.js';
import { describeConcurrentWrites } from './concurrent-suite.js';
import { WatchRecorder, bytes, eventually, hex, rejection, text, uniquePrefix } from './harness.js';

/** Every byte value 0..255 once, in order. */
const ALL_BYTES = Uint8Array.from({ length: 256 }, (_, i) => i);

/** A lease id that no backend hands out in a test run (etcd ids are node-prefixed and far larger). */
const NEVER_GRANTED_LEASE: LeaseId = '1badc0ffee';

/** Holds a backend to its contract; see the file comment for the rules a backend test file follows. */
export function describeBackend(name: string, make: MakeHarness, options: HarnessOptions): void {
  const ttl = options.minLeaseTtl;

  describe(`Backend conformance: ${name}`, () => {
    let harness: BackendHarness;
    let b: Backend;
    /** This test's own folder of keys. */
    let p: string;
    const recorders: WatchRecorder[] = [];
    const leases: LeaseId[] = [];

    beforeEach(async () => {
      harness = await make();
      b = harness.backend;
      p = uniquePrefix();
    });

    afterEach(async () => {
      for (const recorder of recorders.splice(0)) recorder.close();
      // A lease left behind would expire during a later test on a shared store and
      // bump the revision under that test's feet.
      for (const id of leases.splice(0)) {
        await b.revokeLease(id).catch((err: unknown) => {
          if (!(err instanceof LeaseNotFoundError)) throw err;
        });
      }
      await harness.close();
    });

    function watch(key: string, watchOptions?: WatchOptions): WatchRecorder {
      const recorder = new WatchRecorder(b.watch(key, watchOptions));
      recorders.push(recorder);
      return recorder;
    }

    /** Watch from the next revision on: no race with the writes that follow. */
    async function watchFromNext(
      key: string,
      watchOptions?: Omit<WatchOptions, 'fromRevision'>,
    ): Promise<WatchRecorder> {
      return watch(key, { ...watchOptions, fromRevision: (await b.revision()) + 1 });
    }

    async function grant(seconds: number): Promise<LeaseGrant> {
      const lease = await b.grantLease(seconds);
      leases.push(lease.id);
      return lease;
    }

    async function put(key: string, value: string, lease?: LeaseId): Promise<number> {
      return (await b.put(key, bytes(value), lease === undefined ? undefined : { lease })).revision;
    }

    async function getText(key: string): Promise<string | null> {
      const kv = await b.get(key);
      return kv === null ? null : text(kv.value);
    }

    /** Run a txn with no ops: did the compares hold? */
    async function holds(...compare: Compare[]): Promise<boolean> {
      return (await b.txn({ compare, success: [], failure: [] })).succeeded;
    }

    function keysOf(kvs: readonly KeyValue[]): string[] {
      return kvs.map((kv) => kv.key);
    }

    /** Write a marker key and wait for its event: everything the watch would show before it has arrived. */
    async function flushWatch(recorder: WatchRecorder, markerKey: string): Promise<void> {
      const revision = await put(markerKey, 'marker');
      await recorder.waitForEvent((e) => e.kv.key === markerKey && e.revision === revision);
    }

    function result<T extends TxnOpResult['type']>(
      results: readonly TxnOpResult[],
      index: number,
      type: T,
    ): Extract<TxnOpResult, { type: T }> {
      const found = results[index];
      expect(found?.type).toBe(type);
      return found as Extract<TxnOpResult, { type: T }>;
    }

    describe('put and get', () => {
      it('round-trips a text value with its metadata', async () => {
        const before = await b.revision();
        const res = await b.put(`${p}greeting`, bytes('héllo, wörld'));
        expect(res.revision).toBe(before + 1);
        const kv = await b.get(`${p}greeting`);
        expect(kv).not.toBeNull();
        expect(kv?.key).toBe(`${p}greeting`);
        expect(text(kv?.value ?? new Uint8Array())).toBe('héllo, wörld');
        expect(kv?.createRevision).toBe(res.revision);
        expect(kv?.modRevision).toBe(res.revision);
        expect(kv?.version).toBe(1);
        expect(kv?.lease).toBeNull();
      });

      it('round-trips a binary value holding all 256 byte values through get, range and watch', async () => {
        const recorder = await watchFromNext(`${p}bin`);
        await b.put(`${p}bin`, ALL_BYTES);
        const kv = await b.get(`${p}bin`);
        expect(kv?.value).toBeInstanceOf(Uint8Array);
        expect(hex(kv?.value ?? new Uint8Array())).toBe(hex(ALL_BYTES));
        const range = await b.range({ key: p, prefix: true });
        expect(hex(range.kvs[0]?.value ?? new Uint8Array())).toBe(hex(ALL_BYTES));
        const [event] = await recorder.waitForEvents(1);
        expect(hex(event?.kv.value ?? new Uint8Array())).toBe(hex(ALL_BYTES));
      });

      it('stores an empty value as an existing key, distinct from a missing one', async () => {
        const res = await b.put(`${p}empty`, new Uint8Array());
        const kv = await b.get(`${p}empty`);
        expect(kv).not.toBeNull();
        expect(kv?.value.byteLength).toBe(0);
        expect(kv?.version).toBe(1);
        expect(kv?.modRevision).toBe(res.revision);
        expect((await b.range({ key: p, prefix: true })).count).toBe(1);
      });

      it('round-trips a 1 MiB value exactly', async () => {
        const big = Uint8Array.from({ length: 1024 * 1024 }, (_, i) => (i * 31 + 7) % 256);
        await b.put(`${p}big`, big);
        const kv = await b.get(`${p}big`);
        expect(kv?.value.byteLength).toBe(big.byteLength);
        expect(Buffer.from(kv?.value ?? new Uint8Array()).equals(Buffer.from(big))).toBe(true);
      });

      it('returns exactly the latest bytes after overwriting a long value with a short one', async () => {
        await put(`${p}k`, 'a long value that is longer than the next one');
        await put(`${p}k`, 'short');
        expect(await getText(`${p}k`)).toBe('short');
      });

      it('returns null for a key that does not exist', async () => {
        expect(await b.get(`${p}missing`)).toBeNull();
      });

      it('counts versions 1, 2, 3 with a stable createRevision and modRevision = the revision of each write', async () => {
        const r1 = await put(`${p}v`, 'one');
        expect(await b.get(`${p}v`)).toMatchObject({ version: 1, createRevision: r1, modRevision: r1 });
        const r2 = await put(`${p}v`, 'two');
        expect(await b.get(`${p}v`)).toMatchObject({ version: 2, createRevision: r1, modRevision: r2 });
        const r3 = await put(`${p}v`, 'three');
        expect(await b.get(`${p}v`)).toMatchObject({ version: 3, createRevision: r1, modRevision: r3 });
        expect(r2).toBe(r1 + 1);
        expect(r3).toBe(r2 + 1);
      });

      it('starts the version again at 1, with a new createRevision, after a delete', async () => {
        const r1 = await put(`${p}v`, 'one');
        await put(`${p}v`, 'two');
        await b.delete({ key: `${p}v` });
        const r4 = await put(`${p}v`, 'again');
        const kv = await b.get(`${p}v`);
        expect(kv).toMatchObject({ version: 1, createRevision: r4, modRevision: r4 });
        expect(r4).toBeGreaterThan(r1);
      });

      it('advances the global revision by exactly one per put, and revision() agrees', async () => {
        const before = await b.revision();
        const revisions: number[] = [];
        for (const name of ['a', 'b', 'a', 'c']) revisions.push(await put(`${p}${name}`, name));
        expect(revisions).toEqual([before + 1, before + 2, before + 3, before + 4]);
        expect(await b.revision()).toBe(before + 4);
      });

      it('does not advance the revision for reads', async () => {
        await put(`${p}a`, 'a');
        const before = await b.revision();
        await b.get(`${p}a`);
        await b.get(`${p}missing`);
        const range = await b.range({ key: p, prefix: true });
        expect(range.revision).toBe(before);
        expect(await b.revision()).toBe(before);
      });

      it('returns the previous key from put: null on create, the old key on update', async () => {
        const first = await b.put(`${p}k`, bytes('old'));
        expect(first.prevKv).toBeNull();
        const second = await b.put(`${p}k`, bytes('new'));
        expect(second.prevKv).not.toBeNull();
        expect(text(second.prevKv?.value ?? new Uint8Array())).toBe('old');
        expect(second.prevKv).toMatchObject({
          key: `${p}k`,
          version: 1,
          createRevision: first.revision,
          modRevision: first.revision,
        });
      });
    });

    describe('delete', () => {
      it('deletes one key, bumps the revision by one and returns the deleted key', async () => {
        const created = await put(`${p}k`, 'v');
        const before = await b.revision();
        const res = await b.delete({ key: `${p}k` });
        expect(res.deleted).toBe(1);
        expect(res.revision).toBe(before + 1);
        expect(res.prevKvs).toHaveLength(1);
        expect(res.prevKvs[0]).toMatchObject({ key: `${p}k`, modRevision: created, version: 1 });
        expect(text(res.prevKvs[0]?.value ?? new Uint8Array())).toBe('v');
        expect(await b.get(`${p}k`)).toBeNull();
        expect(await b.revision()).toBe(before + 1);
      });

      it('does not bump the revision, and reports 0 deleted, for a missing key', async () => {
        await put(`${p}other`, 'x');
        const before = await b.revision();
        const res = await b.delete({ key: `${p}missing` });
        expect(res).toMatchObject({ deleted: 0, revision: before });
        expect(res.prevKvs).toEqual([]);
        expect(await b.revision()).toBe(before);
      });

      it('emits no watch event for the delete of a missing key', async () => {
        const recorder = await watchFromNext(p, { prefix: true });
        await b.delete({ key: `${p}missing` });
        await b.delete({ key: `${p}nothing/`, prefix: true });
        await flushWatch(recorder, `${p}marker`);
        expect(recorder.events.map((e) => e.kv.key)).toEqual([`${p}marker`]);
      });

      it('deletes every key under a prefix at one revision and returns them all', async () => {
        await put(`${p}dir/a`, '1');
        await put(`${p}dir/b`, '2');
        await put(`${p}dir/c/d`, '3');
        await put(`${p}keep`, '4');
        const before = await b.revision();
        const res = await b.delete({ key: `${p}dir/`, prefix: true });
        expect(res.deleted).toBe(3);
        expect(res.revision).toBe(before + 1);
        expect(keysOf(res.prevKvs).sort()).toEqual([`${p}dir/a`, `${p}dir/b`, `${p}dir/c/d`]);
        expect(res.prevKvs.map((kv) => text(kv.value)).sort()).toEqual(['1', '2', '3']);
        expect(keysOf((await b.range({ key: p, prefix: true })).kvs)).toEqual([`${p}keep`]);
        expect(await b.revision()).toBe(before + 1);
      });

      it('reports 0 deleted and keeps the revision for a prefix that matches nothing', async () => {
        await put(`${p}a`, 'a');
        const before = await b.revision();
        const res = await b.delete({ key: `${p}none/`, prefix: true });
        expect(res).toMatchObject({ deleted: 0, revision: before });
        expect(await b.revision()).toBe(before);
      });

      it('deletes only the exact key when prefix is not set', async () => {
        await put(`${p}a`, 'a');
        await put(`${p}a/x`, 'ax');
        await put(`${p}ab`, 'ab');
        const res = await b.delete({ key: `${p}a` });
        expect(res.deleted).toBe(1);
        expect(keysOf((await b.range({ key: p, prefix: true })).kvs)).toEqual([`${p}a/x`, `${p}ab`]);
      });
    });

    describe('range', () => {
      it('returns the keys under a prefix sorted by key (UTF-8 byte order)', async () => {
        const names = ['m', 'B', 'a', 'é', 'z', 'a/b', 'A', '0'];
        for (const name of names) await put(`${p}${name}`, name);
        const res = await b.range({ key: p, prefix: true });
        const expected = names
          .map((n) => `${p}${n}`)
          .sort((x, y) => Buffer.compare(Buffer.from(x, 'utf8'), Buffer.from(y, 'utf8')));
        expect(keysOf(res.kvs)).toEqual(expected);
        expect(res.count).toBe(names.length);
        expect(res.more).toBe(false);
      });

      it('cuts the result at limit, with more = true and count = every match', async () => {
        for (const name of ['e', 'c', 'a', 'd', 'b']) await put(`${p}${name}`, name);
        const res = await b.range({ key: p, prefix: true, limit: 2 });
        expect(keysOf(res.kvs)).toEqual([`${p}a`, `${p}b`]);
        expect(res.more).toBe(true);
        expect(res.count).toBe(5);
      });

      it('reports more = false when the limit is not reached, and treats limit 0 as no limit', async () => {
        for (const name of ['a', 'b', 'c']) await put(`${p}${name}`, name);
        const exact = await b.range({ key: p, prefix: true, limit: 3 });
        expect(exact).toMatchObject({ more: false, count: 3 });
        expect(exact.kvs).toHaveLength(3);
        const unlimited = await b.range({ key: p, prefix: true, limit: 0 });
        expect(unlimited).toMatchObject({ more: false, count: 3 });
        expect(unlimited.kvs).toHaveLength(3);
      });

      it('returns metadata with empty values when keysOnly is set', async () => {
        const r1 = await put(`${p}a`, 'value a');
        await put(`${p}b`, 'value b');
        const res = await b.range({ key: p, prefix: true, keysOnly: true });
        expect(keysOf(res.kvs)).toEqual([`${p}a`, `${p}b`]);
        expect(res.kvs.every((kv) => kv.value.byteLength === 0)).toBe(true);
        expect(res.kvs[0]).toMatchObject({ createRevision: r1, modRevision: r1, version: 1 });
      });

      it('keysOnly with a limit: a page of keys, no values, every match counted', async () => {
        for (const name of ['c', 'a', 'b']) await put(`${p}${name}`, `value ${name}`);
        const res = await b.range({ key: p, prefix: true, keysOnly: true, limit: 2 });
        expect(keysOf(res.kvs)).toEqual([`${p}a`, `${p}b`]);
        expect(res.kvs.every((kv) => kv.value.byteLength === 0 && kv.lease === null)).toBe(true);
        expect(res).toMatchObject({ more: true, count: 3 });
      });

      it('reads one exact key when prefix is not set', async () => {
        await put(`${p}a`, 'a');
        await put(`${p}a/b`, 'ab');
        await put(`${p}aa`, 'aa');
        const res = await b.range({ key: `${p}a` });
        expect(keysOf(res.kvs)).toEqual([`${p}a`]);
        expect(res.count).toBe(1);
      });

      it('returns nothing, count 0, for a prefix with no keys', async () => {
        const res = await b.range({ key: `${p}empty/`, prefix: true });
        expect(res).toMatchObject({ kvs: [], count: 0, more: false });
      });

      it('reports the current revision of the store', async () => {
        const last = await put(`${p}a`, 'a');
        expect((await b.range({ key: `${p}missing` })).revision).toBe(last);
      });

      it('reads a past revision: old values, keys since deleted, not keys created later', async () => {
        const r1 = await put(`${p}x`, 'x1');
        const r2 = await put(`${p}gone`, 'soon deleted');
        await put(`${p}x`, 'x2');
        await b.delete({ key: `${p}gone` });
        await put(`${p}later`, 'later');

        const atR2 = await b.range({ key: p, prefix: true, revision: r2 });
        expect(keysOf(atR2.kvs)).toEqual([`${p}gone`, `${p}x`]);
        expect(atR2.kvs.map((kv) => text(kv.value))).toEqual(['soon deleted', 'x1']);
        expect(atR2.kvs[1]).toMatchObject({ version: 1, modRevision: r1, createRevision: r1 });

        const now = await b.range({ key: p, prefix: true });
        expect(keysOf(now.kvs)).toEqual([`${p}later`, `${p}x`]);
      });

      it('gets a single key as of a past revision', async () => {
        const r1 = await put(`${p}k`, 'first');
        await put(`${p}k`, 'second');
        const kv = await b.get(`${p}k`, { revision: r1 });
        expect(text(kv?.value ?? new Uint8Array())).toBe('first');
        expect(kv?.version).toBe(1);
        expect(await b.get(`${p}k2`, { revision: r1 })).toBeNull();
      });

      it('applies limit and count at a past revision', async () => {
        await put(`${p}a`, 'a');
        await put(`${p}b`, 'b');
        const r = await put(`${p}c`, 'c');
        await put(`${p}d`, 'd');
        const res = await b.range({ key: p, prefix: true, revision: r, limit: 2 });
        expect(keysOf(res.kvs)).toEqual([`${p}a`, `${p}b`]);
        expect(res).toMatchObject({ more: true, count: 3 });
      });

      it('fails with FutureRevisionError for a revision not reached yet', async () => {
        await put(`${p}a`, 'a');
        const current = await b.revision();
        const err = await rejection(
          () => b.range({ key: p, prefix: true, revision: current + 1000 }),
          FutureRevisionError,
        );
        expect(err.requestedRevision).toBe(current + 1000);
        expect(err.currentRevision).toBeGreaterThanOrEqual(current);
        expect(err.currentRevision).toBeLessThan(current + 1000);
      });
      it('fails a get at a revision not reached yet with FutureRevisionError', async () => {
        const current = await b.revision();
        const err = await rejection(() => b.get(`${p}a`, { revision: current + 500 }), FutureRevisionError);
        expect(err.code).toBe('future_revision');
        expect(err.requestedRevision).toBe(current + 500);
      });
    });

    describe('prefix edge cases (/a vs /ab vs /a/)', () => {
      async function seed(): Promise<void> {
        for (const name of ['a', 'a/x', 'a/y/z', 'ab', 'b']) await put(`${p}${name}`, name);
      }

      it('a range of prefix "/a/" does not include "/a" or "/ab"', async () => {
        await seed();
        const res = await b.range({ key: `${p}a/`, prefix: true });
        expect(keysOf(res.kvs)).toEqual([`${p}a/x`, `${p}a/y/z`]);
      });

      it('a range of prefix "/a" is a literal prefix: it matches "/a", "/a/…" and "/ab"', async () => {
        await seed();
        const res = await b.range({ key: `${p}a`, prefix: true });
        expect(keysOf(res.kvs)).toEqual([`${p}a`, `${p}a/x`, `${p}a/y/z`, `${p}ab`]);
      });

      it('a delete of prefix "/a/" leaves "/a" and "/ab"', async () => {
        await seed();
        const res = await b.delete({ key: `${p}a/`, prefix: true });
        expect(res.deleted).toBe(2);
        expect(keysOf((await b.range({ key: p, prefix: true })).kvs)).toEqual([`${p}a`, `${p}ab`, `${p}b`]);
      });

      it('a watch of prefix "/a/" sees nothing of "/a" or "/ab"', async () => {
        const recorder = await watchFromNext(`${p}a/`, { prefix: true });
        await seed();
        await b.delete({ key: `${p}ab` });
        await flushWatch(recorder, `${p}a/marker`);
        expect(recorder.events.map((e) => e.kv.key)).toEqual([`${p}a/x`, `${p}a/y/z`, `${p}a/marker`]);
      });

      it('a watch of prefix "/a" sees "/a", "/a/…" and "/ab" but not "/b"', async () => {
        const recorder = await watchFromNext(`${p}a`, { prefix: true });
        await seed();
        await flushWatch(recorder, `${p}a-marker`);
        expect(recorder.events.map((e) => e.kv.key)).toEqual([
          `${p}a`,
          `${p}a/x`,
          `${p}a/y/z`,
          `${p}ab`,
          `${p}a-marker`,
        ]);
      });

      it('a watch of the single key "/a" sees only that key', async () => {
        const recorder = await watchFromNext(`${p}a`);
        await seed();
        await b.delete({ key: `${p}a` });
        const events = await recorder.waitForEvents(2);
        expect(events.map((e) => [e.type, e.kv.key])).toEqual([
          ['put', `${p}a`],
          ['delete', `${p}a`],
        ]);
        // Writes to neighbours after the delete must not show up either.
        await put(`${p}a/late`, 'x');
        await put(`${p}a`, 'back');
        const [, , third] = await recorder.waitForEvents(3);
        expect([third?.type, third?.kv.key]).toEqual(['put', `${p}a`]);
        expect(recorder.events).toHaveLength(3);
      });
    });

    describe('txn', () => {
      it('creates a key only if absent with compare version = 0', async () => {
        const createOnly = (value: string) =>
          b.txn({
            compare: [{ key: `${p}k`, target: 'version', op: '=', value: 0 }],
            success: [{ type: 'put', key: `${p}k`, value: bytes(value) }],
            failure: [],
          });
        const first = await createOnly('first');
        expect(first.succeeded).toBe(true);
        const second = await createOnly('second');
        expect(second.succeeded).toBe(false);
        expect(second.revision).toBe(first.revision);
        expect(await getText(`${p}k`)).toBe('first');
      });

      it('creates a key only if absent with compare createRevision = 0', async () => {
        const createOnly = (value: string) =>
          b.txn({
            compare: [{ key: `${p}k`, target: 'createRevision', op: '=', value: 0 }],
            success: [{ type: 'put', key: `${p}k`, value: bytes(value) }],
            failure: [{ type: 'get', key: `${p}k` }],
          });
        expect((await createOnly('first')).succeeded).toBe(true);
        const second = await createOnly('second');
        expect(second.succeeded).toBe(false);
        const current = result(second.results, 0, 'get');
        expect(text(current.kvs[0]?.value ?? new Uint8Array())).toBe('first');
        expect(await getText(`${p}k`)).toBe('first');
      });

      it('compares values bytewise with =, !=, < and >', async () => {
        await b.put(`${p}k`, bytes('m'));
        const cmp = (op: CompareOp, value: string | Uint8Array): Compare => ({
          key: `${p}k`,
          target: 'value',
          op,
          value: typeof value === 'string' ? bytes(value) : value,
        });
        expect(await holds(cmp('=', 'm'))).toBe(true);
        expect(await holds(cmp('=', 'n'))).toBe(false);
        expect(await holds(cmp('=', 'mm'))).toBe(false);
        expect(await holds(cmp('!=', 'n'))).toBe(true);
        expect(await holds(cmp('!=', 'm'))).toBe(false);
        expect(await holds(cmp('<', 'n'))).toBe(true);
        expect(await holds(cmp('<', 'mm'))).toBe(true);
        expect(await holds(cmp('<', 'm'))).toBe(false);
        expect(await holds(cmp('>', 'l'))).toBe(true);
        expect(await holds(cmp('>', 'm'))).toBe(false);
        // Bytes compare unsigned: 0x80 sorts after 0x7f.
        await b.put(`${p}k`, Uint8Array.of(0x80));
        expect(await holds(cmp('>', Uint8Array.of(0x7f)))).toBe(true);
        expect(await holds(cmp('<', Uint8Array.of(0xff)))).toBe(true);
      });

      it('compares versions with =, !=, < and >', async () => {
        await put(`${p}k`, '1');
        await put(`${p}k`, '2');
        const cmp = (op: CompareOp, value: number): Compare => ({ key: `${p}k`, target: 'version', op, value });
        expect(await holds(cmp('=', 2))).toBe(true);
        expect(await holds(cmp('=', 1))).toBe(false);
        expect(await holds(cmp('!=', 1))).toBe(true);
        expect(await holds(cmp('!=', 2))).toBe(false);
        expect(await holds(cmp('<', 3))).toBe(true);
        expect(await holds(cmp('<', 2))).toBe(false);
        expect(await holds(cmp('>', 1))).toBe(true);
        expect(await holds(cmp('>', 2))).toBe(false);
      });

      it('compares createRevision with =, !=, < and >', async () => {
        const created = await put(`${p}k`, '1');
        await put(`${p}k`, '2');
        const cmp = (op: CompareOp, value: number): Compare => ({ key: `${p}k`, target: 'createRevision', op, value });
        expect(await holds(cmp('=', created))).toBe(true);
        expect(await holds(cmp('=', created + 1))).toBe(false);
        expect(await holds(cmp('!=', created + 1))).toBe(true);
        expect(await holds(cmp('!=', created))).toBe(false);
        expect(await holds(cmp('<', created + 1))).toBe(true);
        expect(await holds(cmp('<', created))).toBe(false);
        expect(await holds(cmp('>', created - 1))).toBe(true);
        expect(await holds(cmp('>', created))).toBe(false);
      });

      it('compares modRevision with =, !=, < and >', async () => {
        await put(`${p}k`, '1');
        const modified = await put(`${p}k`, '2');
        const cmp = (op: CompareOp, value: number): Compare => ({ key: `${p}k`, target: 'modRevision', op, value });
        expect(await holds(cmp('=', modified))).toBe(true);
        expect(await holds(cmp('=', modified - 1))).toBe(false);
        expect(await holds(cmp('!=', modified - 1))).toBe(true);
        expect(await holds(cmp('!=', modified))).toBe(false);
        expect(await holds(cmp('<', modified + 1))).toBe(true);
        expect(await holds(cmp('<', modified))).toBe(false);
        expect(await holds(cmp('>', modified - 1))).toBe(true);
        expect(await holds(cmp('>', modified))).toBe(false);
      });

      it('compares the lease of a key with = and != (null for no lease)', async () => {
        const lease = await grant(ttl * 5);
        const other = await grant(ttl * 5);
        await put(`${p}leased`, 'x', lease.id);
        await put(`${p}plain`, 'y');
        const cmp = (key: string, op: CompareOp, value: LeaseId | null): Compare => ({
          key: `${p}${key}`,
          target: 'lease',
          op,
          value,
        });
        expect(await holds(cmp('leased', '=', lease.id))).toBe(true);
        expect(await holds(cmp('leased', '=', other.id))).toBe(false);
        expect(await holds(cmp('leased', '!=', other.id))).toBe(true);
        expect(await holds(cmp('leased', '!=', lease.id))).toBe(false);
        expect(await holds(cmp('leased', '=', null))).toBe(false);
        expect(await holds(cmp('plain', '=', null))).toBe(true);
        expect(await holds(cmp('plain', '!=', null))).toBe(false);
        expect(await holds(cmp('plain', '=', lease.id))).toBe(false);
      });

      it('treats a missing key as version, createRevision and modRevision 0, lease null, and any value compare as false', async () => {
        const key = `${p}missing`;
        expect(await holds({ key, target: 'version', op: '=', value: 0 })).toBe(true);
        expect(await holds({ key, target: 'createRevision', op: '=', value: 0 })).toBe(true);
        expect(await holds({ key, target: 'modRevision', op: '=', value: 0 })).toBe(true);
        expect(await holds({ key, target: 'modRevision', op: '<', value: 1 })).toBe(true);
        expect(await holds({ key, target: 'version', op: '>', value: 0 })).toBe(false);
        expect(await holds({ key, target: 'lease', op: '=', value: null })).toBe(true);
        for (const op of ['=', '!=', '<', '>'] as const) {
          expect(await holds({ key, target: 'value', op, value: bytes('x') }), `value ${op} on a missing key`).toBe(
            false,
          );
          expect(await holds({ key, target: 'value', op, value: new Uint8Array() })).toBe(false);
        }
      });

      it('requires every compare to hold (they are ANDed)', async () => {
        const r = await put(`${p}a`, 'a');
        await put(`${p}b`, 'b');
        const good: Compare = { key: `${p}a`, target: 'modRevision', op: '=', value: r };
        const bad: Compare = { key: `${p}b`, target: 'value', op: '=', value: bytes('not b') };
        expect(await holds(good)).toBe(true);
        expect(await holds(good, bad)).toBe(false);
        expect(await holds(bad, good)).toBe(false);
      });

      it('runs the success branch when the compares hold, with one result per op in order', async () => {
        await put(`${p}a`, 'a');
        const before = await b.revision();
        const res = await b.txn({
          compare: [{ key: `${p}a`, target: 'value', op: '=', value: bytes('a') }],
          success: [
            { type: 'put', key: `${p}b`, value: bytes('b') },
            { type: 'get', key: `${p}a` },
          ],
          failure: [{ type: 'put', key: `${p}c`, value: bytes('c') }],
        });
        expect(res.succeeded).toBe(true);
        expect(res.revision).toBe(before + 1);
        expect(res.results.map((r) => r.type)).toEqual(['put', 'get']);
        expect(result(res.results, 0, 'put').revision).toBe(before + 1);
        expect(text(result(res.results, 1, 'get').kvs[0]?.value ?? new Uint8Array())).toBe('a');
        expect(await getText(`${p}b`)).toBe('b');
        expect(await b.get(`${p}c`)).toBeNull();
      });

      it('runs the failure branch when a compare fails', async () => {
        await put(`${p}a`, 'a');
        const before = await b.revision();
        const res = await b.txn({
          compare: [{ key: `${p}a`, target: 'value', op: '=', value: bytes('not a') }],
          success: [{ type: 'put', key: `${p}b`, value: bytes('b') }],
          failure: [
            { type: 'put', key: `${p}c`, value: bytes('c') },
            { type: 'get', key: `${p}a` },
          ],
        });
        expect(res.succeeded).toBe(false);
        expect(res.revision).toBe(before + 1);
        expect(res.results.map((r) => r.type)).toEqual(['put', 'get']);
        expect(text(result(res.results, 1, 'get').kvs[0]?.value ?? new Uint8Array())).toBe('a');
        expect(await b.get(`${p}b`)).toBeNull();
        expect(await getText(`${p}c`)).toBe('c');
      });

      it('applies all ops of a txn at one revision, advancing it by exactly one', async () => {
        await put(`${p}old`, 'old');
        const recorder = await watchFromNext(p, { prefix: true });
        const before = await b.revision();
        const res = await b.txn({
          compare: [],
          success: [
            { type: 'put', key: `${p}x`, value: bytes('x') },
            { type: 'put', key: `${p}y`, value: bytes('y') },
            { type: 'put', key: `${p}z`, value: bytes('z') },
            { type: 'delete', key: `${p}old` },
          ],
          failure: [],
        });
        expect(res.succeeded).toBe(true);
        expect(res.revision).toBe(before + 1);
        expect(await b.revision()).toBe(before + 1);
        const now = await b.range({ key: p, prefix: true });
        expect(keysOf(now.kvs)).toEqual([`${p}x`, `${p}y`, `${p}z`]);
        expect(now.kvs.every((kv) => kv.modRevision === before + 1 && kv.createRevision === before + 1)).toBe(true);
        const events = await recorder.waitForEvents(4);
        expect(events.every((e) => e.revision === before + 1)).toBe(true);
      });

      it('writes nothing and keeps the revision when a compare fails and the failure branch is empty', async () => {
        await put(`${p}a`, 'a');
        await put(`${p}doomed/x`, 'x');
        const before = await b.revision();
        const res = await b.txn({
          compare: [{ key: `${p}a`, target: 'version', op: '=', value: 7 }],
          success: [
            { type: 'put', key: `${p}a`, value: bytes('changed') },
            { type: 'put', key: `${p}new`, value: bytes('new') },
            { type: 'delete', key: `${p}doomed/`, prefix: true },
          ],
          failure: [],
        });
        expect(res).toMatchObject({ succeeded: false, revision: before, results: [] });
        expect(await b.revision()).toBe(before);
        expect(await getText(`${p}a`)).toBe('a');
        expect(await b.get(`${p}new`)).toBeNull();
        expect(await getText(`${p}doomed/x`)).toBe('x');
      });

      it('rejects a branch that writes one key twice with InvalidArgumentError, writing nothing', async () => {
        await put(`${p}a`, 'a');
        const before = await b.revision();
        await rejection(
          () =>
            b.txn({
              compare: [],
              success: [
                { type: 'put', key: `${p}a`, value: bytes('one') },
                { type: 'put', key: `${p}a`, value: bytes('two') },
              ],
              failure: [],
            }),
          InvalidArgumentError,
        );
        expect(await b.revision()).toBe(before);
        expect(await getText(`${p}a`)).toBe('a');
      });

      it('returns range results from get ops, with prefix, limit and count', async () => {
        for (const name of ['a', 'b', 'c']) await put(`${p}dir/${name}`, name);
        const before = await b.revision();
        const res = await b.txn({
          compare: [],
          success: [
            { type: 'get', key: `${p}dir/`, prefix: true, limit: 2 },
            { type: 'get', key: `${p}dir/c` },
            { type: 'get', key: `${p}missing` },
          ],
          failure: [],
        });
        const listing = result(res.results, 0, 'get');
        expect(keysOf(listing.kvs)).toEqual([`${p}dir/a`, `${p}dir/b`]);
        expect(listing).toMatchObject({ more: true, count: 3 });
        expect(text(result(res.results, 1, 'get').kvs[0]?.value ?? new Uint8Array())).toBe('c');
        expect(result(res.results, 2, 'get').kvs).toEqual([]);
        expect(res.revision).toBe(before);
        expect(await b.revision()).toBe(before);
      });

      it('applies a put and a delete of different keys together', async () => {
        await put(`${p}from`, 'moving');
        const before = await b.revision();
        const res = await b.txn({
          compare: [{ key: `${p}to`, target: 'version', op: '=', value: 0 }],
          success: [
            { type: 'put', key: `${p}to`, value: bytes('moving') },
            { type: 'delete', key: `${p}from` },
          ],
          failure: [],
        });
        expect(res.succeeded).toBe(true);
        expect(res.revision).toBe(before + 1);
        const del = result(res.results, 1, 'delete');
        expect(del.deleted).toBe(1);
        expect(text(del.prevKvs[0]?.value ?? new Uint8Array())).toBe('moving');
        expect(await b.get(`${p}from`)).toBeNull();
        expect(await b.get(`${p}to`)).toMatchObject({ modRevision: before + 1, version: 1 });
      });

      it('returns the previous key from a put inside a txn', async () => {
        const first = await put(`${p}k`, 'old');
        const res = await b.txn({
          compare: [],
          success: [
            { type: 'put', key: `${p}k`, value: bytes('new') },
            { type: 'put', key: `${p}fresh`, value: bytes('fresh') },
          ],
          failure: [],
        });
        const updated = result(res.results, 0, 'put');
        expect(updated.prevKv).toMatchObject({ key: `${p}k`, modRevision: first, version: 1 });
        expect(text(updated.prevKv?.value ?? new Uint8Array())).toBe('old');
        expect(result(res.results, 1, 'put').prevKv).toBeNull();
      });

      it('lets a get see a put made earlier in the same txn', async () => {
        await put(`${p}k`, 'before');
        const res = await b.txn({
          compare: [],
          success: [
            { type: 'put', key: `${p}k`, value: bytes('inside') },
            { type: 'get', key: `${p}k` },
          ],
          failure: [],
        });
        const read = result(res.results, 1, 'get');
        expect(text(read.kvs[0]?.value ?? new Uint8Array())).toBe('inside');
        expect(read.kvs[0]).toMatchObject({ version: 2, modRevision: res.revision });
      });

      it('does not bump the revision for a txn of gets only', async () => {
        await put(`${p}a`, 'a');
        const before = await b.revision();
        const res = await b.txn({
          compare: [{ key: `${p}a`, target: 'version', op: '=', value: 1 }],
          success: [{ type: 'get', key: p, prefix: true }],
          failure: [],
        });
        expect(res).toMatchObject({ succeeded: true, revision: before });
        expect(await b.revision()).toBe(before);
      });

      it('rejects a stale compare-and-swap on modRevision and leaves the value', async () => {
        const seen = await put(`${p}config`, 'v1');
        await put(`${p}config`, 'v2 by someone else');
        const before = await b.revision();
        const res = await b.txn({
          compare: [{ key: `${p}config`, target: 'modRevision', op: '=', value: seen }],
          success: [{ type: 'put', key: `${p}config`, value: bytes('v2 by me') }],
          failure: [],
        });
        expect(res.succeeded).toBe(false);
        expect(await getText(`${p}config`)).toBe('v2 by someone else');
        expect(await b.revision()).toBe(before);
      });

      it('lets exactly one of 20 concurrent compare-and-swaps from the same modRevision win', async () => {
        const start = await put(`${p}counter`, 'start');
        const attempts = await Promise.all(
          Array.from({ length: 20 }, (_, i) =>
            b.txn({
              compare: [{ key: `${p}counter`, target: 'modRevision', op: '=', value: start }],
              success: [{ type: 'put', key: `${p}counter`, value: bytes(`writer ${i}`) }],
              failure: [{ type: 'get', key: `${p}counter` }],
            }),
          ),
        );
        const winners = attempts.flatMap((a, i) => (a.succeeded ? [i] : []));
        expect(winners).toHaveLength(1);
        const kv = await b.get(`${p}counter`);
        expect(text(kv?.value ?? new Uint8Array())).toBe(`writer ${winners[0]}`);
        expect(kv?.version).toBe(2);
        expect(kv?.modRevision).toBe(start + 1);
        expect(await b.revision()).toBe(start + 1);
      });

      it('fails with LeaseNotFoundError and writes nothing when a txn put names an unknown lease', async () => {
        const before = await b.revision();
        const err = await rejection(
          () =>
            b.txn({
              compare: [],
              success: [
                { type: 'put', key: `${p}plain`, value: bytes('plain') },
                { type: 'put', key: `${p}leased`, value: bytes('leased'), lease: NEVER_GRANTED_LEASE },
              ],
              failure: [],
            }),
          LeaseNotFoundError,
        );
        expect(err.leaseId).toBe(NEVER_GRANTED_LEASE);
        expect(await b.revision()).toBe(before);
        expect((await b.range({ key: p, prefix: true })).count).toBe(0);
      });
    });

    describe('leases', () => {
      it('grants a lease with a lowercase hex id and the TTL asked for', async () => {
        const lease = await grant(ttl * 3);
        expect(lease.id).toMatch(/^[0-9a-f]+$/);
        expect(lease.ttl).toBe(ttl * 3);
        const other = await grant(ttl * 3);
        expect(other.id).not.toBe(lease.id);
      });

      it('does not change the revision when granting a lease', async () => {
        const before = await b.revision();
        await grant(ttl * 3);
        expect(await b.revision()).toBe(before);
      });

      it("binds a key to a lease and lists the lease's keys in leaseInfo", async () => {
        const lease = await grant(ttl * 5);
        await put(`${p}b`, 'b', lease.id);
        await put(`${p}a`, 'a', lease.id);
        await put(`${p}unbound`, 'u');
        expect((await b.get(`${p}a`))?.lease).toBe(lease.id);
        expect((await b.get(`${p}unbound`))?.lease).toBeNull();
        const info = await b.leaseInfo(lease.id);
        expect(info.id).toBe(lease.id);
        expect(info.grantedTtl).toBe(ttl * 5);
        expect(info.ttl).toBeGreaterThan(0);
        expect(info.ttl).toBeLessThanOrEqual(ttl * 5);
        expect([...info.keys].sort()).toEqual([`${p}a`, `${p}b`]);
      });

      it('lists granted leases and drops revoked ones', async () => {
        const kept = await grant(ttl * 5);
        const revoked = await grant(ttl * 5);
        const listed = await b.listLeases();
        expect(listed).toContain(kept.id);
        expect(listed).toContain(revoked.id);
        await b.revokeLease(revoked.id);
        const after = await b.listLeases();
        expect(after).toContain(kept.id);
        expect(after).not.toContain(revoked.id);
      });

      it('counts the remaining TTL down as time passes', async () => {
        const lease = await grant(ttl * 5);
        await harness.advance(1500);
        const info = await b.leaseInfo(lease.id);
        expect(info.grantedTtl).toBe(ttl * 5);
        expect(info.ttl).toBeLessThan(ttl * 5);
        expect(info.ttl).toBeGreaterThan(0);
      });

      it('renews a lease to its full TTL on keepAlive, so it outlives its first TTL', async () => {
        const lease = await grant(ttl);
        await put(`${p}alive`, 'yes', lease.id);
        await harness.advance(ttl * 750);
        const renewed = await b.keepAlive(lease.id);
        expect(renewed).toEqual({ id: lease.id, ttl });
        await harness.advance(ttl * 750);
        // 1.5 TTLs since the grant, 0.75 since the keepAlive: still alive.
        expect(await getText(`${p}alive`)).toBe('yes');
        expect((await b.leaseInfo(lease.id)).keys).toEqual([`${p}alive`]);
        // Without further keepAlives it then expires as usual.
        await harness.advance(ttl * 1000 + 500);
        await eventually(async () => expect(await b.get(`${p}alive`)).toBeNull());
      });

      it('deletes its keys on expiry, as delete events at one revision in one batch', async () => {
        const lease = await grant(ttl);
        await put(`${p}e/one`, '1', lease.id);
        await put(`${p}e/two`, '2', lease.id);
        await put(`${p}e/three`, '3', lease.id);
        await put(`${p}e/free`, 'free');
        const recorder = await watchFromNext(`${p}e/`, { prefix: true });
        const before = await b.revision();
        await harness.advance(ttl * 1000 + 500);
        const events = await recorder.waitForEvents(3, 15_000);
        expect(events.map((e) => e.type)).toEqual(['delete', 'delete', 'delete']);
        expect(events.map((e) => e.kv.key).sort()).toEqual([`${p}e/one`, `${p}e/three`, `${p}e/two`]);
        const revision = events[0]?.revision;
        expect(revision).toBeGreaterThan(before);
        expect(events.every((e) => e.revision === revision)).toBe(true);
        expect(recorder.batches[0]?.events).toHaveLength(3);
        expect(keysOf((await b.range({ key: `${p}e/`, prefix: true })).kvs)).toEqual([`${p}e/free`]);
      });

      it('fails with LeaseNotFoundError for keepAlive, revoke and leaseInfo of an expired lease, and stops listing it', async () => {
        const lease = await grant(ttl);
        await harness.advance(ttl * 1000 + 500);
        await eventually(async () => expect(await b.listLeases()).not.toContain(lease.id));
        expect((await rejection(() => b.leaseInfo(lease.id), LeaseNotFoundError)).leaseId).toBe(lease.id);
        expect((await rejection(() => b.keepAlive(lease.id), LeaseNotFoundError)).leaseId).toBe(lease.id);
        expect((await rejection(() => b.revokeLease(lease.id), LeaseNotFoundError)).leaseId).toBe(lease.id);
      });

      it('fails with LeaseNotFoundError for keepAlive, revoke and leaseInfo of a lease never granted', async () => {
        const id = NEVER_GRANTED_LEASE;
        const errors = [
          await rejection(() => b.keepAlive(id), LeaseNotFoundError),
          await rejection(() => b.revokeLease(id), LeaseNotFoundError),
          await rejection(() => b.leaseInfo(id), LeaseNotFoundError),
        ];
        for (const err of errors) {
          expect(err.leaseId).toBe(id);
          expect(err.code).toBe('lease_not_found');
        }
      });

      it('deletes its keys at one new revision when revoked, and then is gone', async () => {
        const lease = await grant(ttl * 5);
        await put(`${p}r/a`, 'a', lease.id);
        await put(`${p}r/b`, 'b', lease.id);
        const recorder = await watchFromNext(`${p}r/`, { prefix: true });
        const before = await b.revision();
        await b.revokeLease(lease.id);
        expect(await b.revision()).toBe(before + 1);
        expect((await b.range({ key: `${p}r/`, prefix: true })).count).toBe(0);
        const events = await recorder.waitForEvents(2);
        expect(events.map((e) => [e.type, e.kv.key, e.revision])).toEqual([
          ['delete', `${p}r/a`, before + 1],
          ['delete', `${p}r/b`, before + 1],
        ]);
        await rejection(() => b.leaseInfo(lease.id), LeaseNotFoundError);
      });

      it('does not change the revision when revoking a lease without keys', async () => {
        const lease = await grant(ttl * 5);
        const before = await b.revision();
        await b.revokeLease(lease.id);
        expect(await b.revision()).toBe(before);
      });

      it('fails a put with an unknown lease with LeaseNotFoundError and writes nothing', async () => {
        const revoked = await grant(ttl * 5);
        await b.revokeLease(revoked.id);
        const before = await b.revision();
        for (const id of [NEVER_GRANTED_LEASE, revoked.id]) {
          const err = await rejection(() => b.put(`${p}k`, bytes('v'), { lease: id }), LeaseNotFoundError);
          expect(err.leaseId).toBe(id);
        }
        expect(await b.get(`${p}k`)).toBeNull();
        expect(await b.revision()).toBe(before);
      });

      it('detaches a key from its lease when it is put again without one', async () => {
        const lease = await grant(ttl * 5);
        await put(`${p}k`, 'leased', lease.id);
        await put(`${p}k`, 'free');
        expect((await b.get(`${p}k`))?.lease).toBeNull();
        expect((await b.leaseInfo(lease.id)).keys).toEqual([]);
        await b.revokeLease(lease.id);
        expect(await getText(`${p}k`)).toBe('free');
      });

      it('moves a key to another lease when it is put again with that lease', async () => {
        const first = await grant(ttl * 5);
        const second = await grant(ttl * 5);
        await put(`${p}k`, 'v1', first.id);
        await put(`${p}k`, 'v2', second.id);
        expect((await b.leaseInfo(first.id)).keys).toEqual([]);
        expect((await b.leaseInfo(second.id)).keys).toEqual([`${p}k`]);
        await b.revokeLease(first.id);
        expect(await getText(`${p}k`)).toBe('v2');
        await b.revokeLease(second.id);
        expect(await b.get(`${p}k`)).toBeNull();
      });

      it('forgets a deleted key in leaseInfo, and revoking then touches only the remaining keys', async () => {
        const lease = await grant(ttl * 5);
        await put(`${p}a`, 'a', lease.id);
        await put(`${p}b`, 'b', lease.id);
        await b.delete({ key: `${p}a` });
        expect((await b.leaseInfo(lease.id)).keys).toEqual([`${p}b`]);
        const before = await b.revision();
        const recorder = await watchFromNext(p, { prefix: true });
        await b.revokeLease(lease.id);
        const [event] = await recorder.waitForEvents(1);
        expect([event?.type, event?.kv.key, event?.revision]).toEqual(['delete', `${p}b`, before + 1]);
        await flushWatch(recorder, `${p}marker`);
        expect(recorder.events).toHaveLength(2);
      });

      it('keeps leases independent: revoking one leaves the keys of another', async () => {
        const one = await grant(ttl * 5);
        const two = await grant(ttl * 5);
        await put(`${p}one`, '1', one.id);
        await put(`${p}two`, '2', two.id);
        await b.revokeLease(one.id);
        expect(keysOf((await b.range({ key: p, prefix: true })).kvs)).toEqual([`${p}two`]);
        expect((await b.leaseInfo(two.id)).keys).toEqual([`${p}two`]);
      });

      it('attaches a lease through a txn put, and revoking it deletes that key', async () => {
        const lease = await grant(ttl * 5);
        await b.txn({
          compare: [],
          success: [{ type: 'put', key: `${p}k`, value: bytes('v'), lease: lease.id }],
          failure: [],
        });
        expect((await b.get(`${p}k`))?.lease).toBe(lease.id);
        expect((await b.leaseInfo(lease.id)).keys).toEqual([`${p}k`]);
        await b.revokeLease(lease.id);
        expect(await b.get(`${p}k`)).toBeNull();
      });
    });

    describe('watch', () => {
      it('delivers live events in order with their metadata', async () => {
        const recorder = await watchFromNext(p, { prefix: true });
        const r1 = await put(`${p}a`, '1');
        const r2 = await put(`${p}b`, '2');
        const r3 = await put(`${p}a`, '3');
        const r4 = (await b.delete({ key: `${p}b` })).revision;
        const events = await recorder.waitForEvents(4);
        expect(events.map((e) => [e.type, e.kv.key, e.revision])).toEqual([
          ['put', `${p}a`, r1],
          ['put', `${p}b`, r2],
          ['put', `${p}a`, r3],
          ['delete', `${p}b`, r4],
        ]);
        expect(text(events[2]?.kv.value ?? new Uint8Array())).toBe('3');
        expect(events[2]?.kv).toMatchObject({ version: 2, createRevision: r1, modRevision: r3, lease: null });
        expect(events.every((e) => e.revision === e.kv.modRevision)).toBe(true);
      });

      it('describes a delete as an empty key with version 0 and modRevision = the delete revision', async () => {
        await put(`${p}k`, 'v');
        const recorder = await watchFromNext(`${p}k`);
        const deleted = (await b.delete({ key: `${p}k` })).revision;
        const [event] = await recorder.waitForEvents(1);
        expect(event?.type).toBe('delete');
        expect(event?.revision).toBe(deleted);
        expect(event?.kv).toMatchObject({
          key: `${p}k`,
          version: 0,
          createRevision: 0,
          modRevision: deleted,
          lease: null,
        });
        expect(event?.kv.value.byteLength).toBe(0);
      });

      it('replays from a past revision, then follows live with none missed, even while writing during the replay', async () => {
        const history: number[] = [];
        for (let i = 0; i < 30; i++) history.push(await put(`${p}k${i % 7}`, `h${i}`));
        const from = history[0] ?? 0;
        const recorder = watch(p, { prefix: true, fromRevision: from });
        // These writes race with the replay on purpose.
        const live = await Promise.all(Array.from({ length: 30 }, (_, i) => put(`${p}live${i}`, `l${i}`)));
        const expected = [...history, ...live].sort((x, y) => x - y);
        const events = await recorder.waitForEvents(60);
        expect(events.map((e) => e.revision)).toEqual(expected);
        expect(events.slice(0, 30).map((e) => text(e.kv.value))).toEqual(history.map((_, i) => `h${i}`));
        await flushWatch(recorder, `${p}marker`);
        expect(recorder.events).toHaveLength(61);
      });

      it('starts a replay exactly at fromRevision, not before', async () => {
        await put(`${p}a`, '1');
        const second = await put(`${p}a`, '2');
        const third = await put(`${p}b`, '3');
        const recorder = watch(p, { prefix: true, fromRevision: second });
        const events = await recorder.waitForEvents(2);
        expect(events.map((e) => e.revision)).toEqual([second, third]);
        await flushWatch(recorder, `${p}marker`);
        expect(recorder.events).toHaveLength(3);
      });

      it('replays deletes from history too', async () => {
        const from = await put(`${p}k`, 'v');
        const deleted = (await b.delete({ key: `${p}k` })).revision;
        const recorder = watch(`${p}k`, { fromRevision: from });
        const events = await recorder.waitForEvents(2);
        expect(events.map((e) => [e.type, e.revision])).toEqual([
          ['put', from],
          ['delete', deleted],
        ]);
      });

      it('delivers all events of one txn in one batch', async () => {
        const recorder = await watchFromNext(p, { prefix: true });
        await put(`${p}before`, 'x');
        const res = await b.txn({
          compare: [],
          success: [
            { type: 'put', key: `${p}t1`, value: bytes('1') },
            { type: 'put', key: `${p}t2`, value: bytes('2') },
            { type: 'delete', key: `${p}before` },
          ],
          failure: [],
        });
        await recorder.waitForEvents(4);
        const batch = recorder.batches.find((candidate) => candidate.events.some((e) => e.revision === res.revision));
        const ofTxn = batch?.events.filter((e) => e.revision === res.revision) ?? [];
        expect(ofTxn.map((e) => [e.type, e.kv.key])).toEqual([
          ['put', `${p}t1`],
          ['put', `${p}t2`],
          ['delete', `${p}before`],
        ]);
      });

      it('delivers all deletes of a prefix delete in one batch', async () => {
        for (const name of ['a', 'b', 'c', 'd']) await put(`${p}d/${name}`, name);
        const recorder = await watchFromNext(p, { prefix: true });
        const res = await b.delete({ key: `${p}d/`, prefix: true });
        await recorder.waitForEvents(4);
        const batch = recorder.batches.find((candidate) => candidate.events.some((e) => e.revision === res.revision));
        expect(batch?.events.filter((e) => e.revision === res.revision)).toHaveLength(4);
      });

      it('without fromRevision, delivers only what happens after the watch starts', async () => {
        const old = await put(`${p}k`, 'old');
        const recorder = watch(p, { prefix: true });
        // When the watch is really in place is the backend's business, so keep
        // writing until one write shows up; nothing from before may.
        await eventually(async () => {
          await put(`${p}k`, 'new');
          await recorder.waitForEvents(1, 200);
        });
        expect(recorder.events.every((e) => e.revision > old)).toBe(true);
      });

      it('waits for a fromRevision in the future and delivers from there', async () => {
        const current = await b.revision();
        const recorder = watch(p, { prefix: true, fromRevision: current + 2 });
        await put(`${p}first`, '1');
        const second = await put(`${p}second`, '2');
        const [event] = await recorder.waitForEvents(1);
        expect([event?.kv.key, event?.revision]).toEqual([`${p}second`, second]);
        await flushWatch(recorder, `${p}marker`);
        expect(recorder.events).toHaveLength(2);
      });

      it('attaches the previous key to each event when prevKv is set', async () => {
        const recorder = await watchFromNext(`${p}k`, { prevKv: true });
        const created = await put(`${p}k`, 'one');
        await put(`${p}k`, 'two');
        await b.delete({ key: `${p}k` });
        const [create, update, remove] = await recorder.waitForEvents(3);
        expect(create?.prevKv ?? null).toBeNull();
        expect(text(update?.prevKv?.value ?? new Uint8Array())).toBe('one');
        expect(update?.prevKv).toMatchObject({ version: 1, modRevision: created });
        expect(text(remove?.prevKv?.value ?? new Uint8Array())).toBe('two');
        expect(remove?.prevKv?.version).toBe(2);
      });

      it('attaches no previous key when prevKv is not set', async () => {
        const recorder = await watchFromNext(`${p}k`);
        await put(`${p}k`, 'one');
        await put(`${p}k`, 'two');
        const events = await recorder.waitForEvents(2);
        expect(events.map((e) => e.prevKv ?? null)).toEqual([null, null]);
      });

      it('ends the iteration on close()', async () => {
        const recorder = await watchFromNext(p, { prefix: true });
        await put(`${p}a`, '1');
        await recorder.waitForEvents(1);
        recorder.close();
        await recorder.waitForEnd();
        expect(recorder.error).toBeUndefined();
        await put(`${p}b`, '2');
        expect(recorder.events).toHaveLength(1);
      });

      it('ends the iteration on close() before any event arrived', async () => {
        const recorder = await watchFromNext(p, { prefix: true });
        recorder.close();
        await recorder.waitForEnd();
        expect(recorder.error).toBeUndefined();
        expect(recorder.events).toEqual([]);
      });

      it('ends when the consumer breaks out of for await, and other watches carry on', async () => {
        const from = (await b.revision()) + 1;
        const other = watch(p, { prefix: true, fromRevision: from });
        const seen: WatchEvent[] = [];
        const consumer = (async () => {
          for await (const batch of b.watch(p, { prefix: true, fromRevision: from })) {
            seen.push(...batch.events);
            if (seen.length >= 1) break;
          }
        })();
        await put(`${p}a`, '1');
        await consumer;
        expect(seen[0]?.kv.key).toBe(`${p}a`);
        await put(`${p}b`, '2');
        const events = await other.waitForEvents(2);
        expect(events.map((e) => e.kv.key)).toEqual([`${p}a`, `${p}b`]);
      });

      it('keeps delivering to one watcher after another on the same prefix is closed', async () => {
        const kept = await watchFromNext(p, { prefix: true });
        const closed = await watchFromNext(p, { prefix: true });
        await put(`${p}a`, '1');
        await closed.waitForEvents(1);
        closed.close();
        await closed.waitForEnd();
        await put(`${p}b`, '2');
        const events = await kept.waitForEvents(2);
        expect(events.map((e) => e.kv.key)).toEqual([`${p}a`, `${p}b`]);
      });

      it('shows two concurrent watchers identical sequences', async () => {
        const from = (await b.revision()) + 1;
        const one = watch(p, { prefix: true, fromRevision: from });
        const two = watch(p, { prefix: true, fromRevision: from });
        // Parallel writes, in two phases so that every delete finds its key.
        await Promise.all(Array.from({ length: 32 }, (_, i) => b.put(`${p}k${i}`, bytes(`v${i}`))));
        await Promise.all([
          ...Array.from({ length: 8 }, (_, i) => b.delete({ key: `${p}k${i * 4}` })),
          ...Array.from({ length: 8 }, (_, i) => b.put(`${p}k${i * 4 + 1}`, bytes(`w${i}`))),
        ]);
        const a = await one.waitForEvents(48);
        const c = await two.waitForEvents(48);
        const shape = (events: WatchEvent[]) => events.map((e) => [e.type, e.kv.key, e.revision, text(e.kv.value)]);
        expect(shape(a)).toEqual(shape(c));
      });

      it('gives 200 concurrent puts 200 distinct revisions, and a watcher sees them all in order', async () => {
        const recorder = await watchFromNext(p, { prefix: true });
        const before = await b.revision();
        const results = await Promise.all(Array.from({ length: 200 }, (_, i) => b.put(`${p}c${i}`, bytes(String(i)))));
        const revisions = results.map((r) => r.revision);
        expect(new Set(revisions).size).toBe(200);
        const sorted = [...revisions].sort((x, y) => x - y);
        expect(sorted[0]).toBe(before + 1);
        expect(sorted[199]).toBe(before + 200);
        const events = await recorder.waitForEvents(200);
        expect(events.map((e) => e.revision)).toEqual(sorted);
        // Each event carries the value written at its revision.
        const byRevision = new Map(results.map((r, i) => [r.revision, String(i)]));
        expect(events.every((e) => text(e.kv.value) === byRevision.get(e.revision))).toBe(true);
      });

      it('fails the iteration with CompactedError(oldestRevision) for a compacted start', async () => {
        const first = await put(`${p}k`, '1');
        await put(`${p}k`, '2');
        const compactTo = await put(`${p}k`, '3');
        await b.compact(compactTo);
        const recorder = watch(p, { prefix: true, fromRevision: first });
        await recorder.waitForEnd();
        expect(recorder.error).toBeInstanceOf(CompactedError);
        const err = recorder.error as CompactedError;
        expect(err.oldestRevision).toBe(await b.oldestRevision());
        expect(err.oldestRevision).toBeGreaterThanOrEqual(compactTo);
        expect(err.requestedRevision).toBe(first);
        expect(recorder.events).toEqual([]);
      });
    });

    describe('compaction', () => {
      it('refuses a compaction revision that is not a whole number ≥ 1, and a lease TTL that is not one either', async () => {
        for (const revision of [0, -3, 2.5, Number.NaN]) {
          await expect(b.compact(revision)).rejects.toBeInstanceOf(InvalidArgumentError);
        }
        for (const ttl of [0, -1, 1.5, Number.NaN]) {
          await expect(b.grantLease(ttl)).rejects.toBeInstanceOf(InvalidArgumentError);
        }
      });

      it('reports the compacted revision as the oldest revision', async () => {
        await put(`${p}a`, '1');
        const r = await put(`${p}a`, '2');
        await put(`${p}a`, '3');
        await b.compact(r);
        expect(await b.oldestRevision()).toBe(r);
      });

      it('fails a range below the oldest revision with CompactedError, and serves one at it', async () => {
        const old = await put(`${p}a`, '1');
        const r = await put(`${p}a`, '2');
        await put(`${p}a`, '3');
        await b.compact(r);
        const err = await rejection(() => b.range({ key: p, prefix: true, revision: old }), CompactedError);
        expect(err.requestedRevision).toBe(old);
        expect(err.oldestRevision).toBe(r);
        expect(err.code).toBe('compacted');
        const atOldest = await b.range({ key: p, prefix: true, revision: r });
        expect(atOldest.kvs.map((kv) => text(kv.value))).toEqual(['2']);
      });

      it('fails a get below the oldest revision with CompactedError', async () => {
        const old = await put(`${p}a`, '1');
        const r = await put(`${p}a`, '2');
        await b.compact(r);
        const err = await rejection(() => b.get(`${p}a`, { revision: old }), CompactedError);
        expect(err.oldestRevision).toBe(r);
      });

      it('keeps the state as of the oldest revision: keys written earlier stay, keys deleted earlier stay gone', async () => {
        await put(`${p}kept`, 'written long ago');
        await put(`${p}gone`, 'deleted before compaction');
        await b.delete({ key: `${p}gone` });
        const r = await put(`${p}recent`, 'r');
        await put(`${p}after`, 'after');
        await b.compact(r);
        const atOldest = await b.range({ key: p, prefix: true, revision: r });
        expect(keysOf(atOldest.kvs)).toEqual([`${p}kept`, `${p}recent`]);
        expect(text(atOldest.kvs[0]?.value ?? new Uint8Array())).toBe('written long ago');
        const now = await b.range({ key: p, prefix: true });
        expect(keysOf(now.kvs)).toEqual([`${p}after`, `${p}kept`, `${p}recent`]);
        expect(now.kvs[1]?.version).toBe(1);
      });

      it('still replays a watch from the oldest revision on', async () => {
        await put(`${p}a`, '1');
        const r = await put(`${p}a`, '2');
        const last = await put(`${p}b`, '3');
        await b.compact(r);
        const recorder = watch(p, { prefix: true, fromRevision: r });
        const events = await recorder.waitForEvents(2);
        expect(events.map((e) => [e.kv.key, e.revision])).toEqual([
          [`${p}a`, r],
          [`${p}b`, last],
        ]);
      });

      it('does not change the revision or current values', async () => {
        await put(`${p}a`, '1');
        const r = await put(`${p}a`, '2');
        const before = await b.revision();
        await b.compact(r);
        expect(await b.revision()).toBe(before);
        expect(await getText(`${p}a`)).toBe('2');
        expect((await b.get(`${p}a`))?.version).toBe(2);
      });
    });
  });

  describeConcurrentWrites(name, make, { progress: options.progress ?? true });
}
