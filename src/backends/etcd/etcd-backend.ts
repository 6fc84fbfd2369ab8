import { readFile } from 'node:fs/promises';
import { ConsecutiveBreaker, circuitBreaker, handleWhen } from 'cockatiel';
import { Etcd3, GRPCUnavailableError } from 'etcd3';
import type {
  ICompare,
  IOptions,
  IRangeRequest,
  IRangeResponse,
  IRequestOp,
  IResponseHeader,
  IResponseOp,
  ITxnRequest,
} from 'etcd3';
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
  TxnOp,
  TxnOpResult,
  TxnRequest,
  TxnResult,
  Watch,
  WatchOptions,
} from '../../core/backend.js';
import { backendArguments } from '../../core/backend.js';
import { sleep, systemClock } from '../../core/clock.js';
import {
  BackendClosedError,
  BackendUnavailableError,
  CompactedError,
  InvalidArgumentError,
  LeaseNotFoundError,
  type MusterError,
} from '../../core/errors.js';
import { EtcdKeyspace, leaseFromEtcd, leaseToEtcd } from './etcd-keyspace.js';
import { EtcdWatch, stopStream } from './etcd-watch.js';
import { classifyError, isTransient, neverApplied, translateError, type ErrorContext } from './translate-error.js';

export interface EtcdBackendOptions {
  /** Client URLs of the etcd members, such as `http://10.0.0.1:2379`. */
  readonly endpoints: readonly string[];
  /** Every muster key lives under this etcd prefix. @default "/muster/" */
  readonly prefix?: string;
  /** PEM files for TLS to etcd (endpoints must then be https://). */
  readonly tls?: { readonly ca?: string; readonly cert?: string; readonly key?: string };
  /** Deadline of one call, retries included, before BackendUnavailableError. @default 5000 */
  readonly requestTimeoutMs?: number;
  /**
   * Deadline of one attempt of a call. An attempt that a dead or leaderless member
   * holds ends after this, so the call can go to a live member (reads, and writes
   * that etcd certainly did not apply) or fail fast enough for its caller to try
   * again (a write that may have been applied is never retried blindly). Keep it
   * above etcd's election timeout and a slow disk's fsync: at 1 s, 200 concurrent
   * puts on a 2-core machine under load timed out (1.4 s) and failed. @default 2000
   */
  readonly attemptTimeoutMs?: number;
}

/** gRPC call options (deadline), as etcd3's clients take them. */
type CallOptions = NonNullable<Parameters<Etcd3['kv']['range']>[1]>;
type GlobalPolicy = NonNullable<NonNullable<IOptions['faultHandling']>['global']>;

/** Attempts of one call when etcd is unreachable or changing leader. */
const MAX_ATTEMPTS = 4;
/** etcd3 hands a policy no signal of its own; calls are bounded by their gRPC deadline instead. */
const NEVER_ABORTED = new AbortController().signal;

/**
 * etcd3 retries any failed call by default, writes included; a txn retried after
 * its first attempt was applied would then report failure for a write that
 * happened. So the client's own retries are off, and `call()` retries writes only
 * when etcd certainly never applied them.
 */
const noRetries: GlobalPolicy = {
  _altReturn: undefined as never,
  onSuccess: () => ({ dispose: () => undefined }),
  onFailure: () => ({ dispose: () => undefined }),
  execute: async (fn, signal) => fn({ signal: signal ?? NEVER_ABORTED }),
};

/**
 * Set a member aside only when it cannot be reached (three connection failures
 * in a row), and try it again after a second. etcd3's default breaker also counts
 * deadlines, and keeps a member aside for 5 s: when the leader dies, the calls
 * that the followers were forwarding to it time out on each follower, so every
 * member was set aside at once and writes stalled for 5 s after etcd had already
 * elected a new leader.
 */
const HOST_HALF_OPEN_MS = 1_000;
const unreachableMember = () =>
  circuitBreaker(
    handleWhen((error) => error instanceof GRPCUnavailableError),
    { halfOpenAfter: HOST_HALF_OPEN_MS, breaker: new ConsecutiveBreaker(3) },
  );

/**
 * The Backend on an etcd v3 cluster. etcd is the state: revisions, versions,
 * leases, transactions and watches are etcd's own, read and written through its
 * gRPC API (etcd3's low-level KV, Lease and Watch clients), with muster's keys
 * under a prefix. Any number of muster servers may share one cluster.
 *
 * Every call has a deadline (`requestTimeoutMs`); when etcd cannot answer in time
 * it fails with the retryable BackendUnavailableError. etcd's errors are turned
 * into muster's typed errors in one place, `translateError`.
 */
