import { describe, expect, it } from 'vitest';
import { errorFromWire } from '../../src/client/error-from-wire.js';
import {
  BackendUnavailableError,
  CompactedError,
  InvalidArgumentError,
  KeyNotFoundError,
  LeaseNotFoundError,
  RevisionConflictError,
  TimeoutError,
  ValueTooLargeError,
} from '../../src/core/errors.js';

const body = (code: string, extra: Record<string, unknown> = {}) => ({
  error: { code, message: `${code}!`, ...extra },
});

describe('errorFromWire', () => {
  it('turns each code back into its class, with the context fields', () => {
    const conflict = errorFromWire(409, body('revision_conflict', { currentModRevision: 5 }), {
      subject: '/config/db/host',
      expectedModRevision: 3,
    });
    expect(conflict).toBeInstanceOf(RevisionConflictError);
    expect(conflict).toMatchObject({ key: '/config/db/host', currentModRevision: 5, expectedModRevision: 3 });

    expect(errorFromWire(404, body('key_not_found'), { subject: '/k' })).toMatchObject({ key: '/k' });
    expect(errorFromWire(404, body('key_not_found'))).toBeInstanceOf(KeyNotFoundError);
    expect(errorFromWire(404, body('lease_not_found'), { subject: 'ab' })).toBeInstanceOf(LeaseNotFoundError);
    expect(errorFromWire(410, body('compacted', { requestedRevision: 2, oldestRevision: 9 }))).toMatchObject({
      requestedRevision: 2,
      oldestRevision: 9,
    });
    expect(errorFromWire(410, body('compacted'))).toBeInstanceOf(CompactedError);
    expect(errorFromWire(413, body('value_too_large', { size: 10, limit: 5 }))).toBeInstanceOf(ValueTooLargeError);
    expect(errorFromWire(408, body('timeout'))).toBeInstanceOf(TimeoutError);
    expect(errorFromWire(503, body('unavailable'))).toBeInstanceOf(BackendUnavailableError);
  });

  it('keeps the server’s code for every other 4xx', () => {
    for (const code of ['invalid_key', 'invalid_request', 'invalid_json', 'invalid_duration', 'body_too_large']) {
      const error = errorFromWire(400, body(code));
      expect(error).toBeInstanceOf(InvalidArgumentError);
      expect(error.code).toBe(code);
      expect(error.message).toBe(`${code}!`);
    }
  });

  it('copes with a body that is not an error body', () => {
    expect(errorFromWire(503, null)).toBeInstanceOf(BackendUnavailableError);
    expect(errorFromWire(502, '<html>')).toBeInstanceOf(BackendUnavailableError);
    const odd = errorFromWire(418, { nope: true });
    expect(odd.code).toBe('invalid_argument');
    expect(odd.message).toMatch(/HTTP 418/);
  });
});
