/**
 * The node registry: which machines there are, what they are (tags, attributes,
 * facts their agent detected), and whether they are up.
 *
 * - `/muster/nodes/<name>`: the node's record (JSON), kept when the node is down;
 * - `/muster/nodes/<name>/alive`: bound to the agent's session lease, so the node
 *   is down as soon as the session dies (expiry, revocation) and nothing is
 *   written per keepalive.
 *
 * An agent registers again after every reconnect; that refreshes its record and
 * binds the alive key to its new lease.
 */
import type { Backend, KeyValue, LeaseId } from '../core/backend.js';
import { perStore } from '../core/per-store.js';
import type { ErrorCode } from '../core/error-catalogue.js';
import { MusterError } from '../core/errors.js';
import type { Clock } from '../core/clock.js';
import { validateName } from '../core/key-path.js';
import type { NodeInfo, NodeRegistration, NodeSummary } from '../api/agent-protocol.js';
import { nodeMatcher } from './query.js';

export const NODES_PREFIX = '/muster/nodes/';
export const nodeKeys = {
  record: (name: string) => `${NODES_PREFIX}${name}`,
  alive: (name: string) => `${NODES_PREFIX}${name}/alive`,
};

/** What is stored at `/muster/nodes/<name>`. */
interface NodeRecord {
  readonly name: string;
  readonly tags: string[];
  readonly attrs: Record<string, string>;
  readonly facts: Record<string, unknown>;
  readonly registeredAt: string;
  /** The last registration, or when the node was last seen going down (the liveness duty). */
  readonly lastSeen: string;
}

export class NodeNotFoundError extends MusterError {
  readonly code: ErrorCode = 'node_not_found';
  constructor(readonly node: string) {
    super(`no node is registered as ${JSON.stringify(node)}`);
  }
}

const encoder = new TextEncoder();
/** Up to this many records changed since the last list are read one by one; more, in one range. */
const FEW_CHANGED = 64;
/** The order of names (what localeCompare gives, without building a collator per comparison). */
const collator = new Intl.Collator();
const decoder = new TextDecoder();

interface ParsedRecord {
  readonly modRevision: number;
  readonly record: NodeRecord;
}

const parsedByStore = perStore(() => new Map<string, ParsedRecord>());

/** The node an alive key (`<prefix><name>/alive`, bound to a lease) says is up; null for any other key. */
function aliveNode(kv: KeyValue): string | null {
  const rest = kv.key.slice(NODES_PREFIX.length);
  const slash = rest.indexOf('/');
  return slash > 0 && rest.slice(slash + 1) === 'alive' && kv.lease !== null ? rest.slice(0, slash) : null;
}

export class NodeRegistry {
  /**
   * Records already parsed, by name with the revision they were read or written at
   * (a list of 10,000 parses only what changed). One per store, shared by the
   * server's registries (its routes, its job scheduler's directory): a hint only,
   * used when the revision listed is the one cached.
   */
  private readonly parsed: Map<string, ParsedRecord>;

  constructor(
    private readonly backend: Backend,
    private readonly clock: Clock,
  ) {
    this.parsed = parsedByStore(backend);
  }

  private iso(): string {
    return new Date(this.clock.now()).toISOString();
  }

  /** Register (or register again) a node whose agent holds `registration.lease`. */
  async register(name: string, registration: NodeRegistration): Promise<NodeInfo> {
    validateName(name);
    const existing = await this.backend.get(nodeKeys.record(name));
    const before = existing ? (JSON.parse(decoder.decode(existing.value)) as NodeRecord) : null;
    const now = this.iso();
    const record: NodeRecord = {
      name,
      tags: [...new Set(registration.tags)],
      attrs: registration.attrs,
      facts: registration.facts,
      registeredAt: before?.registeredAt ?? now,
      lastSeen: now,
    };
    const written = await this.backend.txn({
      compare: [],
      success: [
        { type: 'put', key: nodeKeys.record(name), value: encoder.encode(JSON.stringify(record)) },
        { type: 'put', key: nodeKeys.alive(name), value: encoder.encode(now), lease: registration.lease as LeaseId },
      ],
      failure: [],
    });
    // The next list (a job's vote, say) need not read and parse it again.
    this.parsed.set(name, { modRevision: written.revision, record });
    return this.info(record, true);
  }

