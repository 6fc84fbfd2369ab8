import type { Database } from 'better-sqlite3';

/**
 * The SQLite layout.
 *
 * - `kv`: the current state, one row per live key.
 * - `history`: every event (put or delete) by (revision, sub), for watch replay
 *   and range at a past revision. Compaction deletes rows older than the compact
 *   revision, except the latest put of each key below it (still needed to read
 *   as of the compact revision).
 * - `leases`: live leases and their TTL. Expiry times are not stored: on start
 *   every lease gets a fresh full TTL, as etcd does after a restart.
 * - `meta`: the current revision and the compact revision.
 */
export const SCHEMA_VERSION = 1;

export function createSchema(db: Database): void {
  db.exec(`
    CREATE TABLE IF NOT EXISTS meta (
      name  TEXT PRIMARY KEY,
      value INTEGER NOT NULL
    ) WITHOUT ROWID;

    CREATE TABLE IF NOT EXISTS kv (
      key             TEXT PRIMARY KEY,
      value           BLOB NOT NULL,
      create_revision INTEGER NOT NULL,
      mod_revision    INTEGER NOT NULL,
      version         INTEGER NOT NULL,
      lease           TEXT
    ) WITHOUT ROWID;
    CREATE INDEX IF NOT EXISTS kv_by_lease ON kv (lease) WHERE lease IS NOT NULL;

    CREATE TABLE IF NOT EXISTS history (
      revision        INTEGER NOT NULL,
      sub             INTEGER NOT NULL,
      key             TEXT NOT NULL,
      deleted         INTEGER NOT NULL,
      value           BLOB,
      create_revision INTEGER NOT NULL,
      version         INTEGER NOT NULL,
      lease           TEXT,
      PRIMARY KEY (revision, sub)
    ) WITHOUT ROWID;
    CREATE INDEX IF NOT EXISTS history_by_key ON history (key, revision);

    CREATE TABLE IF NOT EXISTS leases (
      id  TEXT PRIMARY KEY,
      ttl INTEGER NOT NULL
    ) WITHOUT ROWID;

    INSERT OR IGNORE INTO meta (name, value) VALUES ('schema_version', ${SCHEMA_VERSION});
    INSERT OR IGNORE INTO meta (name, value) VALUES ('revision', 0);
    INSERT OR IGNORE INTO meta (name, value) VALUES ('compact_revision', 0);
  `);
}
