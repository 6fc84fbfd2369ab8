import { isCatalogued } from '../core/error-catalogue.js';
import type { MusterError } from '../core/errors.js';
import {
  BackendUnavailableError,
  CompactedError,
  FutureRevisionError,
  InvalidArgumentError,
  KeyNotFoundError,
  LeaseNotFoundError,
  LimitMismatchError,
  NotHolderError,
  RevisionConflictError,
  SnapshotUnsupportedError,
  ForbiddenError,
  TokenNotFoundError,
  LimitExceededError,
  UnauthenticatedError,
  TimeoutError,
  ValueTooLargeError,
} from '../core/errors.js';

/** What the client knows about the request an error body answered. */
export interface ErrorContext {
  /** The key (or lease id) the request named, used when the body does not say. */
  readonly subject?: string;
  /** The revision the caller expected, for conflicts. */
  readonly expectedModRevision?: number;
}

/**
 * Turn an API error body (`{error:{code,message,...}}`) back into the typed error
 * of core/errors.ts that the server raised, so callers of the client catch the
 * same classes as callers of a Backend. The one place that maps code → class.
 */
export function errorFromWire(status: number, body: unknown, context: ErrorContext = {}): MusterError {
  const error = readErrorObject(body);
  const code = error?.code ?? (status === 503 ? 'unavailable' : `http_${status}`);
  const message = error?.message ?? `the server answered HTTP ${status}`;
  const str = (field: string, fallback: string): string => {
    const v = error?.[field];
    return typeof v === 'string' ? v : fallback;
  };
  const num = (field: string, fallback: number): number => {
    const v = error?.[field];
    return typeof v === 'number' ? v : fallback;
  };
  switch (code) {
    case 'revision_conflict':
      return new RevisionConflictError(
        str('key', context.subject ?? ''),
        num('currentModRevision', 0),
        num('expectedModRevision', context.expectedModRevision ?? 0),
      );
    case 'key_not_found':
      return new KeyNotFoundError(str('key', context.subject ?? ''));
    case 'lease_not_found':
      return new LeaseNotFoundError(str('leaseId', str('id', context.subject ?? '')));
    case 'compacted':
      return new CompactedError(num('requestedRevision', 0), num('oldestRevision', 0));
    case 'future_revision':
      return new FutureRevisionError(num('requestedRevision', 0), num('currentRevision', 0));
    case 'value_too_large':
      return new ValueTooLargeError(num('size', 0), num('limit', 0));
    case 'timeout':
      return new TimeoutError(message);
    case 'not_holder':
      return new NotHolderError(str('key', context.subject ?? ''), num('token', 0));
    case 'limit_mismatch':
      return new LimitMismatchError(str('primitive', context.subject ?? ''), num('requested', 0), num('existing', 0));
    case 'unavailable':
      return new BackendUnavailableError(message);
    case 'snapshot_unsupported':
      return new SnapshotUnsupportedError(message);
    case 'unauthenticated':
      return new UnauthenticatedError(message);
    case 'forbidden':
      return new ForbiddenError(message, str('rule', ''));
    case 'limit_exceeded':
      return new LimitExceededError(message, str('limit', ''), num('max', 0), num('retryAfterSeconds', 1));
    case 'token_not_found':
      return new TokenNotFoundError(str('id', context.subject ?? ''));
    default:
      if (status === 503 || status >= 500) return new BackendUnavailableError(`${message} (HTTP ${status})`);
      // Every other 4xx (invalid_key, invalid_request, invalid_json, body_too_large, …)
      // is a bad argument; the server's code is kept so callers can branch on it. A
      // code this client's catalogue does not know (a newer server) is named in the message.
      return isCatalogued(code)
        ? new InvalidArgumentError(message, code)
        : new InvalidArgumentError(`${message} (${code})`, 'invalid_argument');
  }
}

function readErrorObject(body: unknown): ({ code: string; message: string } & Record<string, unknown>) | null {
  if (typeof body !== 'object' || body === null || !('error' in body)) return null;
  const error = (body as { error: unknown }).error;
  if (typeof error !== 'object' || error === null) return null;
  const record = error as Record<string, unknown>;
  if (typeof record.code !== 'string' || typeof record.message !== 'string') return null;
  return record as { code: string; message: string } & Record<string, unknown>;
}
