import { expect } from 'vitest';
import type { Backend } from '../../src/core/backend.js';

/** A put that was acknowledged: its key, value and revision. */
export interface AckedPut {
  readonly key: string;
  readonly value: string;
  readonly revision: number;
}

/**
 * Check a store restored from a snapshot at `revision`: under `prefix`, exactly the
 * keys acknowledged at or below it, each as its last acknowledged put left it
 * (value, createRevision, modRevision, version), and nothing written after it.
 */
export async function expectRestoredWrites(
  backend: Backend,
  prefix: string,
  acked: readonly AckedPut[],
  revision: number,
): Promise<void> {
  const expected = new Map<string, { value: string; create: number; mod: number; version: number }>();
  for (const a of [...acked].sort((x, y) => x.revision - y.revision)) {
    if (a.revision > revision) continue;
    const before = expected.get(a.key);
    expected.set(a.key, {
      value: a.value,
      create: before?.create ?? a.revision,
      mod: a.revision,
      version: (before?.version ?? 0) + 1,
    });
  }
  const found = new Map((await backend.range({ key: prefix, prefix: true })).kvs.map((kv) => [kv.key, kv]));
  expect([...found.keys()].sort()).toEqual([...expected.keys()].sort());
  for (const [key, want] of expected) {
    const kv = found.get(key);
    expect({ key, value: Buffer.from(kv?.value ?? []).toString(), create: kv?.createRevision }).toEqual({
      key,
      value: want.value,
      create: want.create,
    });
    expect(kv).toMatchObject({ modRevision: want.mod, version: want.version });
  }
}
