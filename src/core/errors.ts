/**
 * Every domain error of muster, in one file. Both backends raise the same class for
 * the same condition; core/error-catalogue.ts gives each `code` its HTTP status
 * once, for the server's error handler and the client's decoding alike; the client
 * turns an error body back into the same class.
 */
import type { ErrorCode } from './error-catalogue.js';

export abstract class MusterError extends Error {
  /** A stable, machine-readable code from the catalogue: the `code` of the API's error body. */
  abstract readonly code: ErrorCode;
  /** True when the same request may succeed if simply tried again later. */
  readonly retryable: boolean = false;
}

/** A compare-and-swap found the key at another revision than the caller expected. */
export class RevisionConflictError extends MusterError {
  readonly code = 'revision_conflict';
  constructor(
    readonly key: string,
    /** The key's modRevision now (0 when it does not exist). */
    readonly currentModRevision: number,
    readonly expectedModRevision: number,
    options?: ErrorOptions,
  ) {
    super(
      expectedModRevision === 0
        ? `key ${key} already exists (modRevision ${currentModRevision}); expected it to be absent`
        : `key ${key} is at modRevision ${currentModRevision}, not ${expectedModRevision} as expected`,
      options,
    );
  }
}

export class KeyNotFoundError extends MusterError {
  readonly code = 'key_not_found';
  constructor(
    readonly key: string,
    options?: ErrorOptions,
  ) {
    super(`key ${key} not found`, options);
  }
}

export class LeaseNotFoundError extends MusterError {
  readonly code = 'lease_not_found';
  constructor(
    readonly leaseId: string,
    options?: ErrorOptions,
  ) {
    super(`lease ${leaseId} not found (it expired, was revoked, or never existed)`, options);
  }
}

/** The requested revision is older than the retained history. */
export class CompactedError extends MusterError {
  readonly code = 'compacted';
  constructor(
    readonly requestedRevision: number,
    /** The oldest revision still available. */
    readonly oldestRevision: number,
    options?: ErrorOptions,
  ) {
    super(
      `revision ${requestedRevision} has been compacted; the oldest revision available is ${oldestRevision}`,
      options,
    );
  }
}

/** The requested revision has not happened yet. */
export class FutureRevisionError extends MusterError {
  readonly code = 'future_revision';
  constructor(
    readonly requestedRevision: number,
    readonly currentRevision: number,
    options?: ErrorOptions,
  ) {
    super(`revision ${requestedRevision} is in the future; the current revision is ${currentRevision}`, options);
  }
}

/** A bad argument: the message names it. `code` narrows it for the API. */
export class InvalidArgumentError extends MusterError {
  constructor(
    message: string,
    readonly code: ErrorCode = 'invalid_argument',
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

export class InvalidKeyError extends InvalidArgumentError {
  constructor(
    readonly key: string,
    reason: string,
    options?: ErrorOptions,
  ) {
    super(
      `invalid key ${JSON.stringify(key.length > 80 ? key.slice(0, 80) + '…' : key)}: ${reason}`,
      'invalid_key',
      options,
    );
  }
}

export class ValueTooLargeError extends MusterError {
  readonly code = 'value_too_large';
  constructor(
    readonly size: number,
    readonly limit: number,
    options?: ErrorOptions,
  ) {
    super(`value of ${size} bytes exceeds the limit of ${limit} bytes`, options);
  }
}

/** A blocking call reached its timeout before its condition was met. */
export class TimeoutError extends MusterError {
  readonly code = 'timeout';
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
  }
}

/** The store cannot be reached; try again (another server, or later). */
export class BackendUnavailableError extends MusterError {
  readonly code = 'unavailable';
  override readonly retryable = true;
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
  }
}

/** The backend was closed; nothing more will be served by it. */
export class BackendClosedError extends MusterError {
  readonly code = 'closed';
  constructor(options?: ErrorOptions) {
    super('the backend is closed', options);
  }
}

/** A lock, semaphore slot, election or once-run is no longer held by the caller. */
export class NotHolderError extends MusterError {
  readonly code = 'not_holder';
  constructor(
    readonly key: string,
    readonly token: number,
    options?: ErrorOptions,
  ) {
    super(`${key} (token ${token}) is not held by the caller any more: its session ended or it was released`, options);
  }
}

/** Contenders of one semaphore or barrier disagree on its size. */
export class LimitMismatchError extends MusterError {
  readonly code = 'limit_mismatch';
  constructor(
    readonly primitive: string,
    readonly requested: number,
    readonly existing: number,
    options?: ErrorOptions,
  ) {
    super(`${primitive} is in use with a limit of ${existing}; this caller asked for ${requested}`, options);
  }
}

/** A blocking wait was abandoned because its caller went away. */
export class CancelledError extends MusterError {
  readonly code = 'cancelled';
  constructor(message = 'the operation was cancelled', options?: ErrorOptions) {
    super(message, options);
  }
}

/** The store cannot take a snapshot (etcd: use `etcdctl snapshot save`). */
export class SnapshotUnsupportedError extends MusterError {
  readonly code = 'snapshot_unsupported';
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
  }
}

/** A snapshot file is corrupt, truncated or not a muster snapshot; nothing was restored. */
export class InvalidSnapshotError extends MusterError {
  readonly code = 'invalid_snapshot';
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
  }
}

/** No token, or one the server does not accept. Deliberately says nothing of which. */
export class UnauthenticatedError extends MusterError {
  readonly code = 'unauthenticated';
  constructor(message = 'a valid token is required: give one with --token, MUSTER_TOKEN or the config file') {
    super(message);
  }
}

/** The token may not do this; `rule` names the rule that decided. */
export class ForbiddenError extends MusterError {
  readonly code = 'forbidden';
  constructor(
    message: string,
    readonly rule: string,
  ) {
    super(message);
  }
}

/** No token has this id. */
export class TokenNotFoundError extends MusterError {
  readonly code = 'token_not_found';
  constructor(readonly id: string) {
    super(`no token has the id ${JSON.stringify(id)}`);
  }
}

/** A per-token limit is reached: requests per second, open watches or blocked calls. */
export class LimitExceededError extends MusterError {
  readonly code = 'limit_exceeded';
  override readonly retryable = true;
  constructor(
    message: string,
    readonly limit: string,
    readonly max: number,
    readonly retryAfterSeconds?: number,
  ) {
    super(message);
  }
}
