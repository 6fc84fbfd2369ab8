import { randomBytes } from 'node:crypto';
import { mkdirSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import type { Database as Db } from 'better-sqlite3';
import type {
  Backend,
  DeleteRequest,
  DeleteResult,
  KeyValue,
  LeaseGrant,
  LeaseId,
  LeaseInfo,
  PutOptions,
  PutResult,
  RangeRequest,
  RangeResult,
  SnapshotStream,
  TxnOpResult,
  TxnRequest,
  TxnResult,
  Watch,
  WatchEvent,
  WatchOptions,
} from '../../core/backend.js';
import { backendArguments } from '../../core/backend.js';
import type { Clock } from '../../core/clock.js';
import { systemClock } from '../../core/clock.js';
import {
  BackendClosedError,
  BackendUnavailableError,
  FutureRevisionError,
  LeaseNotFoundError,
} from '../../core/errors.js';
import { compactHistory } from './compaction.js';
import { GroupCommit } from './group-commit.js';
import { readHistory, readRange } from './history-reads.js';
import { checkDistinctWrites, compare, deleteKeys, putKey } from './key-writes.js';
import { createSchema } from './schema.js';
import { lockDataDir } from './data-dir-lock.js';
import type { DatabaseCopy } from './snapshot.js';
import { LiveLeases } from './live-leases.js';
import { openSnapshotFile, removeCopy, SNAPSHOT_TEMP_FILE, SnapshotCopier, takeMemorySnapshot } from './snapshot.js';
import { StagedBatch } from './staged-batch.js';
import type { Statements } from './statements.js';
import { WalSync } from './wal-sync.js';
import { prepareStatements } from './statements.js';
import { WatchHub } from './sqlite-watch.js';

export interface SqliteBackendOptions {
  /** A folder for `muster.db`, or ":memory:" for a throwaway store. */
  readonly dataDir: string;
  /** @default systemClock */
  readonly clock?: Clock;
  /** Lease ids come from here (8 random bytes by default). */
  readonly randomBytes?: (size: number) => Uint8Array;
}

/**
 * The embedded backend: one SQLite file (WAL) in the data folder, written by one
 * process. Writes are group-committed, and a batch is acknowledged only once an
 * fdatasync of the WAL that started after its commit has returned (see
 * group-commit.ts): as durable as `synchronous = FULL`, without blocking the
 * event loop on the disk. Reads are served from the same connection between
 * batches, so every read sees every write that has been acknowledged; a read that
 * saw a write not yet durable is answered only once it is, and watches are fed
 * only durable revisions, so nothing a crash could undo is ever shown.
 */
export class SqliteBackend implements Backend {
  readonly kind = 'sqlite';

  private readonly db: Db;
  private readonly clock: Clock;
  private readonly random: (size: number) => Uint8Array;
  private readonly writer: GroupCommit;
  private readonly hub: WatchHub;
  private readonly stmt: Statements;

  /** Committed state. */
  private currentRevision: number;
  /** The highest revision known to be on disk (equal to currentRevision in memory mode). */
  private durableRevision: number;
  /** Events committed but not yet durable, in order. */
  private undurableEvents: WatchEvent[] = [];
  /** The WAL file, for fdatasync (file mode only). */
  private readonly walPath: string | null;
  private readonly wal: WalSync | null;
  /** Holds the data folder against a second server (file mode only). */
  private readonly dataDirLock: Db | null;
  /** Snapshot copies made off the event loop (file mode only). */
  private readonly snapshots: SnapshotCopier | null;
  private compactRevision: number;
  private readonly leases: LiveLeases;

  /** What the batch being written has staged; applied on commit, dropped on rollback. */
  private readonly staged: StagedBatch;

  private closed = false;
  /** Set when the disk refused a sync: the store answers nothing more. */
  private failed: Error | null = null;
  /** Snapshot copies reading the database now (the connection is in the normal locking mode meanwhile). */
  private sharing = 0;

  static open(options: SqliteBackendOptions): SqliteBackend {
    return new SqliteBackend(options);
  }

  private constructor(options: SqliteBackendOptions) {
    this.clock = options.clock ?? systemClock;
    this.random = options.randomBytes ?? ((size) => randomBytes(size));
    const inMemory = options.dataDir === ':memory:';
    if (!inMemory) mkdirSync(options.dataDir, { recursive: true });
    // One muster server per data folder: a second one fails here, before it
    // touches the database (see data-dir-lock.ts).
    this.dataDirLock = inMemory ? null : lockDataDir(options.dataDir);
    const file = inMemory ? ':memory:' : join(options.dataDir, 'muster.db');
    this.walPath = inMemory ? null : `${file}-wal`;
    const wal = this.walPath === null ? null : new WalSync(this.walPath, options.dataDir);
    this.wal = wal;
    this.snapshots = inMemory ? null : new SnapshotCopier(file, options.dataDir);
    try {
      this.db = new Database(file);
    } catch (error) {
      this.dataDirLock?.close();
      throw error;
    }
    try {
      if (!inMemory) {
        // Copies a crash left behind (this server holds the folder now).
        for (const name of readdirSync(options.dataDir)) {
          if (SNAPSHOT_TEMP_FILE.test(name)) rmSync(join(options.dataDir, name), { force: true });
        }
        // WAL, entered in the normal locking mode so that its index lives in the
        // shared-memory file (-shm): the connection can then leave exclusive
        // locking while a snapshot's read-only connection reads (see
        // shareDatabase), which an index in heap memory would not allow.
        this.db.pragma('journal_mode = WAL');
        // The commit writes the WAL without waiting for the disk; the group commit's
        // sync hook (an fdatasync of the WAL off the event loop) makes it durable
        // before anyone is answered. Checkpoints sync the WAL and the database
        // file themselves at this level.
        this.db.pragma('synchronous = NORMAL');
        // A checkpoint copies each page once however often the WAL holds it: a
        // longer WAL (about 16 MiB) means fewer, cheaper checkpoints for a hot set
        // of keys; journal_size_limit cuts the file back to 64 MiB after one.
        this.db.pragma('wal_autocheckpoint = 4000');
        this.db.pragma('journal_size_limit = 67108864');
      }
      // Savepoints (one per write in a batch) keep their journal in memory, and
      // the page cache holds a working set of 64 MiB.
      this.db.pragma('temp_store = MEMORY');
      this.db.pragma('cache_size = -65536');
      createSchema(this.db);
      // Outside snapshots the connection keeps its locks (no locking system call
      // per read: a point read costs a third of what it does in the normal
      // mode). The data folder's lock file, not this, keeps a second server out.
      if (!inMemory) this.db.pragma('locking_mode = EXCLUSIVE');
    } catch (error) {
      this.db.close();
      this.dataDirLock?.close();
      if (error instanceof Error && /locked|busy/i.test(error.message)) {
        throw new BackendUnavailableError(
          `the data folder ${options.dataDir} is in use by another muster server (${error.message})`,
          { cause: error },
        );
      }
      throw error;
    }
    this.stmt = prepareStatements(this.db);
    this.currentRevision = this.readMeta('revision');
    this.compactRevision = this.readMeta('compact_revision');
    this.durableRevision = this.currentRevision;
    this.staged = new StagedBatch(this.currentRevision, this.compactRevision);

    // After a restart every lease has its full TTL again.
    this.leases = new LiveLeases(this.clock, (ids) => this.expireLeases(ids));
    this.leases.apply(this.stmt.allLeases.all() as { id: string; ttl: number }[]);

    this.hub = new WatchHub({
      currentRevision: () => this.durableRevision,
      oldestRevision: () => this.oldestAvailable(),
      readHistory: (filter, from, to, max, prevKv) => readHistory(this.stmt, filter, from, to, max, prevKv),
    });

    const commit = this.db.transaction((body: () => void) => {
      body();
      if (this.staged.revision !== this.currentRevision) this.stmt.setMeta.run('revision', this.staged.revision);
      if (this.staged.compactRevision !== this.compactRevision) {
        this.stmt.setMeta.run('compact_revision', this.staged.compactRevision);
      }
    });
    // Nested inside `commit`, better-sqlite3 runs this as a savepoint: an item
    // that throws rolls back alone.
    const item = this.db.transaction((apply: () => unknown) => apply());
    this.writer = new GroupCommit({
      transaction: (body) => commit(body),
      // The savepoint and the staged memory state roll back together.
      item: <T>(apply: () => T): T => this.staged.atomically(() => item(apply) as T),
      afterCommit: () => this.applyStaged(),
      afterRollback: () => this.dropStaged(),
      mark: () => this.currentRevision,
      afterDurable: (upTo) => this.publishDurable(upTo),
      ...(wal === null ? {} : { sync: () => wal.sync() }),
      syncFailed: (error) => {
        // What was committed may not be on disk: refuse everything from now on
        // rather than answer from a state a restart could contradict.
        const failure = new BackendUnavailableError(
          `the store could not make writes durable (fdatasync of ${this.walPath} failed: ${
            error instanceof Error ? error.message : String(error)
          }); restart the server`,
          { cause: error },
        );
        this.failed = failure;
        this.hub.closeAll(failure);
        return failure;
      },
    });
  }

  // ---- reads ---------------------------------------------------------------

  revision(): Promise<number> {
    return this.read(() => this.currentRevision);
  }

  get(key: string, options: { revision?: number } = {}): Promise<KeyValue | null> {
    return this.read(
      () =>
        readRange(this.stmt, { key, revision: options.revision }, this.currentRevision, this.compactRevision).kvs[0] ??
        null,
    );
  }

  range(request: RangeRequest): Promise<RangeResult> {
    return this.read(() => readRange(this.stmt, request, this.currentRevision, this.compactRevision));
  }

  oldestRevision(): Promise<number> {
    return this.read(() => this.oldestAvailable());
  }

  // ---- writes --------------------------------------------------------------

  put(key: string, value: Uint8Array, options: PutOptions = {}): Promise<PutResult> {
    return this.write(() => {
      const revision = this.staged.revision + 1;
      const prevKv = putKey(this.stmt, this.staged, this.checkLease, key, value, options.lease ?? null, revision, 0);
      this.staged.revision = revision;
      return { revision, prevKv };
    });
  }

  delete(request: DeleteRequest): Promise<DeleteResult> {
    return this.write(() => {
      const revision = this.staged.revision + 1;
      const prevKvs = deleteKeys(this.stmt, this.staged, request.key, request.prefix ?? false, revision, 0);
      if (prevKvs.length > 0) this.staged.revision = revision;
      return { revision: this.staged.revision, deleted: prevKvs.length, prevKvs };
    });
  }

  txn(request: TxnRequest): Promise<TxnResult> {
    try {
      checkDistinctWrites(request.success);
      checkDistinctWrites(request.failure);
    } catch (error) {
      return Promise.reject(error);
    }
    return this.write(() => {
      const succeeded = request.compare.every((c) => compare(this.stmt, c));
      const ops = succeeded ? request.success : request.failure;
      const revision = this.staged.revision + 1;
      let sub = 0;
      let wrote = false;
      const results: TxnOpResult[] = [];
      for (const op of ops) {
        if (op.type === 'put') {
          const prevKv = putKey(
            this.stmt,
            this.staged,
            this.checkLease,
            op.key,
            op.value,
            op.lease ?? null,
            revision,
            sub++,
          );
          wrote = true;
          results.push({ type: 'put', revision, prevKv });
        } else if (op.type === 'delete') {
          const prevKvs = deleteKeys(this.stmt, this.staged, op.key, op.prefix ?? false, revision, sub);
          sub += prevKvs.length;
          if (prevKvs.length > 0) wrote = true;
          results.push({ type: 'delete', revision, deleted: prevKvs.length, prevKvs });
        } else {
          // A get inside a txn sees the txn's own earlier writes, as in etcd.
          results.push({
            type: 'get',
            ...readRange(this.stmt, op, wrote ? revision : this.staged.revision, this.compactRevision),
          });
        }
      }
      if (wrote) this.staged.revision = revision;
      const final = this.staged.revision;
      return {
        succeeded,
        revision: final,
        results: results.map((r) => ({ ...r, revision: final })),
      };
    });
  }

  // ---- leases --------------------------------------------------------------

  grantLease(ttl: number): Promise<LeaseGrant> {
    return this.write(() => {
      backendArguments.leaseTtl(ttl);
      let id: string;
      do id = this.newLeaseId();
      while (this.leases.has(id) || this.stmt.getLease.get(id));
      this.stmt.insertLease.run(id, ttl);
      this.staged.leases.push({ id, ttl });
      return { id, ttl };
    });
  }

  keepAlive(id: LeaseId): Promise<LeaseGrant> {
    return this.read(() => {
      return { id, ttl: this.leases.renew(id) };
    });
  }

  revokeLease(id: LeaseId): Promise<void> {
    return this.write(() => {
      if (!this.stmt.getLease.get(id)) throw new LeaseNotFoundError(id);
      this.endLease(id);
    });
  }

  leaseInfo(id: LeaseId): Promise<LeaseInfo> {
    return this.read(() => {
      const lease = this.leases.live(id);
      const keys = (this.stmt.keysOfLease.all(id) as { key: string }[]).map((r) => r.key);
      const ttl = Math.max(0, Math.ceil((lease.expiresAt - this.clock.now()) / 1000));
      return { id, ttl, grantedTtl: lease.ttl, keys };
    });
  }

  listLeases(): Promise<LeaseId[]> {
    return this.read(() => this.leases.liveIds());
  }

  // ---- watch and compaction ------------------------------------------------

  watch(key: string, options?: WatchOptions): Watch {
    if (this.failed) throw this.failed;
    if (this.closed) throw new BackendClosedError();
    return this.hub.open(key, options);
  }

  /** How many watches are open (for metrics). */
  get openWatches(): number {
    return this.hub.size;
  }

  compact(revision: number): Promise<void> {
    return this.write(() => {
      backendArguments.compactRevision(revision);
      if (revision > this.staged.revision) throw new FutureRevisionError(revision, this.staged.revision);
      if (revision <= this.staged.compactRevision) return;
      compactHistory(this.stmt, this.staged.compactRevision, revision);
      this.staged.compactRevision = revision;
    });
  }

  /**
   * A copy of the store at one committed revision, handed out once that revision
   * is durable (a crash cannot undo anything in it). On a data folder the copy is
   * made by a worker thread (snapshot.ts) while the event loop goes on serving
   * reads and writes, and streamed from a temp file; in memory, by
   * `db.serialize()`, which pauses the event loop for the copy.
   */
  snapshot(): Promise<SnapshotStream> {
    if (this.snapshots === null) return this.read(() => takeMemorySnapshot(this.db, this.currentRevision));
    if (this.failed) return Promise.reject(this.failed);
    if (this.closed) return Promise.reject(new BackendClosedError());
    return this.fileSnapshot(this.snapshots);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    // Closed first: no lease expiry is queued behind the last batch.
    this.closed = true;
    this.leases.close();
    this.writer.flush();
    // Callers of the last batches are answered (or told of a failed sync) first.
    while (this.writer.pending && !this.failed) await this.writer.durable().catch(() => undefined);
    this.hub.closeAll(new BackendClosedError());
    await this.snapshots?.close();
    this.wal?.close();
    this.db.close();
    this.dataDirLock?.close();
  }

  // ---- internals -----------------------------------------------------------

  /**
   * A read sees every committed write; if some of them are not durable yet, the
   * answer waits until they are (a crash could otherwise undo what it showed).
   */
  private read<T>(body: () => T): Promise<T> {
    if (this.failed) return Promise.reject(this.failed);
    if (this.closed) return Promise.reject(new BackendClosedError());
    let result: T;
    try {
      result = body();
    } catch (error) {
      // A refusal can come from a write not yet durable (a revoked lease) too.
      if (!this.writer.pending) return Promise.reject(error);
      return this.writer.durable().then(() => Promise.reject(error));
    }
    if (!this.writer.pending) return Promise.resolve(result);
    return this.writer.durable().then(() => result);
  }

  private async fileSnapshot(snapshots: SnapshotCopier): Promise<SnapshotStream> {
    this.shareDatabase(+1);
    let copy: DatabaseCopy;
    try {
      copy = await snapshots.copy();
    } finally {
      this.shareDatabase(-1);
    }
    try {
      await this.durableThrough(copy.revision);
      return await openSnapshotFile(copy.path, copy.revision);
    } finally {
      // Open or not, the path goes now: an open stream reads through its descriptor.
      await removeCopy(copy.path);
    }
  }

  /**
   * While a copy runs (`delta` +1 when one starts, -1 when its worker has exited)
   * the connection is in the normal locking mode, so the worker's read-only
   * connection can read; once none runs, it goes back to exclusive locking. The
   * locks are given up when the connection next ends a read, so a read follows
   * the change (the exclusive ones are taken again by the next read and write).
   * In WAL mode readers and the writer do not block each other, and checkpoints
   * respect the worker's read: only the locks differ.
   */
  private shareDatabase(delta: 1 | -1): void {
    this.sharing += delta;
    // The store closed meanwhile (its close ends the copies).
    if (!this.db.open) return;
    if (delta === 1 && this.sharing === 1) this.db.pragma('locking_mode = NORMAL');
    else if (delta === -1 && this.sharing === 0) this.db.pragma('locking_mode = EXCLUSIVE');
    else return;
    this.stmt.getMeta.get('revision');
  }

  /**
   * Resolves once `revision` (committed: a copy saw it) is durable; rejects with
   * the store's error if it failed meanwhile.
   */
  private async durableThrough(revision: number): Promise<void> {
    while (this.durableRevision < revision) {
      if (this.failed) throw this.failed;
      if (!this.writer.pending) {
        throw new Error(`the snapshot copy is at revision ${revision}, beyond the store's ${this.currentRevision}`);
      }
      await this.writer.durable();
    }
    if (this.failed) throw this.failed;
  }

  private write<T>(body: () => T): Promise<T> {
    if (this.failed) return Promise.reject(this.failed);
    if (this.closed) return Promise.reject(new BackendClosedError());
    return this.writer.submit(body);
  }

  /** Revisions up to `upTo` are durable: watches may see them now. */
  private publishDurable(upTo: number): void {
    if (upTo <= this.durableRevision) return;
    const first = this.durableRevision + 1;
    let count = 0;
    while (count < this.undurableEvents.length && (this.undurableEvents[count]?.revision ?? Infinity) <= upTo) count++;
    const events = count === this.undurableEvents.length ? this.undurableEvents : this.undurableEvents.slice(0, count);
    this.undurableEvents = count === this.undurableEvents.length ? [] : this.undurableEvents.slice(count);
    this.durableRevision = upTo;
    if (!this.closed) this.hub.publish(events, first, upTo);
  }

  private readMeta(name: string): number {
    const row = this.stmt.getMeta.get(name) as { value: number } | undefined;
    return row?.value ?? 0;
  }

  private oldestAvailable(): number {
    return Math.max(1, this.compactRevision);
  }

  private newLeaseId(): string {
    const bytes = Buffer.from(this.random(8));
    bytes[0] = (bytes[0] ?? 0) & 0x7f; // positive int64, as etcd's are
    const id = BigInt('0x' + bytes.toString('hex')).toString(16);
    return id === '0' ? '1' : id;
  }

  /** Inside a write: may a key be bound to this lease now? */
  private readonly checkLease = (id: LeaseId): void => {
    const grantedInThisBatch = this.staged.granted(id);
    const endedInThisBatch = this.staged.ended(id);
    if (endedInThisBatch || (!grantedInThisBatch && !this.leases.isLive(id))) {
      throw new LeaseNotFoundError(id);
    }
  };

  /** Ends a lease inside a write: deletes its keys (one revision) and the lease. */
  private endLease(id: LeaseId): void {
    const keys = this.stmt.keysOfLease.all(id) as { key: string }[];
    if (keys.length > 0) {
      const revision = this.staged.revision + 1;
      let sub = 0;
      for (const { key } of keys) sub += deleteKeys(this.stmt, this.staged, key, false, revision, sub).length;
      this.staged.revision = revision;
    }
    this.stmt.deleteLease.run(id);
    this.staged.leases.push({ id, ttl: null });
  }

  // ---- batch bookkeeping ---------------------------------------------------

  private applyStaged(): void {
    const first = this.currentRevision + 1;
    this.currentRevision = this.staged.revision;
    this.compactRevision = this.staged.compactRevision;
    const leaseChanges = this.staged.leases;
    if (this.currentRevision >= first) {
      if (this.undurableEvents.length === 0) this.undurableEvents = this.staged.events;
      else for (const event of this.staged.events) this.undurableEvents.push(event);
    }
    this.staged.reset(this.currentRevision, this.compactRevision);
    this.leases.apply(leaseChanges);
  }

  private dropStaged(): void {
    this.staged.reset(this.currentRevision, this.compactRevision);
  }

  /** Each expired lease is ended by a write of its own (its keys vanish at one revision). */
  private expireLeases(ids: readonly LeaseId[]): void {
    for (const id of ids) {
      this.write(() => {
        if (this.stmt.getLease.get(id)) this.endLease(id);
      })
        .catch(() => undefined)
        .finally(() => this.leases.expired(id));
    }
  }
}