  /**
   * Every registered node, or those `query` matches (docs/queries.md), by name.
   * `facts: false` answers summaries: no facts (a query may still match on them),
   * no registeredAt; what a list of thousands needs, and a fraction of the bytes.
   */
  async list(query?: string, options?: { facts?: true }): Promise<NodeInfo[]>;
  async list(query: string | undefined, options: { facts: false }): Promise<NodeSummary[]>;
  async list(query?: string, options: { facts?: boolean } = {}): Promise<NodeSummary[]> {
    const matches = query === undefined ? null : nodeMatcher(query);
    // Keys only first (names, revisions, leases: no values); then the values of the
    // records changed since the last list, one by one when few, else in one read.
    let kvs = (await this.backend.range({ key: NODES_PREFIX, prefix: true, keysOnly: true })).kvs;
    const changed = kvs.filter((kv) => {
      const rest = kv.key.slice(NODES_PREFIX.length);
      return !rest.includes('/') && this.parsed.get(rest)?.modRevision !== kv.modRevision;
    });
    const fetched = new Map<string, KeyValue | null>();
    if (changed.length > FEW_CHANGED) kvs = (await this.backend.range({ key: NODES_PREFIX, prefix: true })).kvs;
    else if (changed.length > 0) {
      const values = await Promise.all(changed.map((kv) => this.backend.get(kv.key)));
      changed.forEach((kv, i) => fetched.set(kv.key, values[i] ?? null));
    }
    const records = new Map<string, NodeRecord>();
    const alive = new Set<string>();
    const parsed = new Map<string, ParsedRecord>();
    for (const listed of kvs) {
      const rest = listed.key.slice(NODES_PREFIX.length);
      const slash = rest.indexOf('/');
      if (slash < 0) {
        const known = this.parsed.get(rest);
        if (known && known.modRevision === listed.modRevision) {
          records.set(rest, known.record);
          parsed.set(rest, known);
          continue;
        }
        // Read with its value (in the full read, or just now: null if it went since).
        const kv = fetched.has(listed.key) ? fetched.get(listed.key) : listed;
        if (!kv) continue;
        try {
          const record = JSON.parse(decoder.decode(kv.value)) as NodeRecord;
          records.set(rest, record);
          parsed.set(rest, { modRevision: kv.modRevision, record });
        } catch {
          // Not a record this registry wrote: left out.
        }
      } else {
        const node = aliveNode(listed);
        if (node !== null) alive.add(node);
      }
    }
    // Only what is still there is kept (a forgotten node's record goes with it).
    this.parsed.clear();
    for (const [name, entry] of parsed) this.parsed.set(name, entry);
    const now = this.iso();
    const nodes: NodeSummary[] = [];
    for (const [name, record] of records) {
      const up = alive.has(name);
      if (matches && !matches({ ...this.info(record, up, now), up })) continue;
      nodes.push(options.facts === false ? this.summary(record, up, now) : this.info(record, up, now));
    }
    return nodes.sort((a, b) => collator.compare(a.name, b.name));
  }

  /**
   * The names of the nodes up now: keys only, no record read (the job scheduler
   * asks every other second while nodes run).
   */
  async upNames(): Promise<Set<string>> {
    const range = await this.backend.range({ key: NODES_PREFIX, prefix: true, keysOnly: true });
    const up = new Set<string>();
    for (const kv of range.kvs) {
      const node = aliveNode(kv);
      if (node !== null) up.add(node);
    }
    return up;
  }

  async get(name: string): Promise<NodeInfo> {
    validateName(name);
    const range = await this.backend.range({ key: nodeKeys.record(name), prefix: true });
    const recordKv = range.kvs.find((kv) => kv.key === nodeKeys.record(name));
    if (!recordKv) throw new NodeNotFoundError(name);
    const up = range.kvs.some((kv) => kv.key === nodeKeys.alive(name) && kv.lease !== null);
    return this.info(JSON.parse(decoder.decode(recordKv.value)) as NodeRecord, up);
  }

  /** Forget a node (its agent registers it again if it is still running); false when there was none. */
  async remove(name: string): Promise<boolean> {
    validateName(name);
    const result = await this.backend.txn({
      compare: [],
      success: [
        { type: 'delete', key: nodeKeys.record(name) },
        { type: 'delete', key: `${nodeKeys.record(name)}/`, prefix: true },
      ],
      failure: [],
    });
    const first = result.results[0];
    return first?.type === 'delete' && first.deleted > 0;
  }

  /** Record that a node went down now (its alive key was deleted): its last-seen time. */
  async markDown(name: string): Promise<void> {
    const kv = await this.backend.get(nodeKeys.record(name));
    if (!kv) return;
    const record = JSON.parse(decoder.decode(kv.value)) as NodeRecord;
    await this.backend.txn({
      compare: [{ key: nodeKeys.record(name), target: 'modRevision', op: '=', value: kv.modRevision }],
      success: [
        {
          type: 'put',
          key: nodeKeys.record(name),
          value: encoder.encode(JSON.stringify({ ...record, lastSeen: this.iso() })),
        },
      ],
      failure: [],
    });
  }

  private summary(record: NodeRecord, up: boolean, now: string): NodeSummary {
    return {
      name: record.name,
      status: up ? 'up' : 'down',
      tags: record.tags,
      attrs: record.attrs,
      lastSeen: up ? now : record.lastSeen,
    };
  }

  private info(record: NodeRecord, up: boolean, now?: string): NodeInfo {
    return {
      name: record.name,
      status: up ? 'up' : 'down',
      tags: record.tags,
      attrs: record.attrs,
      facts: record.facts,
      registeredAt: record.registeredAt,
      lastSeen: up ? (now ?? this.iso()) : record.lastSeen,
    };
  }
}
