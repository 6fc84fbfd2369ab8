import type { LeaseId } from '../../core/backend.js';
import type { Clock, TimerHandle } from '../../core/clock.js';
import { LeaseNotFoundError } from '../../core/errors.js';

/** A granted lease as the store keeps it in memory: its TTL and when it expires. */
interface LiveLease {
  readonly ttl: number;
  expiresAt: number;
}

/**
 * The leases' clocks: which leases are live and until when, kept in memory (the
 * table `leases` holds only ids and TTLs; a restart gives every lease its full
 * TTL again), and one timer for the earliest expiry. When leases expire, `expire`
 * is told their ids; each stays "expiring" (not expired again) until `expired(id)`
 * says its revoking write is done.
 */
export class LiveLeases {
  private readonly leases = new Map<LeaseId, LiveLease>();
  /** Leases past their expiry whose revoking write is queued. */
  private readonly expiring = new Set<LeaseId>();
  private timer: TimerHandle | null = null;
  private timerAt = Infinity;
  private closed = false;

  constructor(
    private readonly clock: Clock,
    private readonly expire: (ids: readonly LeaseId[]) => void,
  ) {}

  has(id: LeaseId): boolean {
    return this.leases.has(id);
  }

  /** The lease if it is live (granted, not revoked, not past its expiry); LeaseNotFoundError otherwise. */
  live(id: LeaseId): { readonly ttl: number; readonly expiresAt: number } {
    const lease = this.leases.get(id);
    if (!lease || lease.expiresAt <= this.clock.now()) throw new LeaseNotFoundError(id);
    return lease;
  }

  isLive(id: LeaseId): boolean {
    const lease = this.leases.get(id);
    return lease !== undefined && lease.expiresAt > this.clock.now();
  }

  /** Renew a live lease to its full TTL; returns the TTL. */
  renew(id: LeaseId): number {
    const lease = this.leases.get(id);
    if (!lease || lease.expiresAt <= this.clock.now()) throw new LeaseNotFoundError(id);
    lease.expiresAt = this.clock.now() + lease.ttl * 1000;
    return lease.ttl;
  }

  liveIds(): LeaseId[] {
    const now = this.clock.now();
    return [...this.leases].filter(([, l]) => l.expiresAt > now).map(([id]) => id);
  }

  /** Apply a committed batch's grants (`ttl`) and ends (`ttl: null`), and reset the timer. */
  apply(changes: readonly { readonly id: LeaseId; readonly ttl: number | null }[]): void {
    if (changes.length === 0) return;
    const now = this.clock.now();
    for (const change of changes) {
      if (change.ttl === null) this.leases.delete(change.id);
      else this.leases.set(change.id, { ttl: change.ttl, expiresAt: now + change.ttl * 1000 });
    }
    this.schedule();
  }

  /** The revoking write of an expired lease is done (or failed): it may expire again if still there. */
  expired(id: LeaseId): void {
    this.expiring.delete(id);
    this.schedule();
  }

  close(): void {
    this.closed = true;
    if (this.timer) this.clock.clearTimeout(this.timer);
    this.timer = null;
  }

  /** Keep the timer set for the earliest expiry not already being handled. */
  private schedule(): void {
    let earliest = Infinity;
    for (const [id, lease] of this.leases) {
      if (!this.expiring.has(id)) earliest = Math.min(earliest, lease.expiresAt);
    }
    if (earliest === this.timerAt && this.timer) return;
    if (this.timer) this.clock.clearTimeout(this.timer);
    this.timer = null;
    this.timerAt = earliest;
    if (earliest === Infinity || this.closed) return;
    this.timer = this.clock.setTimeout(() => this.fire(), earliest - this.clock.now());
  }

  private fire(): void {
    this.timer = null;
    this.timerAt = Infinity;
    if (this.closed) return;
    const now = this.clock.now();
    const due = [...this.leases].filter(([id, l]) => l.expiresAt <= now && !this.expiring.has(id)).map(([id]) => id);
    for (const id of due) this.expiring.add(id);
    if (due.length > 0) this.expire(due);
    this.schedule();
  }
}
