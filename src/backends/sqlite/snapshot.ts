import type { Database } from 'better-sqlite3';
import type { SnapshotStream } from '../../core/backend.js';
import { snapshotParts } from './snapshot-format.js';

/** Chunks of this size are handed to the HTTP response, so the socket applies backpressure. */
const CHUNK_BYTES = 64 * 1024;

/**
 * Copy the database as it is now, in one synchronous step: no write can land in
 * the middle, so every key, lease and history row is at `revision`. `db.serialize()`
 * is chosen over `db.backup()` because a backup through the same connection folds
 * in later writes, including ones not yet durable; the copy costs memory and a
 * short pause of the event loop proportional to the store's size. The caller
 * hands the stream out only once `revision` is durable.
 */
export function takeSnapshot(db: Database, revision: number): SnapshotStream {
  const parts = snapshotParts(revision, db.serialize());
  const size = parts.reduce((total, part) => total + part.length, 0);
  async function* chunks(): AsyncGenerator<Uint8Array> {
    for (const part of parts) {
      for (let offset = 0; offset < part.length; offset += CHUNK_BYTES) {
        yield part.subarray(offset, offset + CHUNK_BYTES);
      }
    }
  }
  return { revision, size, chunks: chunks() };
}
