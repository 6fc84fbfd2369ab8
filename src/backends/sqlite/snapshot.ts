import { createHash, randomBytes } from 'node:crypto';
import type { FileHandle } from 'node:fs/promises';
import { open, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import type { Database } from 'better-sqlite3';
import type { SnapshotStream } from '../../core/backend.js';
import { BackendClosedError } from '../../core/errors.js';
import {
  encodeSnapshotHeader,
  SNAPSHOT_HEADER_BYTES,
  SNAPSHOT_TRAILER_BYTES,
  snapshotParts,
} from './snapshot-format.js';

/** Chunks of this size are handed to the HTTP response, so the socket applies backpressure. */
const CHUNK_BYTES = 64 * 1024;

/** The copies a worker writes into the data folder; a store that opens removes any left by a crash. */
export const SNAPSHOT_TEMP_FILE = /^snapshot-[0-9a-f]{16}\.tmp(-journal)?$/;

/**
 * The in-memory store (`--data-dir :memory:`) has no file another connection
 * could read, so it is copied in one synchronous step: `db.serialize()` on the
 * store's own connection. No write can land in the middle, so every key, lease
 * and history row is at `revision`; the copy costs memory for one image of the
 * store and pauses the event loop for as long as it takes (an in-memory store is
 * a throwaway one, and small). The caller hands the stream out only once
 * `revision` is durable.
 */
export function takeMemorySnapshot(db: Database, revision: number): SnapshotStream {
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

/** A copy of the database in a temp file, and the revision it holds. */
export interface DatabaseCopy {
  readonly path: string;
  readonly revision: number;
}

/**
 * The worker, as CommonJS source run with `eval: true`: it needs no file of its
 * own, so it runs the same from dist/ and from the TypeScript sources under
 * vitest. It opens its own read-only connection (the store is in WAL mode, so a
 * reader neither waits for the writer nor blocks it), and `VACUUM INTO` copies
 * the database inside one read transaction: the copy is the store at one
 * committed revision, whatever is written meanwhile. The revision is then read
 * from the copy's `meta` table, as the store reads it on open.
 */
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const Database = require(workerData.sqlite);
let source;
let copy;
try {
  source = new Database(workerData.database, { readonly: true, fileMustExist: true });
  source.prepare('VACUUM INTO ?').run(workerData.target);
  source.close();
  source = undefined;
  copy = new Database(workerData.target, { readonly: true, fileMustExist: true });
  const row = copy.prepare("SELECT value FROM meta WHERE name = 'revision'").get();
  copy.close();
  copy = undefined;
  parentPort.postMessage({ ok: true, revision: row ? Number(row.value) : 0 });
} catch (error) {
  try { if (source) source.close(); } catch {}
  try { if (copy) copy.close(); } catch {}
  parentPort.postMessage({ ok: false, message: error && error.message ? String(error.message) : String(error) });
}
`;

type WorkerAnswer = { ok: true; revision: number } | { ok: false; message: string };

/**
 * Copies of a file store, each made by a worker thread off the event loop. The
 * store's own connection and the event loop go on serving reads and writes
 * while a copy is made.
 */
export class SnapshotCopier {
  private readonly running = new Set<Worker>();
  private closed = false;
  private readonly sqlite = createRequire(import.meta.url).resolve('better-sqlite3');

  constructor(
    /** The store's database file. */
    private readonly database: string,
    /** Where the temp copies go (the data folder: the same disk, and swept on open). */
    private readonly dataDir: string,
  ) {}

  /**
   * Resolves once the copy is complete and its worker has exited, with the temp
   * file (the caller removes it) and its revision. On any failure the temp file
   * is removed before the promise rejects.
   */
  copy(): Promise<DatabaseCopy> {
    if (this.closed) return Promise.reject(new BackendClosedError());
    const target = join(this.dataDir, `snapshot-${randomBytes(8).toString('hex')}.tmp`);
    return new Promise<DatabaseCopy>((resolve, reject) => {
      const worker = new Worker(WORKER_SOURCE, {
        eval: true,
        workerData: { sqlite: this.sqlite, database: this.database, target },
      });
      this.running.add(worker);
      let answer: WorkerAnswer | undefined;
      let failure: Error | undefined;
      worker.on('message', (message: WorkerAnswer) => (answer = message));
      worker.on('error', (error) => (failure ??= error));
      // Settled on exit only: by then the worker's connections are closed and
      // nothing writes to the temp file any more.
      worker.on('exit', (code) => {
        this.running.delete(worker);
        if (answer?.ok && !this.closed) {
          resolve({ path: target, revision: answer.revision });
          return;
        }
        const error = this.closed
          ? new BackendClosedError()
          : answer && !answer.ok
            ? new Error(`the snapshot copy failed: ${answer.message}`)
            : (failure ?? new Error(`the snapshot worker exited with code ${code} before copying`));
        removeCopy(target).then(
          () => reject(error),
          () => reject(error),
        );
      });
    });
  }

  /** Stops the copies under way (each rejects with BackendClosedError) and waits for their workers to exit. */
  async close(): Promise<void> {
    this.closed = true;
    // A worker inside VACUUM stops once that statement returns.
    await Promise.allSettled([...this.running].map((worker) => worker.terminate()));
  }
}

/** Removes a temp copy (and a journal SQLite may have left beside it). */
export async function removeCopy(path: string): Promise<void> {
  await Promise.all([rm(path, { force: true }), rm(`${path}-journal`, { force: true })]);
}

/**
 * Opens a copy made by SnapshotCopier for streaming. The caller removes the temp
 * file as soon as this resolves: the open descriptor keeps its bytes readable
 * (POSIX), so no path is left in the data folder whatever becomes of the stream,
 * and the descriptor is closed when the stream ends, fails or is abandoned
 * (`return()`, which Readable.from calls when the response is destroyed).
 */
export async function openSnapshotFile(path: string, revision: number): Promise<SnapshotStream> {
  const handle = await open(path, 'r');
  try {
    const { size } = await handle.stat();
    const chunks = new SnapshotFileChunks(handle, revision, size);
    return { revision, size: SNAPSHOT_HEADER_BYTES + size + SNAPSHOT_TRAILER_BYTES, chunks };
  } catch (error) {
    await handle.close();
    throw error;
  }
}

/**
 * Header, the database read from the file in chunks, and the SHA-256 of both,
 * computed as they go by: the file is never in memory whole.
 */
class SnapshotFileChunks implements AsyncIterableIterator<Uint8Array> {
  private phase: 'header' | 'body' | 'trailer' | 'done' = 'header';
  private offset = 0;
  private readonly hash = createHash('sha256');
  private handle: FileHandle | null;

  constructor(
    handle: FileHandle,
    private readonly revision: number,
    private readonly length: number,
  ) {
    this.handle = handle;
  }

  [Symbol.asyncIterator](): AsyncIterableIterator<Uint8Array> {
    return this;
  }

  async next(): Promise<IteratorResult<Uint8Array>> {
    try {
      switch (this.phase) {
        case 'header': {
          const header = encodeSnapshotHeader(this.revision, this.length);
          this.hash.update(header);
          this.phase = this.length > 0 ? 'body' : 'trailer';
          return { value: header, done: false };
        }
        case 'body': {
          const handle = this.handle;
          if (!handle) return this.finished();
          const buffer = Buffer.allocUnsafe(Math.min(CHUNK_BYTES, this.length - this.offset));
          const { bytesRead } = await handle.read(buffer, 0, buffer.length, this.offset);
          // return() may have run meanwhile.
          if (this.phase !== 'body') return this.finished();
          if (bytesRead === 0) {
            throw new Error(`the snapshot copy ended at ${this.offset} of ${this.length} bytes`);
          }
          const chunk = buffer.subarray(0, bytesRead);
          this.hash.update(chunk);
          this.offset += bytesRead;
          if (this.offset >= this.length) this.phase = 'trailer';
          return { value: chunk, done: false };
        }
        case 'trailer': {
          this.phase = 'done';
          await this.release();
          return { value: this.hash.digest(), done: false };
        }
        case 'done':
          return this.finished();
      }
    } catch (error) {
      this.phase = 'done';
      await this.release();
      throw error;
    }
  }

  async return(): Promise<IteratorResult<Uint8Array>> {
    this.phase = 'done';
    await this.release();
    return this.finished();
  }

  private finished(): IteratorResult<Uint8Array> {
    return { value: undefined, done: true };
  }

  private async release(): Promise<void> {
    const handle = this.handle;
    this.handle = null;
    // FileHandle.close waits for a read in flight.
    if (handle) await handle.close();
  }
}
