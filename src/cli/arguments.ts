import { InvalidArgumentError as CommanderArgumentError } from 'commander';
import { LEASE_ID_PATTERN } from '../core/backend.js';
import { parseDuration } from '../core/duration.js';
import { MusterError } from '../core/errors.js';
import { validateKey, validatePrefix } from '../core/key-path.js';

/**
 * Argument parsers for commander: each returns the parsed value or throws
 * commander's InvalidArgumentError, which becomes a usage error (exit 2) naming
 * the argument.
 */
function parsed<T>(parse: () => T): T {
  try {
    return parse();
  } catch (error) {
    if (error instanceof MusterError) throw new CommanderArgumentError(error.message);
    throw error;
  }
}

/** A key such as /config/db/host. */
export function keyArgument(text: string): string {
  return parsed(() => validateKey(text));
}

/** A prefix such as /config/ (or / for everything). */
export function prefixArgument(text: string): string {
  return parsed(() => validatePrefix(text));
}

/** A whole number ≥ 0 (revisions, limits). */
export function countArgument(text: string): number {
  if (!/^\d+$/.test(text.trim()))
    throw new CommanderArgumentError(`expected a whole number ≥ 0, got ${JSON.stringify(text)}`);
  return Number(text);
}

/** A duration in whole seconds ≥ 1: 15s, 2m, or a bare number of seconds. */
export function ttlArgument(text: string): number {
  const ms = parsed(() => parseDuration(text, 'TTL'));
  if (ms < 1000 || ms % 1000 !== 0) {
    throw new CommanderArgumentError(
      `a TTL must be a whole number of seconds, at least 1s (got ${JSON.stringify(text)})`,
    );
  }
  return ms / 1000;
}

/** A lease id: lowercase hexadecimal. */
export function leaseArgument(text: string): string {
  const id = text.trim().toLowerCase();
  if (!LEASE_ID_PATTERN.test(id)) {
    throw new CommanderArgumentError(
      `a lease id is hexadecimal, such as 694d77aa9e2a1f05 (got ${JSON.stringify(text)})`,
    );
  }
  return id;
}
