import { ClientClosedError, EtcdLeaseInvalidError, GRPCGenericError, isRecoverableError } from 'etcd3';
import {
  BackendClosedError,
  BackendUnavailableError,
  CompactedError,
  FutureRevisionError,
  InvalidArgumentError,
  LeaseNotFoundError,
  MusterError,
  ValueTooLargeError,
} from '../../core/errors.js';

/** etcd's default `--max-request-bytes`: the size limit it reports as "request is too large". */
export const ETCD_DEFAULT_MAX_REQUEST_BYTES = 1.5 * 1024 * 1024;

/** What the failed call was about, so the typed error can name it. */
export interface ErrorContext {
  /** The backend was closed before or during the call. */
  readonly closed?: boolean;
  /** The revision the call asked for (range at a revision, watch start, compact). */
  readonly revision?: number;
  /** The oldest revision still available, when the caller could find it. */
  readonly oldestRevision?: number;
  /** The current revision, when the caller could find it. */
  readonly currentRevision?: number;
  /** The lease the call named (keepAlive, revoke, a put bound to a lease). */
  readonly leaseId?: string;
  /** Bytes of the request, for "request is too large". */
  readonly requestBytes?: number;
}

/** What kind of etcd error this is; `failure()` uses it to gather context before translating. */
export type EtcdErrorKind = 'compacted' | 'future_revision' | 'other';

/** Classify an error from etcd or the etcd3 client without translating it. */
export function classifyError(error: unknown): EtcdErrorKind {
  const message = error instanceof Error ? error.message : String(error);
  if (message.includes('required revision has been compacted')) return 'compacted';
  if (message.includes('required revision is a future revision')) return 'future_revision';
  return 'other';
}

/**
 * The one place where etcd's errors (gRPC statuses, etcd3 client errors,
 * etcdserver messages) become muster's typed errors. Nothing raw escapes: an
 * error this function does not recognise becomes a BackendUnavailableError that
 * carries it as `cause`.
 */
export function translateError(error: unknown, context: ErrorContext = {}): MusterError {
  if (error instanceof MusterError) return error;
  if (context.closed || error instanceof ClientClosedError) return new BackendClosedError({ cause: error });

  const message = error instanceof Error ? error.message : String(error);
  const options = { cause: error };
  const revision = context.revision ?? 0;

  switch (classifyError(error)) {
    case 'compacted':
      return new CompactedError(revision, context.oldestRevision ?? revision + 1, options);
    case 'future_revision':
      return new FutureRevisionError(revision, context.currentRevision ?? Math.max(0, revision - 1), options);
    case 'other':
      break;
  }
  if (error instanceof EtcdLeaseInvalidError || message.includes('requested lease not found')) {
    return new LeaseNotFoundError(context.leaseId ?? 'unknown', options);
  }
  if (message.includes('duplicate key given in txn request')) {
    return new InvalidArgumentError(
      'a transaction branch writes the same key more than once (or a put and a delete overlap)',
      'duplicate_key',
      options,
    );
  }
  if (message.includes('too many operations in txn request')) {
    return new InvalidArgumentError(
      'too many operations in one transaction for etcd (--max-txn-ops)',
      'too_many_operations',
      options,
    );
  }
  if (message.includes('request is too large')) {
    return new ValueTooLargeError(context.requestBytes ?? 0, ETCD_DEFAULT_MAX_REQUEST_BYTES, options);
  }
  if (message.includes('key is not provided')) {
    return new InvalidArgumentError('empty key', 'invalid_key', options);
  }
  if (message.includes('database space exceeded')) {
    return new BackendUnavailableError('etcd is out of space (NOSPACE alarm): compact and defragment it', options);
  }
  if (
    message.includes('permission denied') ||
    message.includes('invalid auth token') ||
    message.includes('authentication failed')
  ) {
    return new BackendUnavailableError(`etcd refused the request: ${message}`, options);
  }
  if (isCircuitOpen(error)) {
    return new BackendUnavailableError('etcd is unreachable (every endpoint failed recently)', options);
  }
  if (error instanceof Error && (isRecoverableError(error) || error instanceof GRPCGenericError)) {
    return new BackendUnavailableError(`etcd is unavailable: ${message}`, options);
  }
  return new BackendUnavailableError(`etcd call failed: ${message}`, options);
}

/**
 * True when the request certainly never reached etcd's state machine, so a write
 * may be sent again without risk of applying it twice: no connection was made,
 * every host was skipped, or etcd refused it before proposing it to raft.
 */
export function neverApplied(error: unknown): boolean {
  if (isCircuitOpen(error)) return true;
  const message = error instanceof Error ? error.message : String(error);
  return (
    message.includes('ECONNREFUSED') ||
    message.includes('No connection established') ||
    message.includes('etcdserver: no leader') ||
    message.includes('etcdserver: not capable') ||
    message.includes('etcdserver: server stopped')
  );
}

/** True for errors a retry may cure (lost connection, leader change, deadline). */
export function isTransient(error: unknown): boolean {
  if (isCircuitOpen(error)) return true;
  return error instanceof Error && isRecoverableError(error);
}

function isCircuitOpen(error: unknown): boolean {
  // cockatiel's BrokenCircuitError: the host policy skipped every endpoint.
  return error instanceof Error && (error as { isBrokenCircuitError?: unknown }).isBrokenCircuitError === true;
}