export class EtcdBackend implements Backend {
  readonly kind = 'etcd';

  private readonly watches = new Set<EtcdWatch>();
  /** Watches without a start revision that etcd has not created yet (see `beforeWrite`). */
  private readonly pendingCreations = new Set<Promise<void>>();
  private closed = false;

  private constructor(
    private readonly client: Etcd3,
    private readonly keyspace: EtcdKeyspace,
    private readonly requestTimeoutMs: number,
    private readonly attemptTimeoutMs: number,
  ) {}

  /** Connect to etcd and check that it answers; throws BackendUnavailableError if it does not. */
  static async open(options: EtcdBackendOptions): Promise<EtcdBackend> {
    if (options.endpoints.length === 0) throw new InvalidArgumentError('no etcd endpoint given', 'invalid_config');
    const keyspace = new EtcdKeyspace(options.prefix ?? '/muster/');
    const client = new Etcd3({
      hosts: [...options.endpoints],
      ...(options.tls ? { credentials: await loadCredentials(options.tls) } : {}),
      faultHandling: { global: noRetries, host: unreachableMember },
      grpcOptions: {
        'grpc.max_receive_message_length': -1,
        // Notice a dead connection under a long-lived watch; etcd refuses pings more
        // often than every 5 s, and any ping without a call in flight.
        'grpc.keepalive_time_ms': 10_000,
        'grpc.keepalive_timeout_ms': 5_000,
        'grpc.keepalive_permit_without_calls': 0,
      },
    });
    const backend = new EtcdBackend(
      client,
      keyspace,
      options.requestTimeoutMs ?? 5_000,
      options.attemptTimeoutMs ?? 2_000,
    );
    try {
      await backend.revision();
    } catch (error) {
      client.close();
      throw error;
    }
    return backend;
  }

  // ---- reads ---------------------------------------------------------------

  async revision(): Promise<number> {
    const response = await this.call(true, {}, (o) =>
      this.client.kv.range({ key: this.keyspace.probeKey(), count_only: true }, o),
    );
    return revisionOf(response.header);
  }

  async get(key: string, options: { revision?: number } = {}): Promise<KeyValue | null> {
    const result = await this.range({ key, limit: 1, ...(options.revision ? { revision: options.revision } : {}) });
    return result.kvs[0] ?? null;
  }

  async range(request: RangeRequest): Promise<RangeResult> {
    const response = await this.call(true, { revision: request.revision ?? 0 }, (o) =>
      this.client.kv.range(this.rangeRequest(request), o),
    );
    return this.rangeResult(response);
  }

  // ---- writes --------------------------------------------------------------

  async put(key: string, value: Uint8Array, options: PutOptions = {}): Promise<PutResult> {
    const lease = this.leaseForPut(options.lease ?? null);
    await this.beforeWrite();
    const response = await this.call(
      false,
      { leaseId: options.lease ?? undefined, requestBytes: key.length + value.byteLength },
      (o) => this.client.kv.put({ key: this.keyspace.key(key), value: toBuffer(value), lease, prev_kv: true }, o),
    );
    return {
      revision: revisionOf(response.header),
      prevKv: response.prev_kv ? this.keyspace.keyValue(response.prev_kv) : null,
    };
  }

  async delete(request: DeleteRequest): Promise<DeleteResult> {
    await this.beforeWrite();
    const response = await this.call(false, {}, (o) =>
      this.client.kv.deleteRange({ ...this.keyspace.range(request.key, request.prefix ?? false), prev_kv: true }, o),
    );
    return {
      revision: revisionOf(response.header),
      deleted: Number(response.deleted),
      prevKvs: response.prev_kvs.map((kv) => this.keyspace.keyValue(kv)),
    };
  }

