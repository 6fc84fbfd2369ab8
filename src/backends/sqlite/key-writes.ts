/**
 * The writes of the keyspace inside a batch: put and delete (SQL plus staged
 * events), and the txn's compares and its etcd rule on keys written twice.
 */
import type { Compare, KeyValue, LeaseId, TxnOp } from '../../core/backend.js';
import { InvalidArgumentError } from '../../core/errors.js';
import { prefixEnd } from '../../core/key-path.js';
import type { StagedBatch } from './staged-batch.js';
import type { KvRow, Statements } from './statements.js';
import { rowToKv, tombstone } from './statements.js';

/** Puts one key at `revision` (its `sub`-th event), staging the event; the previous value, if any. */
export function putKey(
  stmt: Statements,
  staged: StagedBatch,
  checkLease: (id: LeaseId) => void,
  key: string,
  value: Uint8Array,
  lease: LeaseId | null,
  revision: number,
  sub: number,
): KeyValue | null {
  if (lease !== null) checkLease(lease);
  const prev = stmt.getKey.get(key) as KvRow | undefined;
  const createRevision = prev ? prev.create_revision : revision;
  const version = prev ? prev.version + 1 : 1;
  const buffer = Buffer.from(value.buffer, value.byteOffset, value.byteLength);
  stmt.upsertKey.run(key, buffer, createRevision, revision, version, lease);
  stmt.insertHistory.run(revision, sub, key, 0, buffer, createRevision, version, lease);
  const prevKv = prev ? rowToKv(prev) : null;
  staged.events.push({
    type: 'put',
    kv: { key, value: new Uint8Array(buffer), createRevision, modRevision: revision, version, lease },
    prevKv,
    revision,
  });
  return prevKv;
}

/** Deletes a key or a prefix at `revision`, staging one event per key; what was deleted. */
export function deleteKeys(
  stmt: Statements,
  staged: StagedBatch,
  key: string,
  prefix: boolean,
  revision: number,
  firstSub: number,
): KeyValue[] {
  const rows = (prefix ? stmt.keysInRange.all(key, prefixEnd(key)) : stmt.getKey.all(key)) as KvRow[];
  let sub = firstSub;
  const prevKvs: KeyValue[] = [];
  for (const row of rows) {
    stmt.deleteKey.run(row.key);
    stmt.insertHistory.run(revision, sub++, row.key, 1, null, 0, 0, null);
    const prevKv = rowToKv(row);
    prevKvs.push(prevKv);
    staged.events.push({ type: 'delete', kv: tombstone(row.key, revision), prevKv, revision });
  }
  return prevKvs;
}

/** Does a txn compare hold against the key as it is now? */
export function compare(stmt: Statements, c: Compare): boolean {
  const row = stmt.getKey.get(c.key) as KvRow | undefined;
  switch (c.target) {
    case 'value':
      if (!row) return false;
      return holds(
        Buffer.compare(row.value, Buffer.from(c.value.buffer, c.value.byteOffset, c.value.byteLength)),
        c.op,
      );
    case 'version':
      return holds(Math.sign((row?.version ?? 0) - c.value), c.op);
    case 'createRevision':
      return holds(Math.sign((row?.create_revision ?? 0) - c.value), c.op);
    case 'modRevision':
      return holds(Math.sign((row?.mod_revision ?? 0) - c.value), c.op);
    case 'lease':
      return holds(compareLeaseIds(row?.lease ?? null, c.value), c.op);
  }
}

function holds(sign: number, op: Compare['op']): boolean {
  switch (op) {
    case '=':
      return sign === 0;
    case '!=':
      return sign !== 0;
    case '<':
      return sign < 0;
    case '>':
      return sign > 0;
  }
}

/** Lease ids compare as numbers; no lease is 0. */
function compareLeaseIds(a: LeaseId | null, b: LeaseId | null): number {
  const x = BigInt('0x' + (a ?? '0'));
  const y = BigInt('0x' + (b ?? '0'));
  return x === y ? 0 : x < y ? -1 : 1;
}

/**
 * etcd refuses a txn whose branch puts one key twice, or puts a key that a delete
 * in the same branch covers (either order); deleting a key twice is allowed. Both
 * branches are checked, taken or not, as etcd does.
 */
export function checkDistinctWrites(ops: readonly TxnOp[]): void {
  const puts = new Set<string>();
  for (const op of ops) {
    if (op.type !== 'put') continue;
    if (puts.has(op.key)) throw duplicateKey(op.key);
    puts.add(op.key);
  }
  for (const op of ops) {
    if (op.type !== 'delete') continue;
    for (const key of puts) {
      if (op.prefix ? key.startsWith(op.key) : key === op.key) throw duplicateKey(key);
    }
  }
}

function duplicateKey(key: string): InvalidArgumentError {
  return new InvalidArgumentError(`key ${key} is written more than once in one transaction branch`, 'duplicate_key');
}
