import type { Database as Db } from 'better-sqlite3';

import type { KeyValue, LeaseId } from '../../core/backend.js';

/** A row of `kv`: a key as it is now. */
export interface KvRow {
  key: string;
  value: Buffer;
  create_revision: number;
  mod_revision: number;
  version: number;
  lease: string | null;
}

/** A row of `history`: one event (a put, or a delete when `deleted` is 1). */
export interface HistoryRow {
  revision: number;
  key: string;
  deleted: number;
  value: Buffer | null;
  create_revision: number;
  version: number;
  lease: string | null;
}

export const EMPTY = new Uint8Array(0);

/** What the store does with a prepared statement (an interface of its own, so that declaration files can name it). */
export interface SqlStatement {
  run(...params: unknown[]): unknown;
  get(...params: unknown[]): unknown;
  all(...params: unknown[]): unknown[];
}

/** The store's prepared statements: the whole of its SQL, in one place. */
export type Statements = ReturnType<typeof prepareStatements>;

export function prepareStatements(db: Db) {
  const kvColumns = 'key, value, create_revision, mod_revision, version, lease';
  const historyColumns = 'revision, key, deleted, value, create_revision, version, lease';
  const s = (sql: string): SqlStatement => db.prepare(sql);
  return {
    getMeta: s('SELECT value FROM meta WHERE name = ?'),
    setMeta: s('INSERT INTO meta (name, value) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET value = excluded.value'),
    getKey: s(`SELECT ${kvColumns} FROM kv WHERE key = ?`),
    keysInRange: s(`SELECT ${kvColumns} FROM kv WHERE key >= ? AND key < ? ORDER BY key`),
    keysInRangeLimit: s(`SELECT ${kvColumns} FROM kv WHERE key >= ? AND key < ? ORDER BY key LIMIT ?`),
    /** keysOnly: the same rows without their values, as arrays (see keyOnlyRowToKv). */
    keysOnlyInRange: db
      .prepare(
        'SELECT key, create_revision, mod_revision, version, lease FROM kv WHERE key >= ? AND key < ? ORDER BY key',
      )
      .raw(true) as SqlStatement,
    keysOnlyInRangeLimit: db
      .prepare(
        'SELECT key, create_revision, mod_revision, version, lease FROM kv WHERE key >= ? AND key < ? ORDER BY key LIMIT ?',
      )
      .raw(true) as SqlStatement,
    countInRange: s('SELECT COUNT(*) AS n FROM kv WHERE key >= ? AND key < ?'),
    keysOfLease: s('SELECT key FROM kv WHERE lease = ? ORDER BY key'),
    upsertKey: s(
      `INSERT INTO kv (${kvColumns}) VALUES (?, ?, ?, ?, ?, ?)
       ON CONFLICT (key) DO UPDATE SET value = excluded.value, mod_revision = excluded.mod_revision,
         version = excluded.version, lease = excluded.lease`,
    ),
    deleteKey: s('DELETE FROM kv WHERE key = ?'),
    insertHistory: s(
      `INSERT INTO history (${historyColumns.replace('revision,', 'revision, sub,')}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
    ),
    historyKeyAt: s(
      `SELECT ${historyColumns}, revision AS mod_revision FROM history
       WHERE key = @key AND revision <= @at ORDER BY revision DESC LIMIT 1`,
    ),
    historyRangeAt: s(
      `SELECT h.revision, h.key, h.deleted, h.value, h.create_revision, h.version, h.lease, h.revision AS mod_revision
       FROM history h
       WHERE h.key >= @from AND h.key < @to AND h.revision <= @at
         AND h.revision = (SELECT MAX(h2.revision) FROM history h2 WHERE h2.key = h.key AND h2.revision <= @at)
       ORDER BY h.key`,
    ),
    historyEventsKey: s(
      `SELECT ${historyColumns} FROM history
       WHERE revision >= @from AND revision <= @to AND key = @key ORDER BY revision, sub LIMIT @limit`,
    ),
    historyEventsPrefix: s(
      `SELECT ${historyColumns} FROM history
       WHERE revision >= @from AND revision <= @to AND key >= @lo AND key < @hi ORDER BY revision, sub LIMIT @limit`,
    ),
    historyBefore: s(
      `SELECT ${historyColumns} FROM history WHERE key = ? AND revision < ? ORDER BY revision DESC LIMIT 1`,
    ),
    // Below the compact revision only the latest put of each key is kept. A row is
    // dropped when it is a delete, or when a newer row of its key is below the
    // compact revision too. Rows superseded before @from went in earlier steps, so
    // only the keys written in [@from, @below) need looking at: for each, every
    // row older than its latest write in the step (through history_by_key). The
    // cost follows the step, not the size of the history.
    // (Selected, then deleted by primary key: a DELETE … WHERE (revision, sub) IN
    // (…) makes SQLite scan the whole table.)
    compactable: s(
      `SELECT h.revision, h.sub
       FROM (SELECT key, MAX(revision) AS latest FROM history
             WHERE revision >= @from AND revision < @below GROUP BY key) AS t
       JOIN history AS h ON h.key = t.key AND h.revision < t.latest
       UNION ALL
       SELECT revision, sub FROM history WHERE deleted = 1 AND revision >= @from AND revision < @below`,
    ),
    deleteHistoryRow: s('DELETE FROM history WHERE revision = ? AND sub = ?'),
    allLeases: s('SELECT id, ttl FROM leases'),
    getLease: s('SELECT id FROM leases WHERE id = ?'),
    insertLease: s('INSERT INTO leases (id, ttl) VALUES (?, ?)'),
    deleteLease: s('DELETE FROM leases WHERE id = ?'),
  };
}

export function rowToKv(row: KvRow): KeyValue {
  return {
    key: row.key,
    value: new Uint8Array(row.value.buffer, row.value.byteOffset, row.value.byteLength),
    createRevision: row.create_revision,
    modRevision: row.mod_revision,
    version: row.version,
    lease: row.lease,
  };
}

/** A row of keysOnlyInRange: [key, create_revision, mod_revision, version, lease]. */
export type KeyOnlyRow = [string, number, number, number, LeaseId | null];

export function keyOnlyRowToKv(row: KeyOnlyRow): KeyValue {
  return { key: row[0], value: EMPTY, createRevision: row[1], modRevision: row[2], version: row[3], lease: row[4] };
}

/** The event value of a deleted key. */
export function tombstone(key: string, revision: number): KeyValue {
  return { key, value: EMPTY, createRevision: 0, modRevision: revision, version: 0, lease: null };
}