  async txn(request: TxnRequest): Promise<TxnResult> {
    const body: ITxnRequest = {
      compare: request.compare.map((c) => this.compare(c)),
      success: request.success.map((op) => this.requestOp(op)),
      failure: request.failure.map((op) => this.requestOp(op)),
    };
    const allOps = [...request.success, ...request.failure];
    const writes = allOps.some((op) => op.type !== 'get');
    if (writes) await this.beforeWrite();
    const context: ErrorContext = {
      // Names for the typed error: the first lease a put binds, the highest revision a get reads at.
      leaseId: allOps.flatMap((op) => (op.type === 'put' && op.lease ? [op.lease] : []))[0],
      revision: Math.max(0, ...allOps.map((op) => (op.type === 'get' ? (op.revision ?? 0) : 0))),
      requestBytes: txnBytes(allOps),
    };
    // A txn with writes is retried only when etcd never applied it (see `call`).
    const response = await this.call(!writes, context, (o) => this.client.kv.txn(body, o));
    const revision = revisionOf(response.header);
    const ops = response.succeeded ? request.success : request.failure;
    return {
      succeeded: response.succeeded,
      revision,
      results: ops.map((op, i) => this.opResult(op, response.responses[i], revision)),
    };
  }

  // ---- leases --------------------------------------------------------------

  async grantLease(ttl: number): Promise<LeaseGrant> {
    backendArguments.leaseTtl(ttl);
    // A grant retried after an unseen success leaves an unused lease that expires by itself.
    const response = await this.call(true, {}, (o) => this.client.leaseClient.leaseGrant({ TTL: ttl }, o));
    const id = leaseFromEtcd(response.ID);
    if (id === null) throw new BackendUnavailableError('etcd granted a lease without an id');
    // etcd raises a TTL below its minimum (1.5 election timeouts) and says so here.
    return { id, ttl: Number(response.TTL) };
  }

  async keepAlive(id: LeaseId): Promise<LeaseGrant> {
    const etcdId = this.existingLease(id);
    const response = await this.call(true, { leaseId: id }, (o) => this.keepAliveOnce(etcdId, o));
    const ttl = Number(response.TTL);
    // etcd answers a keep-alive of an ended lease with TTL 0 rather than an error.
    if (ttl <= 0) throw new LeaseNotFoundError(id);
    return { id, ttl };
  }

  async revokeLease(id: LeaseId): Promise<void> {
    const etcdId = this.existingLease(id);
    await this.beforeWrite();
    await this.call(false, { leaseId: id }, (o) => this.client.leaseClient.leaseRevoke({ ID: etcdId }, o));
  }

  async leaseInfo(id: LeaseId): Promise<LeaseInfo> {
    const etcdId = this.existingLease(id);
    const response = await this.call(true, { leaseId: id }, (o) =>
      this.client.leaseClient.leaseTimeToLive({ ID: etcdId, keys: true }, o),
    );
    const ttl = Number(response.TTL);
    if (ttl < 0) throw new LeaseNotFoundError(id);
    const keys: string[] = [];
    for (const key of response.keys) {
      // A lease may also hold keys of another prefix sharing the cluster: not ours to show.
      const stripped = this.keyspace.strip(key);
      if (stripped !== null) keys.push(stripped);
    }
    return { id, ttl, grantedTtl: Number(response.grantedTTL), keys: keys.sort() };
  }

  async listLeases(): Promise<LeaseId[]> {
    const response = await this.call(true, {}, (o) => this.client.leaseClient.leaseLeases(o));
    const ids: LeaseId[] = [];
    for (const lease of response.leases) {
      const id = leaseFromEtcd(lease.ID);
      if (id !== null) ids.push(id);
    }
    return ids;
  }

  // ---- watch and compaction ------------------------------------------------

  watch(key: string, options: WatchOptions = {}): Watch {
    if (this.closed) throw new BackendClosedError();
    const watch = new EtcdWatch(
      {
        keyspace: this.keyspace,
        reconnectWindowMs: this.requestTimeoutMs,
        openStream: () => this.client.watchClient.watch(),
        onEnd: (w) => this.watches.delete(w),
      },
      key,
      options.prefix ?? false,
      options.fromRevision,
      options.prevKv ?? false,
    );
    this.watches.add(watch);
    if (!options.fromRevision) {
      const created = watch.created;
      this.pendingCreations.add(created);
      void created.then(() => this.pendingCreations.delete(created));
    }
    return watch;
  }

  async compact(revision: number): Promise<void> {
    backendArguments.compactRevision(revision);
    try {
      await this.call(true, { revision }, (o) => this.client.kv.compact({ revision, physical: false }, o));
    } catch (error) {
      // etcd refuses to compact at or below its last compaction: there is nothing left to do.
      if (!(error instanceof CompactedError)) throw error;
    }
  }

