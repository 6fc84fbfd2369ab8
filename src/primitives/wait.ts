import type { Backend, KeyValue } from '../core/backend.js';
import { InvalidArgumentError } from '../core/errors.js';
import { RE2JS } from 're2js';
import { waitForEvent } from './wait-for-event.js';

/** What `wait` waits for. */
export type WaitCondition =
  | { readonly kind: 'exists' }
  | { readonly kind: 'deleted' }
  | { readonly kind: 'equals'; readonly value: string }
  | { readonly kind: 'matches'; readonly pattern: LinearPattern };

/** A compiled pattern that matches in time linear in the input (RE2 semantics). */
export interface LinearPattern {
  readonly source: string;
  test(text: string): boolean;
}

export interface WaitOutcome {
  /** The key when the condition held (null for `deleted`). */
  readonly kv: KeyValue | null;
  readonly revision: number;
}

/** Longest pattern accepted for `matches`, to keep a hostile regex small. */
export const MAX_PATTERN_LENGTH = 256;

/**
 * Build a `matches` condition, naming the problem if the pattern is bad. Patterns
 * run on RE2's engine (re2js), whose matching time is linear in the value: a
 * pattern such as `^(a+)+$` that backtracks exponentially in JavaScript's own
 * engine cannot stall the server. RE2 syntax is JavaScript's without
 * backreferences and lookaround, which are refused as invalid_pattern. The
 * pattern matches anywhere in the value, as RegExp.test does: anchor it with ^ and $.
 */
export function matchesCondition(pattern: string): WaitCondition {
  if (pattern.length > MAX_PATTERN_LENGTH) {
    throw new InvalidArgumentError(`the pattern is longer than ${MAX_PATTERN_LENGTH} characters`, 'invalid_pattern');
  }
  try {
    const compiled = RE2JS.compile(pattern);
    return { kind: 'matches', pattern: { source: pattern, test: (text) => compiled.matcher(text).find() } };
  } catch (error) {
    throw new InvalidArgumentError(
      `invalid regular expression (RE2 syntax: no backreferences or lookaround): ${(error as Error).message}`,
      'invalid_pattern',
    );
  }
}

const decoder = new TextDecoder();

function holds(condition: WaitCondition, kv: KeyValue | null): boolean {
  switch (condition.kind) {
    case 'exists':
      return kv !== null;
    case 'deleted':
      return kv === null;
    case 'equals':
      return kv !== null && decoder.decode(kv.value) === condition.value;
    case 'matches':
      return kv !== null && condition.pattern.test(decoder.decode(kv.value));
  }
}

/**
 * Block until `key` satisfies `condition` (Noah's noah_block): checks now, then
 * follows the key's changes with a watch. Rejects with the signal's reason
 * (TimeoutError for a timeout) if it aborts first.
 */
export async function waitFor(
  backend: Backend,
  key: string,
  condition: WaitCondition,
  signal?: AbortSignal,
): Promise<WaitOutcome> {
  const now = await backend.range({ key });
  const current = now.kvs[0] ?? null;
  if (holds(condition, current)) return { kv: current, revision: now.revision };
  const event = await waitForEvent(
    backend,
    key,
    now.revision + 1,
    (e) => holds(condition, e.type === 'put' ? e.kv : null),
    signal,
  );
  return { kv: event.type === 'put' ? event.kv : null, revision: event.revision };
}
