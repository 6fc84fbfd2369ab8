import { randomBytes } from 'node:crypto';
import { closeSync, fdatasync, fsyncSync, mkdirSync, openSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import type { Database as Db, Statement } from 'better-sqlite3';
import type {
  Backend,
  Compare,
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
  TxnOp,
  TxnOpResult,
  TxnRequest,
  TxnResult,
  Watch,
  WatchEvent,
  WatchOptions,
} from '../../core/backend.js';
import { backendArguments } from '../../core/backend.js';
import type { Clock, TimerHandle } from '../../core/clock.js';
import { systemClock } from '../../core/clock.js';
import {
  BackendClosedError,
  BackendUnavailableError,
  CompactedError,
  FutureRevisionError,
  InvalidArgumentError,
  LeaseNotFoundError,
} from '../../core/errors.js';
import { prefixEnd } from '../../core/key-path.js';
import { GroupCommit } from './group-commit.js';
import { createSchema } from './schema.js';
import { takeSnapshot } from './snapshot.js';
import type { KeyFilter } from './sqlite-watch.js';
import { WatchHub } from './sqlite-watch.js';

export interface SqliteBackendOptions {
  /** A folder for `muster.db`, or ":memory:" for a throwaway store. */
  readonly dataDir: string;
  /** Revisions of history kept for watch and range-at-revision. @default 100000 */
  readonly retention?: number;
  /** @default systemClock */
  readonly clock?: Clock;
  /** Lease ids come from here (8 random bytes by default). */
  readonly randomBytes?: (size: number) => Uint8Array;
}

interface KvRow {
  key: string;
  value: Buffer;
  create_revision: number;
  mod_revision: number;
  version: number;
  lease: string | null;
}

interface HistoryRow {
  revision: number;
  key: string;
  deleted: number;
  value: Buffer | null;
  create_revision: number;
  version: number;
  lease: string | null;
}

interface LiveLease {
  readonly ttl: number;
  expiresAt: number;
}

/**
 * Compaction deletes at most this many revisions of history per transaction: a
 * step rides along with a write batch, so it must stay short.
 */
const COMPACTION_STEP = 1_000;
const EMPTY = new Uint8Array(0);

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
  private readonly retention: number;
  private readonly writer: GroupCommit;
  private readonly hub: WatchHub;
  private readonly stmt: ReturnType<typeof prepareStatements>;

  /** Committed state. */
  private currentRevision: number;
  /** The highest revision known to be on disk (equal to currentRevision in memory mode). */
  private durableRevision: number;
  /** Events committed but not yet durable, in order. */
  private undurableEvents: WatchEvent[] = [];
  /** The WAL file, for fdatasync (file mode only). */
  private readonly walPath: string | null;
  private readonly dataDir: string;
  private walFd: number | null = null;
  private compactRevision: number;
  private readonly leases = new Map<LeaseId, LiveLease>();

  /** What the batch being written has staged; applied on commit, dropped on rollback. */
  private stagedRevision: number;
  private stagedEvents: WatchEvent[] = [];
  private stagedLeases: { id: LeaseId; ttl: number | null }[] = [];
  private stagedCompactRevision: number;

  private expiryTimer: TimerHandle | null = null;
  /** Leases past their expiry whose revoking write is queued. */
  private readonly expiring = new Set<LeaseId>();
  private expiryAt = Infinity;
  private compacting = false;
  private closed = false;
  /** Set when the disk refused a sync: the store answers nothing more. */
  private failed: Error | null = null;

  static open(options: SqliteBackendOptions): SqliteBackend {
    return new SqliteBackend(options);
  }

  private constructor(options: SqliteBackendOptions) {
    this.clock = options.clock ?? systemClock;
    this.random = options.randomBytes ?? ((size) => randomBytes(size));
    this.retention = Math.max(1, options.retention ?? 100_000);
    const inMemory = options.dataDir === ':memory:';
    if (!inMemory) mkdirSync(options.dataDir, { recursive: true });
    const file = inMemory ? ':memory:' : join(options.dataDir, 'muster.db');
    this.walPath = inMemory ? null : `${file}-wal`;
    this.dataDir = options.dataDir;
    this.db = new Database(file);
    try {
      if (!inMemory) {
        // One muster server per data folder: the exclusive lock makes a second
        // one fail at start instead of forking the revision history.
        this.db.pragma('locking_mode = EXCLUSIVE');
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
    } catch (error) {
      this.db.close();
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
    this.stagedRevision = this.currentRevision;
    this.stagedCompactRevision = this.compactRevision;

    const now = this.clock.now();
    for (const row of this.stmt.allLeases.all() as { id: string; ttl: number }[]) {
      this.leases.set(row.id, { ttl: row.ttl, expiresAt: now + row.ttl * 1000 });
    }
    this.scheduleExpiry();

    this.hub = new WatchHub({
      currentRevision: () => this.durableRevision,
      oldestRevision: () => this.oldestAvailable(),
      readHistory: (filter, from, to, max, prevKv) => this.readHistory(filter, from, to, max, prevKv),
    });

    const commit = this.db.transaction((body: () => void) => {
      body();
      if (this.stagedRevision !== this.currentRevision) this.stmt.setMeta.run('revision', this.stagedRevision);
      if (this.stagedCompactRevision !== this.compactRevision) {
        this.stmt.setMeta.run('compact_revision', this.stagedCompactRevision);
      }
    });
    // Nested inside `commit`, better-sqlite3 runs this as a savepoint: an item
    // that throws rolls back alone.
    const item = this.db.transaction((apply: () => unknown) => apply());
    this.writer = new GroupCommit({
      transaction: (body) => commit(body),
      item: <T>(apply: () => T): T => item(apply) as T,
      afterCommit: () => this.applyStaged(),
      afterRollback: () => this.dropStaged(),
      mark: () => this.currentRevision,
      afterDurable: (upTo) => this.publishDurable(upTo),
      ...(this.walPath === null ? {} : { sync: () => this.syncWal() }),
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
    return this.read(() => this.rangeNow({ key, revision: options.revision }).kvs[0] ?? null);
  }

  range(request: RangeRequest): Promise<RangeResult> {
    return this.read(() => this.rangeNow(request));
  }

  oldestRevision(): Promise<number> {
    return this.read(() => this.oldestAvailable());
  }

  // ---- writes --------------------------------------------------------------

  put(key: string, value: Uint8Array, options: PutOptions = {}): Promise<PutResult> {
    return this.write(() => {
      const revision = this.stagedRevision + 1;
      const prevKv = this.putKey(key, value, options.lease ?? null, revision, 0);
      this.stagedRevision = revision;
      return { revision, prevKv };
    });
  }

  delete(request: DeleteRequest): Promise<DeleteResult> {
    return this.write(() => {
      const revision = this.stagedRevision + 1;
      const prevKvs = this.deleteKeys(request.key, request.prefix ?? false, revision, 0);
      if (prevKvs.length > 0) this.stagedRevision = revision;
      return { revision: this.stagedRevision, deleted: prevKvs.length, prevKvs };
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
      const succeeded = request.compare.every((c) => this.compare(c));
      const ops = succeeded ? request.success : request.failure;
      const revision = this.stagedRevision + 1;
      let sub = 0;
      let wrote = false;
      const results: TxnOpResult[] = [];
      for (const op of ops) {
        if (op.type === 'put') {
          const prevKv = this.putKey(op.key, op.value, op.lease ?? null, revision, sub++);
          wrote = true;
          results.push({ type: 'put', revision, prevKv });
        } else if (op.type === 'delete') {
          const prevKvs = this.deleteKeys(op.key, op.prefix ?? false, revision, sub);
          sub += prevKvs.length;
          if (prevKvs.length > 0) wrote = true;
          results.push({ type: 'delete', revision, deleted: prevKvs.length, prevKvs });
        } else {
          // A get inside a txn sees the txn's own earlier writes, as in etcd.
          results.push({ type: 'get', ...this.rangeNow(op, wrote ? revision : this.stagedRevision) });
        }
      }
      if (wrote) this.stagedRevision = revision;
      const final = this.stagedRevision;
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
      this.stagedLeases.push({ id, ttl });
      return { id, ttl };
    });
  }

  keepAlive(id: LeaseId): Promise<LeaseGrant> {
    return this.read(() => {
      const lease = this.liveLease(id);
      lease.expiresAt = this.clock.now() + lease.ttl * 1000;
      return { id, ttl: lease.ttl };
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
      const lease = this.liveLease(id);
      const keys = (this.stmt.keysOfLease.all(id) as { key: string }[]).map((r) => r.key);
      const ttl = Math.max(0, Math.ceil((lease.expiresAt - this.clock.now()) / 1000));
      return { id, ttl, grantedTtl: lease.ttl, keys };
    });
  }

  listLeases(): Promise<LeaseId[]> {
    return this.read(() => {
      const now = this.clock.now();
      return [...this.leases].filter(([, l]) => l.expiresAt > now).map(([id]) => id);
    });
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
      if (revision > this.stagedRevision) throw new FutureRevisionError(revision, this.stagedRevision);
      if (revision <= this.stagedCompactRevision) return;
      const rows = this.stmt.compactable.all({ from: this.stagedCompactRevision, below: revision }) as {
        revision: number;
        sub: number;
      }[];
      for (const row of rows) this.stmt.deleteHistoryRow.run(row.revision, row.sub);
      this.stagedCompactRevision = revision;
    });
  }

  /** A copy of the store at the committed revision, handed out once that revision is durable. */
  snapshot(): Promise<SnapshotStream> {
    return this.read(() => takeSnapshot(this.db, this.currentRevision));
  }

  async close(): Promise<void> {
    if (this.closed) return;
    // Closed first, so that committing the last batch starts no compaction.
    this.closed = true;
    if (this.expiryTimer) this.clock.clearTimeout(this.expiryTimer);
    this.writer.flush();
    // Callers of the last batches are answered (or told of a failed sync) first.
    while (this.writer.pending && !this.failed) await this.writer.durable().catch(() => undefined);
    this.hub.closeAll(new BackendClosedError());
    if (this.walFd !== null) closeSync(this.walFd);
    this.walFd = null;
    this.db.close();
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

  private write<T>(body: () => T): Promise<T> {
    if (this.failed) return Promise.reject(this.failed);
    if (this.closed) return Promise.reject(new BackendClosedError());
    return this.writer.submit(body);
  }

  /** fdatasync the WAL on libuv's thread pool; the event loop goes on meanwhile. */
  private syncWal(): Promise<void> {
    const path = this.walPath;
    if (path === null) return Promise.resolve();
    try {
      // SQLite keeps one WAL file (the same inode, truncated and rewritten) for as
      // long as it holds the exclusive lock, so one descriptor serves every sync.
      if (this.walFd === null) {
        this.walFd = openSync(path, 'r+');
        // The WAL's directory entry must be durable too, once.
        const dir = openSync(this.dataDir, 'r');
        try {
          fsyncSync(dir);
        } finally {
          closeSync(dir);
        }
      }
    } catch (error) {
      return Promise.reject(error instanceof Error ? error : new Error(String(error)));
    }
    const fd = this.walFd;
    return new Promise((resolve, reject) => fdatasync(fd, (error) => (error ? reject(error) : resolve())));
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

  /** The lease if it is live (granted, not revoked, not past its expiry). */
  private liveLease(id: LeaseId): LiveLease {
    const lease = this.leases.get(id);
    if (!lease || lease.expiresAt <= this.clock.now()) throw new LeaseNotFoundError(id);
    return lease;
  }

  /** Inside a write: may a key be bound to this lease now? */
  private checkLeaseForPut(id: LeaseId): void {
    const live = this.leases.get(id);
    const grantedInThisBatch = this.stagedLeases.some((l) => l.id === id && l.ttl !== null);
    const endedInThisBatch = this.stagedLeases.some((l) => l.id === id && l.ttl === null);
    if (endedInThisBatch || (!grantedInThisBatch && (!live || live.expiresAt <= this.clock.now()))) {
      throw new LeaseNotFoundError(id);
    }
  }

  private putKey(
    key: string,
    value: Uint8Array,
    lease: LeaseId | null,
    revision: number,
    sub: number,
  ): KeyValue | null {
    if (lease !== null) this.checkLeaseForPut(lease);
    const prev = this.stmt.getKey.get(key) as KvRow | undefined;
    const createRevision = prev ? prev.create_revision : revision;
    const version = prev ? prev.version + 1 : 1;
    const buffer = Buffer.from(value.buffer, value.byteOffset, value.byteLength);
    this.stmt.upsertKey.run(key, buffer, createRevision, revision, version, lease);
    this.stmt.insertHistory.run(revision, sub, key, 0, buffer, createRevision, version, lease);
    const prevKv = prev ? rowToKv(prev) : null;
    this.stagedEvents.push({
      type: 'put',
      kv: { key, value: new Uint8Array(buffer), createRevision, modRevision: revision, version, lease },
      prevKv,
      revision,
    });
    return prevKv;
  }

  private deleteKeys(key: string, prefix: boolean, revision: number, firstSub: number): KeyValue[] {
    const rows = (prefix ? this.stmt.keysInRange.all(key, prefixEnd(key)) : this.stmt.getKey.all(key)) as KvRow[];
    let sub = firstSub;
    const prevKvs: KeyValue[] = [];
    for (const row of rows) {
      this.stmt.deleteKey.run(row.key);
      this.stmt.insertHistory.run(revision, sub++, row.key, 1, null, 0, 0, null);
      const prevKv = rowToKv(row);
      prevKvs.push(prevKv);
      this.stagedEvents.push({ type: 'delete', kv: tombstone(row.key, revision), prevKv, revision });
    }
    return prevKvs;
  }

  /** Ends a lease inside a write: deletes its keys (one revision) and the lease. */
  private endLease(id: LeaseId): void {
    const keys = this.stmt.keysOfLease.all(id) as { key: string }[];
    if (keys.length > 0) {
      const revision = this.stagedRevision + 1;
      let sub = 0;
      for (const { key } of keys) sub += this.deleteKeys(key, false, revision, sub).length;
      this.stagedRevision = revision;
    }
    this.stmt.deleteLease.run(id);
    this.stagedLeases.push({ id, ttl: null });
  }

  private compare(c: Compare): boolean {
    const row = this.stmt.getKey.get(c.key) as KvRow | undefined;
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

  /** Range as of `request.revision`, or as of `latest` (the state the caller sees). */
  private rangeNow(request: RangeRequest, latest = this.currentRevision): RangeResult {
    const at = request.revision && request.revision > 0 ? request.revision : 0;
    if (at > latest) throw new FutureRevisionError(at, latest);
    if (at > 0 && at < this.compactRevision) throw new CompactedError(at, this.oldestAvailable());
    const prefix = request.prefix ?? false;
    let rows: KvRow[];
    if (at === 0 || at === latest) {
      rows = (
        prefix ? this.stmt.keysInRange.all(request.key, prefixEnd(request.key)) : this.stmt.getKey.all(request.key)
      ) as KvRow[];
    } else {
      const found = (
        prefix
          ? this.stmt.historyRangeAt.all({ from: request.key, to: prefixEnd(request.key), at })
          : this.stmt.historyKeyAt.all({ key: request.key, at })
      ) as (HistoryRow & { mod_revision: number })[];
      rows = found.filter((r) => r.deleted === 0).map((r) => ({ ...r, value: r.value ?? Buffer.alloc(0) }));
    }
    const limit = request.limit && request.limit > 0 ? request.limit : Infinity;
    const kept = rows.length > limit ? rows.slice(0, limit) : rows;
    return {
      revision: latest,
      kvs: kept.map((r) => (request.keysOnly ? { ...rowToKv(r), value: EMPTY } : rowToKv(r))),
      more: rows.length > kept.length,
      count: rows.length,
    };
  }

  private readHistory(
    filter: KeyFilter,
    from: number,
    to: number,
    maxEvents: number,
    prevKv: boolean,
  ): { events: WatchEvent[]; next: number } {
    const args = filter.prefix
      ? { from, to, lo: filter.key, hi: prefixEnd(filter.key), limit: maxEvents + 1 }
      : { from, to, key: filter.key, limit: maxEvents + 1 };
    let rows = (filter.prefix ? this.stmt.historyEventsPrefix : this.stmt.historyEventsKey).all(args) as HistoryRow[];
    let next = to + 1;
    if (rows.length > maxEvents) {
      // Never split a revision: stop before the last one read, or if a single
      // revision is larger than a page, read all of it.
      const last = rows[rows.length - 1]?.revision ?? to;
      const whole = rows.filter((r) => r.revision < last);
      if (whole.length > 0) {
        rows = whole;
        next = last;
      } else {
        rows = (filter.prefix ? this.stmt.historyEventsPrefix : this.stmt.historyEventsKey).all({
          ...args,
          from: last,
          to: last,
          limit: -1,
        }) as HistoryRow[];
        next = last + 1;
      }
    }
    const events = rows.map((row): WatchEvent => {
      const event: WatchEvent =
        row.deleted === 0
          ? {
              type: 'put',
              kv: rowToKv({ ...row, value: row.value ?? Buffer.alloc(0), mod_revision: row.revision }),
              revision: row.revision,
            }
          : { type: 'delete', kv: tombstone(row.key, row.revision), revision: row.revision };
      if (!prevKv) return event;
      const prev = this.stmt.historyBefore.get(row.key, row.revision) as HistoryRow | undefined;
      return {
        ...event,
        prevKv:
          prev && prev.deleted === 0
            ? rowToKv({ ...prev, value: prev.value ?? Buffer.alloc(0), mod_revision: prev.revision })
            : null,
      };
    });
    return { events, next };
  }

  // ---- batch bookkeeping ---------------------------------------------------

  private applyStaged(): void {
    const first = this.currentRevision + 1;
    this.currentRevision = this.stagedRevision;
    this.compactRevision = this.stagedCompactRevision;
    const now = this.clock.now();
    for (const change of this.stagedLeases) {
      if (change.ttl === null) this.leases.delete(change.id);
      else this.leases.set(change.id, { ttl: change.ttl, expiresAt: now + change.ttl * 1000 });
    }
    const leasesChanged = this.stagedLeases.length > 0;
    if (this.currentRevision >= first) {
      if (this.undurableEvents.length === 0) this.undurableEvents = this.stagedEvents;
      else for (const event of this.stagedEvents) this.undurableEvents.push(event);
    }
    this.stagedEvents = [];
    this.stagedLeases = [];
    if (leasesChanged) this.scheduleExpiry();
    this.maybeCompact();
  }

  private dropStaged(): void {
    this.stagedRevision = this.currentRevision;
    this.stagedCompactRevision = this.compactRevision;
    this.stagedEvents = [];
    this.stagedLeases = [];
  }

  /** Keep the timer set for the earliest lease expiry. */
  private scheduleExpiry(): void {
    let earliest = Infinity;
    for (const [id, lease] of this.leases) {
      if (!this.expiring.has(id)) earliest = Math.min(earliest, lease.expiresAt);
    }
    if (earliest === this.expiryAt && this.expiryTimer) return;
    if (this.expiryTimer) this.clock.clearTimeout(this.expiryTimer);
    this.expiryTimer = null;
    this.expiryAt = earliest;
    if (earliest === Infinity || this.closed) return;
    this.expiryTimer = this.clock.setTimeout(() => this.expireLeases(), earliest - this.clock.now());
  }

  private expireLeases(): void {
    this.expiryTimer = null;
    this.expiryAt = Infinity;
    if (this.closed) return;
    const now = this.clock.now();
    const expired = [...this.leases].filter(([id, l]) => l.expiresAt <= now && !this.expiring.has(id));
    // Each expiry is its own write (its keys vanish at one revision).
    for (const [id] of expired) {
      this.expiring.add(id);
      this.write(() => {
        if (this.stmt.getLease.get(id)) this.endLease(id);
      })
        .catch(() => undefined)
        .finally(() => {
          this.expiring.delete(id);
          this.scheduleExpiry();
        });
    }
    this.scheduleExpiry();
  }

  /** Compact in steps once history exceeds the retention by a tenth. */
  private maybeCompact(): void {
    if (this.closed) return;
    const target = this.currentRevision - this.retention + 1;
    const slack = Math.max(1, Math.floor(this.retention / 10));
    if (this.compacting || target - this.compactRevision < slack) return;
    this.compacting = true;
    const step = Math.min(target, this.compactRevision + COMPACTION_STEP);
    this.compact(step)
      .catch(() => undefined)
      .finally(() => {
        this.compacting = false;
        if (!this.closed && step < target) this.maybeCompact();
      });
  }
}

function prepareStatements(db: Db) {
  const kvColumns = 'key, value, create_revision, mod_revision, version, lease';
  const historyColumns = 'revision, key, deleted, value, create_revision, version, lease';
  const s = (sql: string): Statement => db.prepare(sql);
  return {
    getMeta: s('SELECT value FROM meta WHERE name = ?'),
    setMeta: s('INSERT INTO meta (name, value) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET value = excluded.value'),
    getKey: s(`SELECT ${kvColumns} FROM kv WHERE key = ?`),
    keysInRange: s(`SELECT ${kvColumns} FROM kv WHERE key >= ? AND key < ? ORDER BY key`),
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

function rowToKv(row: KvRow): KeyValue {
  return {
    key: row.key,
    value: new Uint8Array(row.value.buffer, row.value.byteOffset, row.value.byteLength),
    createRevision: row.create_revision,
    modRevision: row.mod_revision,
    version: row.version,
    lease: row.lease,
  };
}

function tombstone(key: string, revision: number): KeyValue {
  return { key, value: EMPTY, createRevision: 0, modRevision: revision, version: 0, lease: null };
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
function checkDistinctWrites(ops: readonly TxnOp[]): void {
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