  /**
   * etcd does not report its compaction point directly. A range at revision 1
   * succeeds when nothing was compacted (the oldest revision is then 1); otherwise
   * a watch from revision 1 is cancelled with `compact_revision`, etcd's oldest
   * retained revision, and that is the answer. Nothing extra is stored.
   */
  async oldestRevision(): Promise<number> {
    try {
      await this.call(true, { revision: 1 }, (o) =>
        this.client.kv.range({ key: this.keyspace.probeKey(), revision: 1, count_only: true }, o),
      );
      return 1;
    } catch (error) {
      // `failure()` has already asked the watch for the compaction point.
      if (error instanceof CompactedError) return error.oldestRevision;
      throw error;
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const closedError = new BackendClosedError();
    for (const watch of [...this.watches]) watch.fail(closedError);
    this.client.close();
  }

  // ---- internals -----------------------------------------------------------

  /**
   * Run one RPC with a deadline, retrying transient failures on another endpoint:
   * any call that `idempotent` allows, a write only when etcd never applied it.
   * Every failure leaves through `failure()`, which translates it.
   */
  private async call<T>(
    idempotent: boolean,
    context: ErrorContext,
    rpc: (options: CallOptions) => Promise<T>,
  ): Promise<T> {
    if (this.closed) throw new BackendClosedError();
    const deadline = Date.now() + this.requestTimeoutMs;
    for (let attempt = 1; ; attempt++) {
      try {
        // Each attempt gets a short deadline of its own: a call stuck on a member that
        // died (or lost its leader) must not hold its caller for the whole deadline.
        return await rpc({ deadline: Math.min(deadline, Date.now() + this.attemptTimeoutMs) });
      } catch (error) {
        const retry =
          !this.closed &&
          attempt < MAX_ATTEMPTS &&
          isTransient(error) &&
          (idempotent || neverApplied(error)) &&
          Date.now() + backoff(attempt) < deadline;
        if (!retry) throw await this.failure(error, context);
        await sleep(systemClock, backoff(attempt));
      }
    }
  }

  /**
   * Gather what the typed error needs (the oldest or the current revision), then
   * translate. If that lookup fails too, its error is the answer: a CompactedError
   * must never name a made-up oldest revision.
   */
  private async failure(error: unknown, context: ErrorContext): Promise<MusterError> {
    if (this.closed) return translateError(error, { ...context, closed: true });
    try {
      switch (classifyError(error)) {
        case 'compacted':
          return translateError(error, { ...context, oldestRevision: await this.compactRevisionFromWatch() });
        case 'future_revision':
          return translateError(error, { ...context, currentRevision: await this.revision() });
        case 'other':
          return translateError(error, context);
      }
    } catch (lookupError) {
      return translateError(lookupError, { closed: this.closed });
    }
  }

  /**
   * etcd's compaction point, asked only once a read has been refused as compacted:
   * etcd creates a watch from revision 1, then cancels it with `compact_revision`,
   * its oldest retained revision (on its next sync, within about 100 ms).
   */
  private compactRevisionFromWatch(): Promise<number> {
    return this.call(true, {}, async (options) => {
      const stream = await this.client.watchClient.watch(options);
      return new Promise<number>((resolve, reject) => {
        stream.on('data', (response) => {
          const compacted = Number(response.compact_revision);
          if (compacted > 0) {
            stopStream(stream);
            resolve(compacted);
          }
        });
        stream.on('error', reject);
        stream.on('end', () => reject(new BackendUnavailableError('etcd ended the watch stream')));
        stream.write({ create_request: { key: this.keyspace.probeKey(), start_revision: 1 } });
      });
    });
  }

  /** One keep-alive on its own stream: send the id, read the answer, close. */
  private async keepAliveOnce(id: string, options: CallOptions): Promise<{ TTL: string }> {
    const stream = await this.client.leaseClient.leaseKeepAlive(options);
    return new Promise((resolve, reject) => {
      stream.on('data', (response) => {
        stopStream(stream);
        resolve(response);
      });
      stream.on('error', reject);
      stream.on('end', () => reject(new BackendUnavailableError('etcd ended the keep-alive stream')));
      stream.write({ ID: id });
    });
  }

  /**
   * A write issued after `watch()` returned must show up in that watch, even when
   * etcd has not created it yet: wait until pending watches are in place (each
   * settles within the request deadline, created or failed).
   */
  private async beforeWrite(): Promise<void> {
    if (this.pendingCreations.size > 0) await Promise.all(this.pendingCreations);
  }

  private existingLease(id: LeaseId): string {
    const etcdId = leaseToEtcd(id);
    if (etcdId === null) throw new LeaseNotFoundError(id);
    return etcdId;
  }

  private leaseForPut(id: LeaseId | null): string {
    return id === null ? '0' : this.existingLease(id);
  }

  private rangeRequest(request: RangeRequest): IRangeRequest {
    return {
      ...this.keyspace.range(request.key, request.prefix ?? false),
      limit: request.limit ?? 0,
      revision: request.revision ?? 0,
      keys_only: request.keysOnly ?? false,
    };
  }

  private rangeResult(response: IRangeResponse): RangeResult {
    return {
      revision: revisionOf(response.header),
      kvs: response.kvs.map((kv) => this.keyspace.keyValue(kv)),
      more: response.more,
      count: Number(response.count),
    };
  }

  private compare(c: Compare): ICompare {
    const base = { key: this.keyspace.key(c.key), result: COMPARE_RESULT[c.op] };
    switch (c.target) {
      case 'value':
        return { ...base, target: 'Value', value: toBuffer(c.value) };
      case 'version':
        return { ...base, target: 'Version', version: c.value };
      case 'createRevision':
        return { ...base, target: 'Create', create_revision: c.value };
      case 'modRevision':
        return { ...base, target: 'Mod', mod_revision: c.value };
      case 'lease':
        // A lease id that cannot exist compares as a lease no key holds.
        return { ...base, target: 'Lease', lease: c.value === null ? '0' : (leaseToEtcd(c.value) ?? '-1') };
    }
  }

  private requestOp(op: TxnOp): IRequestOp {
    switch (op.type) {
      case 'put':
        return {
          request_put: {
            key: this.keyspace.key(op.key),
            value: toBuffer(op.value),
            lease: this.leaseForPut(op.lease ?? null),
            prev_kv: true,
          },
        };
      case 'delete':
        return { request_delete_range: { ...this.keyspace.range(op.key, op.prefix ?? false), prev_kv: true } };
      case 'get':
        return { request_range: this.rangeRequest(op) };
    }
  }

  private opResult(op: TxnOp, response: IResponseOp | undefined, revision: number): TxnOpResult {
    switch (op.type) {
      case 'put': {
        const put = response?.response_put;
        return { type: 'put', revision, prevKv: put?.prev_kv ? this.keyspace.keyValue(put.prev_kv) : null };
      }
      case 'delete': {
        const deleted = response?.response_delete_range;
        return {
          type: 'delete',
          revision,
          deleted: Number(deleted?.deleted ?? 0),
          prevKvs: (deleted?.prev_kvs ?? []).map((kv) => this.keyspace.keyValue(kv)),
        };
      }
      case 'get': {
        const range = response?.response_range;
        if (!range) throw new BackendUnavailableError('etcd answered a txn without a range result');
        // As on SQLite, every result of a txn carries the txn's revision.
        return { type: 'get', ...this.rangeResult(range), revision };
      }
    }
  }
}

const COMPARE_RESULT = { '=': 'Equal', '!=': 'NotEqual', '<': 'Less', '>': 'Greater' } as const;

function revisionOf(header: IResponseHeader): number {
  return Number(header.revision);
}

function toBuffer(value: Uint8Array): Buffer {
  return Buffer.from(value.buffer, value.byteOffset, value.byteLength);
}

function txnBytes(ops: readonly TxnOp[]): number {
  let bytes = 0;
  for (const op of ops) {
    bytes += op.key.length + (op.type === 'put' ? op.value.byteLength : 0);
  }
  return bytes;
}

function backoff(attempt: number): number {
  return 50 * 2 ** (attempt - 1);
}

async function loadCredentials(
  tls: NonNullable<EtcdBackendOptions['tls']>,
): Promise<NonNullable<IOptions['credentials']>> {
  if (!tls.ca) throw new InvalidArgumentError('etcd TLS needs the CA certificate (--etcd-ca)', 'invalid_config');
  if (Boolean(tls.cert) !== Boolean(tls.key)) {
    throw new InvalidArgumentError(
      'etcd TLS client authentication needs both --etcd-cert and --etcd-key',
      'invalid_config',
    );
  }
  return {
    rootCertificate: await readFile(tls.ca),
    ...(tls.cert ? { certChain: await readFile(tls.cert) } : {}),
    ...(tls.key ? { privateKey: await readFile(tls.key) } : {}),
  };
}
