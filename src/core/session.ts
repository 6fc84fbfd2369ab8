import type { LeaseId } from './backend.js';
import type { Clock, TimerHandle } from './clock.js';
import { systemClock } from './clock.js';
import { BackendUnavailableError, LeaseNotFoundError } from './errors.js';

/**
 * What a session needs of whoever keeps leases: the typed client (over HTTP) and
 * every Backend (in the server's own process, for its duties) both are one.
 */
export interface LeaseKeeper {
  grantLease(ttlSeconds: number): Promise<{ readonly id: LeaseId; readonly ttl: number }>;
  keepAlive(
    id: LeaseId,
    options?: { readonly signal?: AbortSignal; readonly timeoutMs?: number },
  ): Promise<{ readonly id: LeaseId; readonly ttl: number }>;
  revokeLease(id: LeaseId): Promise<void>;
}

export interface SessionOptions {
  /** @default systemClock */
  readonly clock?: Clock;
  /** Called once when the session is lost (after `lost` aborts). */
  readonly onLost?: (reason: Error) => void;
}

/** Where a session is in its life. */
export type SessionState = 'ALIVE' | 'LOST' | 'CLOSED';

/** How soon a failed keepalive is tried again, at most. */
const RETRY_AFTER_FAILURE_MS = 1000;

/**
 * A lease kept alive by this process: the identity under which locks, elections
 * and ephemeral keys are held, for the CLI and programs (over the client) and for
 * the server's duties (over the backend) alike. Keepalives go every ttl/3. The session is *lost*
 * (its `lost` signal aborts, `lostReason` says why) when a keepalive finds the
 * lease gone (or is refused for any reason other than the server being
 * unavailable), or when no keepalive has succeeded for a whole TTL, at which point
 * the server must be assumed to have expired it.
 */
export class Session {
  private readonly controller = new AbortController();
  private timer: TimerHandle | null = null;
  private deadline: TimerHandle | null = null;
  private inFlight: AbortController | null = null;
  private currentState: SessionState = 'ALIVE';
  private reason: Error | null = null;

  private constructor(
    private readonly keeper: LeaseKeeper,
    /** The lease this session keeps alive. */
    readonly leaseId: LeaseId,
    /** The lease's TTL in seconds, as the server granted it. */
    readonly ttlSeconds: number,
    private readonly clock: Clock,
    private readonly onLost: ((reason: Error) => void) | undefined,
  ) {}

  /** Grant a lease of `ttlSeconds` and keep it alive until `close()`. */
  static async start(keeper: LeaseKeeper, options: { ttlSeconds: number } & SessionOptions): Promise<Session> {
    const clock = options.clock ?? systemClock;
    const sentAt = clock.now();
    const grant = await keeper.grantLease(options.ttlSeconds);
    const session = new Session(keeper, grant.id, grant.ttl, clock, options.onLost);
    session.renewed(sentAt);
    return session;
  }

  /** Keep an existing lease alive (its TTL is learnt from a first keepalive, which must succeed). */
  static async attach(keeper: LeaseKeeper, leaseId: LeaseId, options: SessionOptions = {}): Promise<Session> {
    const clock = options.clock ?? systemClock;
    const sentAt = clock.now();
    const grant = await keeper.keepAlive(leaseId);
    const session = new Session(keeper, grant.id, grant.ttl, clock, options.onLost);
    session.renewed(sentAt);
    return session;
  }

  /** Aborts when the session is lost (not when it is closed). */
  get lost(): AbortSignal {
    return this.controller.signal;
  }

  /** Why the session was lost, or null while it is not. */
  get lostReason(): Error | null {
    return this.reason;
  }

  get state(): SessionState {
    return this.currentState;
  }

  /** Stop keeping the lease alive without revoking it (it expires after its TTL). */
  stop(): void {
    if (this.currentState === 'ALIVE') this.currentState = 'CLOSED';
    this.clearTimers();
  }

  /** Stop the keepalives and revoke the lease, deleting the keys bound to it. */
  async close(): Promise<void> {
    const wasAlive = this.currentState === 'ALIVE';
    this.stop();
    if (!wasAlive) return;
    try {
      await this.keeper.revokeLease(this.leaseId);
    } catch (error) {
      // Already gone is the outcome close() wants.
      if (!(error instanceof LeaseNotFoundError)) throw error;
    }
  }

  /** A keepalive sent at `sentAt` succeeded: the lease lives until at least sentAt + TTL. */
  private renewed(sentAt: number): void {
    if (this.currentState !== 'ALIVE') return;
    const ttlMs = this.ttlSeconds * 1000;
    if (this.deadline) this.clock.clearTimeout(this.deadline);
    this.deadline = this.clock.setTimeout(
      () => {
        this.lose(
          new BackendUnavailableError(
            `lease ${this.leaseId} lost: no keepalive reached the server for ${this.ttlSeconds}s (its TTL)`,
          ),
        );
      },
      sentAt + ttlMs - this.clock.now(),
    );
    this.schedule(ttlMs / 3);
  }

  private schedule(ms: number): void {
    if (this.timer) this.clock.clearTimeout(this.timer);
    this.timer = this.clock.setTimeout(() => {
      this.timer = null;
      void this.tick();
    }, ms);
  }

  private async tick(): Promise<void> {
    if (this.currentState !== 'ALIVE') return;
    const sentAt = this.clock.now();
    const ttlMs = this.ttlSeconds * 1000;
    this.inFlight = new AbortController();
    try {
      await this.keeper.keepAlive(this.leaseId, {
        signal: this.inFlight.signal,
        timeoutMs: Math.max(100, Math.round(ttlMs / 3)),
      });
      this.renewed(sentAt);
    } catch (error) {
      if (this.currentState !== 'ALIVE') return;
      if (!(error instanceof BackendUnavailableError)) {
        // The lease is gone, or the request itself is wrong: retrying cannot help.
        this.lose(error instanceof Error ? error : new Error(String(error)));
        return;
      }
      // Unreachable for now: try again soon; the deadline timer decides when it is too late.
      this.schedule(Math.min(RETRY_AFTER_FAILURE_MS, ttlMs / 3));
    } finally {
      this.inFlight = null;
    }
  }

  private lose(reason: Error): void {
    if (this.currentState !== 'ALIVE') return;
    this.currentState = 'LOST';
    this.reason = reason;
    this.clearTimers();
    this.controller.abort(reason);
    try {
      this.onLost?.(reason);
    } catch {
      // A listener's failure must not break the session's own bookkeeping.
    }
  }

  private clearTimers(): void {
    if (this.timer) this.clock.clearTimeout(this.timer);
    if (this.deadline) this.clock.clearTimeout(this.deadline);
    this.timer = null;
    this.deadline = null;
    this.inFlight?.abort();
  }
}
