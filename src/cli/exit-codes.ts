import { CommanderError } from 'commander';
import {
  BackendUnavailableError,
  CompactedError,
  InvalidArgumentError,
  KeyNotFoundError,
  LeaseNotFoundError,
  MusterError,
  RevisionConflictError,
  TimeoutError,
  ValueTooLargeError,
} from '../core/errors.js';

/** The exit codes of `muster`; scripts may rely on them. */
export const ExitCode = {
  /** It worked. */
  OK: 0,
  /** The operation failed: a conflict, a key or lease not found, a failed txn compare. */
  FAILED: 1,
  /** The command line (or the input the server checked) is wrong. */
  USAGE: 2,
  /** A blocking command (wait, lock, barrier, ...) reached its --timeout. */
  TIMED_OUT: 3,
  /** No muster server could be reached, or it cannot reach its store. */
  UNAVAILABLE: 4,
  /** The lock, slot, leadership or session was lost while a command ran under it; the command was stopped. */
  LOST: 5,
  /** `muster simulate`: an invariant was violated, or nodes were left unfinished. */
  VIOLATION: 6,
} as const;

/** The text shown under "Exit codes" in `muster --help` and docs/cli.md. */
export const EXIT_CODES_HELP = `Exit codes:
  0  success
  1  the operation failed (revision conflict, key or lease not found, txn compare failed)
  2  usage error (unknown command or option, bad argument, input the server rejected)
  3  timed out (wait, lock, semaphore, elect, barrier, once with --timeout)
  4  server unreachable or unavailable (nothing was changed, or the outcome is unknown)
  5  lost: the lock, slot or leadership ended while the command ran; the command was stopped
  6  simulate: an invariant was violated (or the run left nodes unfinished)
  Commands run with -- (lock, semaphore, once, elect) otherwise exit with the command's own code.`;

/** A mistake on the command line, found before anything was sent. */
export class UsageError extends Error {}

/** What a command held (lock, slot, leadership, session) ended while it ran. */
export class LostError extends Error {}

/** The exit code for an error a command threw. */
export function exitCodeFor(error: unknown): number {
  if (error instanceof CommanderError) {
    return error.exitCode === 0 ? ExitCode.OK : ExitCode.USAGE;
  }
  if (error instanceof UsageError) return ExitCode.USAGE;
  if (error instanceof TimeoutError) return ExitCode.TIMED_OUT;
  if (error instanceof LostError) return ExitCode.LOST;
  if (error instanceof BackendUnavailableError) return ExitCode.UNAVAILABLE;
  if (error instanceof ValueTooLargeError) return ExitCode.FAILED;
  if (error instanceof InvalidArgumentError) return ExitCode.USAGE;
  return ExitCode.FAILED;
}

/** An error in plain words for stderr, naming the problem. */
export function describeError(error: unknown): string {
  if (error instanceof RevisionConflictError) {
    if (error.expectedModRevision === 0) {
      return `conflict: ${error.key} already exists (at revision ${error.currentModRevision}); expected it to be absent`;
    }
    if (error.currentModRevision === 0) {
      return `conflict: ${error.key} does not exist; expected it at revision ${error.expectedModRevision}`;
    }
    return `conflict: ${error.key} is at revision ${error.currentModRevision}, not ${error.expectedModRevision}`;
  }
  if (error instanceof KeyNotFoundError) return `not found: ${error.key}`;
  if (error instanceof LeaseNotFoundError) {
    return `lease not found: ${error.leaseId} (it expired, was revoked, or never existed)`;
  }
  if (error instanceof CompactedError) return `compacted: ${error.message}`;
  if (error instanceof BackendUnavailableError) return `unavailable: ${error.message}`;
  if (error instanceof ValueTooLargeError) return `too large: ${error.message}`;
  if (error instanceof InvalidArgumentError) return `invalid input: ${error.message}`;
  if (error instanceof TimeoutError) return `timed out: ${error.message}`;
  if (error instanceof LostError) return `lost: ${error.message}`;
  if (error instanceof MusterError) return `${error.code}: ${error.message}`;
  if (error instanceof UsageError) return `usage: ${error.message}`;
  return `error: ${error instanceof Error ? error.message : String(error)}`;
}
