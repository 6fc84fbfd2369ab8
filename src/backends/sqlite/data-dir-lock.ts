import { join } from 'node:path';
import Database from 'better-sqlite3';
import type { Database as Db } from 'better-sqlite3';
import { BackendUnavailableError } from '../../core/errors.js';

/** The lock file's name in the data folder. */
export const DATA_DIR_LOCK_FILE = 'muster.lock';

/**
 * One muster server per data folder: a second one must fail at start instead of
 * forking the revision history. The store's database cannot carry that lock
 * itself (SQLite's `locking_mode = EXCLUSIVE` would also shut out the read-only
 * connection a snapshot copies from), so it is held on a small SQLite file of
 * its own, `muster.lock`: a connection in exclusive locking mode keeps the
 * EXCLUSIVE lock it took for as long as it is open, and the operating system
 * drops it when the process dies. SQLite sees the lock from other processes and
 * from other connections in this one alike. Like the database, it waits up to
 * 5 s for a server that is stopping.
 *
 * Returns the connection holding the lock: close it to release the folder.
 */
export function lockDataDir(dataDir: string): Db {
  const lock = new Database(join(dataDir, DATA_DIR_LOCK_FILE));
  try {
    lock.pragma('locking_mode = EXCLUSIVE');
    // Nothing is ever written but the first page: no journal file beside it.
    lock.pragma('journal_mode = MEMORY');
    lock.exec('BEGIN EXCLUSIVE; COMMIT');
  } catch (error) {
    lock.close();
    if (error instanceof Error && /locked|busy/i.test(error.message)) {
      throw new BackendUnavailableError(
        `the data folder ${dataDir} is in use by another muster server (${error.message})`,
        { cause: error },
      );
    }
    throw error;
  }
  return lock;
}
