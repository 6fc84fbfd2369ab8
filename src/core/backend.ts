import { InvalidArgumentError } from './errors.js';

/**
 * The Backend interface: a keyspace with the semantics of etcd v3.
 *
 * Everything above core/ (primitives, features, the HTTP server) is written
 * against this file only. `backends/sqlite` and `backends/etcd` implement it, and
 * one conformance suite (test/conformance/backend-suite.ts) holds both to it.
 *
 * Semantics, in short:
 * - Keys are strings (paths such as `/a/b/c`, validated above this layer by
 *   core/key-path.ts); values are bytes.
 * - One global revision. Every transaction that writes something (put, or a
 *   delete that removes at least one key) advances it by exactly one; all events of
 *   that transaction carry that revision. Reads and failed compares do not.
 * - Each key records createRevision, modRevision, version (1 on create, +1 per put;
 *   a delete resets the key, so a later put starts again at version 1) and lease.
 * - "Prefix" means a literal string prefix, as in etcd: the prefix `/a` matches
 *   `/a`, `/a/b` and `/ab`; end a prefix with `/` to mean a folder.
 * - A lease expiring (or being revoked) deletes its keys, as ordinary delete
 *   events at one new revision.
 * - Watches replay every event at or after `fromRevision`, in order, then follow
 *   live; none is missed. A revision older than the retained history fails with
 *   CompactedError carrying the oldest revision still available.
 */

/** Lease ids are lowercase hexadecimal strings (as `etcdctl` prints them). */
export type LeaseId = string;

/** What a lease id looks like: 1 to 16 lowercase hex digits (a positive int64, as etcd's). */
export const LEASE_ID_PATTERN = /^[0-9a-f]{1,16}$/;

export interface KeyValue {
  readonly key: string;
  readonly value: Uint8Array;
  readonly createRevision: number;
  readonly modRevision: number;
  /** 1 when created, +1 on every put since. */
  readonly version: number;
  /** The lease the key is bound to, or null. */
  readonly lease: LeaseId | null;
}

export interface RangeRequest {
  /** The key, or the prefix when `prefix` is true. */
  readonly key: string;
  /** @default false */
  readonly prefix?: boolean;
  /** At most this many keys (sorted by key); 0 or absent means no limit. */
  readonly limit?: number;
  /** Read as of this past revision; absent or 0 means the current one. */
  readonly revision?: number;
  /** Return keys and metadata with empty values. @default false */
  readonly keysOnly?: boolean;
}

export interface RangeResult {
  /** The store's revision when the read was served. */
  readonly revision: number;
  readonly kvs: KeyValue[];
  /** True when `limit` cut the result short. */
  readonly more: boolean;
  /** How many keys matched, before `limit`. */
  readonly count: number;
}

export interface PutOptions {
  /** Bind the key to this lease; it is deleted when the lease ends. */
  readonly lease?: LeaseId | null;
}

export interface PutResult {
  readonly revision: number;
  /** The key as it was before this put, or null if it did not exist. */
  readonly prevKv: KeyValue | null;
}

export interface DeleteRequest {
  readonly key: string;
  /** @default false */
  readonly prefix?: boolean;
}

export interface DeleteResult {
  /** The store's revision after the delete (unchanged if nothing was deleted). */
  readonly revision: number;
  readonly deleted: number;
  readonly prevKvs: KeyValue[];
}

export type CompareOp = '=' | '!=' | '<' | '>';

/**
 * One condition of a transaction. As in etcd, a key that does not exist has
 * version, createRevision and modRevision 0 and lease null; any comparison of the
 * value of a missing key is false. `V` is how a value is given (bytes here; the
 * client also takes text).
 */
export type Compare<V = Uint8Array> =
  | { readonly key: string; readonly target: 'value'; readonly op: CompareOp; readonly value: V }
  | {
      readonly key: string;
      readonly target: 'version' | 'createRevision' | 'modRevision';
      readonly op: CompareOp;
      readonly value: number;
    }
  | { readonly key: string; readonly target: 'lease'; readonly op: CompareOp; readonly value: LeaseId | null };

export type TxnOp<V = Uint8Array> =
  | { readonly type: 'put'; readonly key: string; readonly value: V; readonly lease?: LeaseId | null }
  | { readonly type: 'delete'; readonly key: string; readonly prefix?: boolean }
  | ({ readonly type: 'get' } & RangeRequest);

export type TxnOpResult =
  | ({ readonly type: 'put' } & PutResult)
  | ({ readonly type: 'delete' } & DeleteResult)
  | ({ readonly type: 'get' } & RangeResult);

export interface TxnRequest {
  readonly compare: readonly Compare[];
  readonly success: readonly TxnOp[];
  readonly failure: readonly TxnOp[];
}

export interface TxnResult {
  readonly succeeded: boolean;
  /** The store's revision after the transaction. */
  readonly revision: number;
  /** One result per op of the branch taken, in order. */
  readonly results: TxnOpResult[];
}

