import {
  closeSync,
  existsSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  writeSync,
} from 'node:fs';
import { join } from 'node:path';
import { InvalidSnapshotError } from '../../core/errors.js';
import { decodeSnapshot } from './snapshot-format.js';
import { SqliteBackend } from './sqlite-backend.js';

export interface RestoreSnapshotOptions {
  /** The snapshot file written by `muster snapshot save`. */
  readonly file: string;
  /** The data folder to restore into (the server's --data-dir). */
  readonly dataDir: string;
  /**
   * Replace an existing store in `dataDir`. The server must be stopped: an
   * in-use store (its database file locked) is refused even then.
   * @default false
   */
  readonly force?: boolean;
}

const DB_FILES = ['muster.db', 'muster.db-wal', 'muster.db-shm'];

/**
 * Restore a snapshot offline into `dataDir`: check header, length and checksum
 * before writing anything, write the database to a temp file, fsync, rename it
 * into place, then open it once with the SQLite backend to check its revision.
 * Resolves to the revision restored.
 */
export async function restoreSnapshot(options: RestoreSnapshotOptions): Promise<number> {
  const { revision, database } = decodeSnapshot(readFileSync(options.file));
  const present = existsSync(options.dataDir) ? readdirSync(options.dataDir) : [];
  if (present.length > 0 && options.force !== true) {
    throw new InvalidSnapshotError(
      `${options.dataDir} is not empty (${present.slice(0, 3).join(', ')}${present.length > 3 ? ', ...' : ''}); ` +
        'stop the server and pass --force to replace its store',
    );
  }
  mkdirSync(options.dataDir, { recursive: true });
  const target = join(options.dataDir, 'muster.db');
  if (present.includes('muster.db')) await refuseIfInUse(options.dataDir);
  const temp = `${target}.restore-${process.pid}`;
  try {
    const fd = openSync(temp, 'w');
    try {
      writeSync(fd, database);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    // The old WAL belongs to the old database: it must not be replayed over the new one.
    for (const name of DB_FILES.slice(1)) rmSync(join(options.dataDir, name), { force: true });
    renameSync(temp, target);
  } finally {
    rmSync(temp, { force: true });
  }
  const dirFd = openSync(options.dataDir, 'r');
  try {
    fsyncSync(dirFd);
  } finally {
    closeSync(dirFd);
  }
  const backend = SqliteBackend.open({ dataDir: options.dataDir });
  try {
    const opened = await backend.revision();
    if (opened !== revision) {
      throw new InvalidSnapshotError(`the restored store is at revision ${opened}, the snapshot says ${revision}`);
    }
  } finally {
    await backend.close();
  }
  return revision;
}

/** A running server holds its database with an exclusive lock; opening it then fails. */
async function refuseIfInUse(dataDir: string): Promise<void> {
  let backend: SqliteBackend;
  try {
    backend = SqliteBackend.open({ dataDir });
  } catch (error) {
    throw new InvalidSnapshotError(`the store in ${dataDir} is in use or unreadable; stop the server first`, {
      cause: error,
    });
  }
  await backend.close();
}
