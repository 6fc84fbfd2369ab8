/**
 * Per-token limits, on each server: requests per second (a token bucket), open
 * watches, and calls blocked at once (locks, waits, barriers…). Over a limit a
 * request gets 429 `limit_exceeded` naming the limit, with Retry-After for the
 * request rate. Counted per server: behind several servers a token's share is
 * per server.
 */
import type { Clock } from '../core/clock.js';
import { LimitExceededError } from '../core/errors.js';

export interface LimitSettings {
  /** Requests per second per token (a burst of twice as many is allowed); 0: no limit. @default 0 */
  readonly requestsPerSecond?: number;
  /** Watches (and observes) open at once per token; 0: no limit. @default 1000 */
  readonly watches?: number;
  /** Blocking calls waiting at once per token; 0: no limit. @default 10000 */
  readonly blocked?: number;
}

export const DEFAULT_LIMITS: Required<LimitSettings> = { requestsPerSecond: 0, watches: 1000, blocked: 10_000 };

export type HeldKind = 'watches' | 'blocked';

interface Bucket {
  tokens: number;
  at: number;
}

export class Limits {
  private readonly settings: Required<LimitSettings>;
  private readonly buckets = new Map<string, Bucket>();
  private readonly held = { watches: new Map<string, number>(), blocked: new Map<string, number>() };

  constructor(
    private readonly clock: Clock,
    settings: LimitSettings = {},
  ) {
    this.settings = { ...DEFAULT_LIMITS, ...settings };
  }

  /** Count one request of `tokenId`; throws LimitExceededError when its rate is over the limit. */
  admit(tokenId: string): void {
    const rate = this.settings.requestsPerSecond;
    if (rate <= 0) return;
    const now = this.clock.now();
    const burst = rate * 2;
    const bucket = this.buckets.get(tokenId) ?? { tokens: burst, at: now };
    bucket.tokens = Math.min(burst, bucket.tokens + ((now - bucket.at) / 1000) * rate);
    bucket.at = now;
    if (bucket.tokens < 1) {
      this.buckets.set(tokenId, bucket);
      const retryAfterSeconds = Math.max(1, Math.ceil((1 - bucket.tokens) / rate));
      throw new LimitExceededError(
        `this token is over its ${rate} requests per second; retry in ${retryAfterSeconds}s`,
        'requests per second',
        rate,
        retryAfterSeconds,
      );
    }
    bucket.tokens -= 1;
    this.buckets.set(tokenId, bucket);
  }

  /** Take one slot of `kind` for `tokenId` until the returned function is called; throws when all are taken. */
  hold(kind: HeldKind, tokenId: string): () => void {
    const max = this.settings[kind];
    const counts = this.held[kind];
    const current = counts.get(tokenId) ?? 0;
    if (max > 0 && current >= max) {
      const what = kind === 'watches' ? 'open watches' : 'blocked calls';
      throw new LimitExceededError(`this token already has ${current} ${what}, its limit`, what, max);
    }
    counts.set(tokenId, current + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const left = (counts.get(tokenId) ?? 1) - 1;
      if (left <= 0) counts.delete(tokenId);
      else counts.set(tokenId, left);
    };
  }
}