export interface LeaseGrant {
  readonly id: LeaseId;
  /** Seconds granted. */
  readonly ttl: number;
}

export interface LeaseInfo {
  readonly id: LeaseId;
  /** Seconds left before expiry. */
  readonly ttl: number;
  /** Seconds granted. */
  readonly grantedTtl: number;
  readonly keys: string[];
}

export interface WatchOptions {
  /** Watch every key under `key` taken as a prefix. @default false */
  readonly prefix?: boolean;
  /**
   * First revision to deliver. Absent means "from now on": only events after the
   * current revision.
   */
  readonly fromRevision?: number;
  /** Attach the previous value of each key to its event. @default false */
  readonly prevKv?: boolean;
}

export interface WatchEvent {
  readonly type: 'put' | 'delete';
  /**
   * The key after the event. For a delete: value empty, version 0, lease null,
   * createRevision 0, and modRevision the revision of the delete.
   */
  readonly kv: KeyValue;
  readonly prevKv?: KeyValue | null;
  /** Equal to kv.modRevision. */
  readonly revision: number;
}

/**
 * Events delivered together. A batch always holds whole revisions: every event of
 * a revision is in the same batch, so a consumer that records the last revision it
 * processed can resume from the next one without loss or duplication.
 */
export interface WatchBatch {
  readonly events: WatchEvent[];
  /**
   * Set on a progress batch (no events), the answer to `requestProgress()`: every
   * event of this watch up to this revision has been delivered, so a consumer may
   * resume from the next one even on a prefix where nothing happened.
   */
  readonly progress?: number;
}

/**
 * A running watch. Iterate it with `for await`; `close()` (or breaking out of the
 * loop) ends it. The iterator throws CompactedError when its start is no longer
 * retained, and BackendUnavailableError when the store is lost.
 */
export interface Watch extends AsyncIterable<WatchBatch> {
  close(): void;
  /**
   * Ask for a progress batch, delivered in order after the events before it. A
   * watch still catching up on history may let the request pass unanswered (ask
   * again later): a progress revision is never ahead of what was delivered.
   */
  requestProgress(): void;
}

export interface Backend {
  /** A short name for logs and metrics, such as "sqlite" or "etcd". */
  readonly kind: string;

  /** The current revision. */
  revision(): Promise<number>;

  get(key: string, options?: { revision?: number }): Promise<KeyValue | null>;
  range(request: RangeRequest): Promise<RangeResult>;
  put(key: string, value: Uint8Array, options?: PutOptions): Promise<PutResult>;
  delete(request: DeleteRequest): Promise<DeleteResult>;
  txn(request: TxnRequest): Promise<TxnResult>;

  /** Grant a lease of `ttl` seconds (at least 1). */
  grantLease(ttl: number): Promise<LeaseGrant>;
  /** Renew a lease to its full TTL. Throws LeaseNotFoundError if it has ended. */
  keepAlive(id: LeaseId): Promise<LeaseGrant>;
  /** End a lease now, deleting its keys. Throws LeaseNotFoundError if unknown. */
  revokeLease(id: LeaseId): Promise<void>;
  /** Throws LeaseNotFoundError if the lease has ended. */
  leaseInfo(id: LeaseId): Promise<LeaseInfo>;
  listLeases(): Promise<LeaseId[]>;

  watch(key: string, options?: WatchOptions): Watch;

  /** Forget history before `revision` (range and watch below it fail with CompactedError). */
  compact(revision: number): Promise<void>;
  /** The oldest revision still available to range and watch. */
  oldestRevision(): Promise<number>;

  /**
   * Optional: a consistent copy of the whole store at one acknowledged revision,
   * as a self-checking byte stream (the embedded store has it; on etcd use
   * `etcdctl snapshot save`).
   */
  snapshot?(): Promise<SnapshotStream>;

  /** Release resources; pending calls fail with BackendClosedError. */
  close(): Promise<void>;
}

/** A snapshot being read: its revision, its length in bytes and its bytes. */
export interface SnapshotStream {
  readonly revision: number;
  readonly size: number;
  readonly chunks: AsyncIterable<Uint8Array>;
}

/** The argument rules every backend applies alike (InvalidArgumentError otherwise). */
export const backendArguments = {
  /** A lease TTL: a whole number of seconds ≥ 1. */
  leaseTtl(ttl: number): void {
    if (!Number.isInteger(ttl) || ttl < 1) {
      throw new InvalidArgumentError(`lease TTL must be a whole number of seconds ≥ 1, got ${ttl}`, 'invalid_ttl');
    }
  },
  /** A compaction revision: a whole number ≥ 1. */
  compactRevision(revision: number): void {
    if (!Number.isInteger(revision) || revision < 1) {
      throw new InvalidArgumentError(
        `compaction revision must be a positive whole number, got ${revision}`,
        'invalid_revision',
      );
    }
  },
};
