/**
 * What happened in a simulation: the timeline of events, and the facts the
 * invariants are checked against. Times are virtual milliseconds since the
 * simulation started.
 */

/** Virtual ms as seconds, for the timeline and messages. */
export function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(3)}s`;
}

/** A state and its version as the timeline and messages write it: `state@version`, or `state` when it has none. */
export function describeValue(value: { readonly state: string; readonly version: string | null }): string {
  return value.version === null ? value.state : `${value.state}@${value.version}`;
}

/** One line of the timeline. */
export interface SimEvent {
  readonly at: number;
  /** A node's name, or "sim" for the simulator's own notes. */
  readonly node: string;
  readonly what: string;
}

/** A lease as the server saw it: granted, renewed by keepalives, revoked. */
export interface LeaseRecord {
  readonly id: string;
  readonly node: string;
  readonly ttlMs: number;
  readonly grantedAt: number;
  lastRenewal: number;
  revokedAt: number | null;
}

/** Something held under a lease from `start` until `end` (null: until the lease ends). */
export interface Holding {
  /** The lock, election or once name. */
  readonly name: string;
  readonly node: string;
  readonly lease: string;
  readonly start: number;
  end: number | null;
}

export interface OnceRun extends Holding {
  readonly token: number;
  completed: boolean;
}

export interface OnceSeen {
  readonly name: string;
  readonly node: string;
  readonly token: number;
  readonly at: number;
}

/** A write a node made as the leader of `name` (it must still lead then). */
export interface LeaderAction {
  readonly name: string;
  readonly node: string;
  readonly lease: string;
  readonly at: number;
  readonly what: string;
}

export interface BarrierArrival {
  readonly name: string;
  readonly id: string;
  readonly lease: string;
  readonly at: number;
}

export interface BarrierRelease {
  readonly name: string;
  readonly node: string;
  readonly count: number;
  readonly at: number;
}

/** An agent was handed a job (the server's assignment reached it). */
export interface JobSeen {
  readonly job: string;
  readonly node: string;
  readonly at: number;
}

/** A state report the server took from a node. */
export interface StateReport {
  readonly node: string;
  readonly group: string;
  readonly state: string;
  readonly version: string | null;
  readonly at: number;
}

/** What a node is to be in, and what it reported, per group, at the end of the run (read from the server). */
export interface EndState {
  readonly node: string;
  readonly group: string;
  /** The node is up at the end (not crashed, registered, its session alive). */
  readonly up: boolean;
  /** The effective desired state (`GET /v1/desired/<group>?node=`). */
  readonly desired: { readonly state: string; readonly version: string | null } | null;
  readonly actual: { readonly state: string; readonly version: string | null } | null;
}

/** A plan as the server's record has it at the end of the run; times are virtual ms since the start. */
export interface PlanSeen {
  readonly id: string;
  readonly name: string;
  readonly state: string;
  readonly reason: string | null;
  readonly steps: readonly {
    readonly id: string;
    readonly group: string;
    readonly after: readonly string[];
    readonly state: string;
    readonly startedAt: number | null;
    readonly finishedAt: number | null;
    /** The desired state the step set, and the one before (null: it set none). */
    readonly desired: { readonly state: string; readonly version: string | null } | null;
    readonly previous: { readonly state: string; readonly version: string | null } | null;
    /** Its rolling settings as the plan file gives them (null: not rolling). */
    readonly rolling: {
      readonly canary: number;
      readonly batch: { readonly count: number } | { readonly percent: number };
    } | null;
    /** Nodes of the group left out: down when the step started, or when their batch did. */
    readonly skipped: number;
    readonly batches: readonly {
      readonly nodes: readonly string[];
      readonly jobId: string | null;
      readonly startedAt: number | null;
    }[];
  }[];
}

/** A problem found while running (not by the checker afterwards): an unexpected error, the limit. */
export interface Problem {
  readonly at: number;
  readonly invariant: string;
  readonly message: string;
}

export class History {
  readonly events: SimEvent[] = [];
  readonly leases = new Map<string, LeaseRecord>();
  readonly leaderships: Holding[] = [];
  readonly lockHolds: Holding[] = [];
  readonly onceRuns: OnceRun[] = [];
  readonly onceSeen: OnceSeen[] = [];
  readonly leaderActions: LeaderAction[] = [];
  readonly arrivals: BarrierArrival[] = [];
  readonly releases: BarrierRelease[] = [];
  readonly problems: Problem[] = [];
  readonly jobsSeen: JobSeen[] = [];
  readonly stateReports: StateReport[] = [];
  readonly endStates: EndState[] = [];
  readonly plans: PlanSeen[] = [];
  crashes = 0;
  partitions = 0;
  requests = 0;
  maxWaitMs = 0;

  constructor(private readonly now: () => number) {}

  /** Virtual ms since the start. */
  get time(): number {
    return this.now();
  }

  record(node: string, what: string): void {
    this.events.push({ at: this.now(), node, what });
  }

  problem(invariant: string, message: string): void {
    this.problems.push({ at: this.now(), invariant, message });
  }

  waited(ms: number): void {
    if (ms > this.maxWaitMs) this.maxWaitMs = ms;
  }

  leaseGranted(id: string, ttlSeconds: number, node: string): void {
    const at = this.now();
    this.leases.set(id, { id, node, ttlMs: ttlSeconds * 1000, grantedAt: at, lastRenewal: at, revokedAt: null });
  }

  leaseRenewed(id: string): void {
    const lease = this.leases.get(id);
    if (lease) lease.lastRenewal = this.now();
  }

  leaseRevoked(id: string): void {
    const lease = this.leases.get(id);
    if (lease && lease.revokedAt === null) lease.revokedAt = this.now();
  }

  /**
   * When the lease ended on the server: revoked, or a TTL after its last
   * renewal (a keepalive after that fails, so none is recorded). Infinity for
   * a lease the simulation never saw granted.
   */
  leaseEnd(id: string): number {
    const lease = this.leases.get(id);
    if (!lease) return Infinity;
    const expiry = lease.lastRenewal + lease.ttlMs;
    return lease.revokedAt === null ? expiry : Math.min(lease.revokedAt, expiry);
  }
}
