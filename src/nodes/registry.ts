/**
 * The node registry, on the Backend interface (both stores alike).
 *
 * - `/muster/nodes/<name>`: the node's record (tags, attrs, facts,
 *   registeredAt, lastSeen), JSON, written at each registration.
 * - `/muster/nodes/<name>/alive`: bound to the agent's session lease, so the
 *   node is `up` exactly while that lease lives; nothing is written per
 *   keepalive. A lease that ends (the agent died, its session expired) deletes
 *   the key, and the node reads `down`. (Any key of the node bound to a lease
 *   counts: the jobs bench's simulated agents bind the record itself.)
 *
 * `watchNodeLiveness` follows the liveness keys, for the jobs scheduler
 * ("node went down").
 */
import type { Backend, KeyValue, LeaseId, Watch } from '../core/backend.js';
import type { Clock } from '../core/clock.js';
import { InvalidArgumentError, NodeNotFoundError } from '../core/errors.js';
import { validateName } from '../core/key-path.js';
import type { NodeInfo, NodeRegistration } from '../api/agent-protocol.js';
import type { NodeQuery } from './query.js';
import { matchNode, parseNodeQuery } from './query.js';

export const NODES_PREFIX = '/muster/nodes/';
const ALIVE = '/alive';

export const nodeKey = (name: string): string => NODES_PREFIX + name;
export const nodeLiveKey = (name: string): string => NODES_PREFIX + name + ALIVE;

/** What the record key holds. */
interface NodeRecord {
  readonly tags: string[];
  readonly attrs: Record<string, string>;
  readonly facts: Record<string, unknown>;
  /** ms since the epoch. */
  readonly registeredAt: number;
  /** ms since the epoch: the last registration. */
  readonly lastSeen: number;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** A node name: 1-128 letters, digits, ".", "_" or "-", starting with a letter or digit (code `invalid_name`). */
export function validateNodeName(name: string): string {
  return validateName(name, 'node name');
}

function decodeRecord(kv: KeyValue): NodeRecord | null {
  try {
    const parsed = JSON.parse(decoder.decode(kv.value)) as Partial<NodeRecord>;
    if (typeof parsed !== 'object' || parsed === null) return null;
    return {
      tags: Array.isArray(parsed.tags) ? parsed.tags.filter((t): t is string => typeof t === 'string') : [],
      attrs: typeof parsed.attrs === 'object' && parsed.attrs !== null ? parsed.attrs : {},
      facts: typeof parsed.facts === 'object' && parsed.facts !== null ? parsed.facts : {},
      registeredAt: typeof parsed.registeredAt === 'number' ? parsed.registeredAt : 0,
      lastSeen: typeof parsed.lastSeen === 'number' ? parsed.lastSeen : 0,
    };
  } catch {
    return null;
  }
}

function toInfo(name: string, record: NodeRecord, up: boolean, now: number): NodeInfo {
  return {
    name,
    status: up ? 'up' : 'down',
    tags: record.tags,
    attrs: record.attrs,
    facts: record.facts,
    registeredAt: new Date(record.registeredAt).toISOString(),
    lastSeen: new Date(up ? Math.max(now, record.lastSeen) : record.lastSeen).toISOString(),
  };
}

function checkRegistration(registration: NodeRegistration): void {
  const seen = new Set<string>();
  for (const tag of registration.tags) {
    if (/[\s()"]/.test(tag) || tag.length === 0) {
      throw new InvalidArgumentError(
        `invalid tag ${JSON.stringify(tag.slice(0, 80))}: no white space, parentheses or quotes`,
        'invalid_request',
      );
    }
    seen.add(tag);
  }
  for (const key of Object.keys(registration.attrs)) {
    if (!/^[A-Za-z0-9_][A-Za-z0-9_.\-/]{0,127}$/.test(key) || ['tag', 'name', 'status'].includes(key.toLowerCase())) {
      throw new InvalidArgumentError(
        `invalid attribute name ${JSON.stringify(key.slice(0, 80))}: letters, digits, "_", ".", "-", "/", ` +
          'starting with a letter, digit or "_", and not tag, name or status (they mean something else in a query)',
        'invalid_request',
      );
    }
  }
}

/**
 * Register (or re-register) `name`: write its record and bind its liveness key
 * to `registration.lease`. The first registration's time is kept. Throws
 * LeaseNotFoundError when the lease has ended.
 */
export async function registerNode(
  backend: Backend,
  clock: Clock,
  name: string,
  registration: NodeRegistration,
): Promise<NodeInfo> {
  validateNodeName(name);
  checkRegistration(registration);
  const key = nodeKey(name);
  for (;;) {
    const existing = await backend.get(key);
    const previous = existing ? decodeRecord(existing) : null;
    const now = clock.now();
    const record: NodeRecord = {
      tags: [...new Set(registration.tags)],
      attrs: { ...registration.attrs },
      facts: { ...registration.facts },
      registeredAt: previous?.registeredAt || now,
      lastSeen: now,
    };
    const result = await backend.txn({
      compare: [{ key, target: 'modRevision', op: '=', value: existing?.modRevision ?? 0 }],
      success: [
        { type: 'put', key, value: encoder.encode(JSON.stringify(record)) },
        {
          type: 'put',
          key: nodeLiveKey(name),
          value: encoder.encode(JSON.stringify({ lease: registration.lease, since: now })),
          lease: registration.lease,
        },
      ],
      failure: [],
    });
    if (result.succeeded) return toInfo(name, record, true, now);
    // Another registration of the same name won the race: try again on top of it.
  }
}

/** Every registered node (matching `query` when given: text or a parsed query), sorted by name. */
export async function listNodes(backend: Backend, clock: Clock, query?: string | NodeQuery): Promise<NodeInfo[]> {
  const ast = typeof query === 'string' ? (query.trim() === '' ? null : parseNodeQuery(query)) : (query ?? null);
  const range = await backend.range({ key: NODES_PREFIX, prefix: true });
  const records = new Map<string, NodeRecord>();
  const up = new Set<string>();
  for (const kv of range.kvs) {
    const rest = kv.key.slice(NODES_PREFIX.length);
    const slash = rest.indexOf('/');
    const name = slash < 0 ? rest : rest.slice(0, slash);
    if (kv.lease !== null) up.add(name);
    if (slash < 0) {
      const record = decodeRecord(kv);
      if (record !== null) records.set(name, record);
    }
  }
  const now = clock.now();
  const nodes: NodeInfo[] = [];
  for (const [name, record] of records) {
    const info = toInfo(name, record, up.has(name), now);
    if (ast === null || matchNode(ast, info)) nodes.push(info);
  }
  return nodes;
}

/** One node; NodeNotFoundError when none is registered under `name`. */
export async function getNode(backend: Backend, clock: Clock, name: string): Promise<NodeInfo> {
  validateNodeName(name);
  const result = await backend.txn({
    compare: [],
    success: [
      { type: 'get', key: nodeKey(name) },
      { type: 'get', key: nodeKey(name) + '/', prefix: true, keysOnly: true },
    ],
    failure: [],
  });
  const [record, under] = result.results as unknown as [{ kvs: KeyValue[] }, { kvs: KeyValue[] }];
  const kv = record.kvs[0];
  const decoded = kv ? decodeRecord(kv) : null;
  if (!kv || decoded === null) throw new NodeNotFoundError(name);
  const up = kv.lease !== null || under.kvs.some((k) => k.lease !== null);
  return toInfo(name, decoded, up, clock.now());
}

/** The lease the node is up on, or null when it is down. */
export async function nodeLease(backend: Backend, name: string): Promise<LeaseId | null> {
  const kv = await backend.get(nodeLiveKey(validateNodeName(name)));
  return kv?.lease ?? (await backend.get(nodeKey(name)))?.lease ?? null;
}

/** Forget a node (its record and liveness); NodeNotFoundError when none is registered under `name`. */
export async function removeNode(backend: Backend, name: string): Promise<void> {
  validateNodeName(name);
  const result = await backend.txn({
    compare: [],
    success: [
      { type: 'delete', key: nodeKey(name) },
      { type: 'delete', key: nodeKey(name) + '/', prefix: true },
    ],
    failure: [],
  });
  const deleted = result.results[0] as { deleted: number };
  if (deleted.deleted === 0) throw new NodeNotFoundError(name);
}

/** A node going up (registered on a live lease) or down (its lease ended, or it was removed). */
export interface NodeLivenessEvent {
  readonly name: string;
  readonly status: 'up' | 'down';
  /** The store revision of the change. */
  readonly revision: number;
  /** The lease it is up on (status up). */
  readonly lease?: LeaseId;
}

/** A running liveness watch: batches of changes, whole revisions each. */
export interface NodeLivenessWatch extends AsyncIterable<NodeLivenessEvent[]> {
  close(): void;
}

/**
 * Follow nodes going up and down, from `fromRevision` (absent: from now on).
 * Throws CompactedError (while iterating) when that revision is no longer
 * retained: read `listNodes` again and resume from its revision.
 */
export function watchNodeLiveness(backend: Backend, options: { fromRevision?: number } = {}): NodeLivenessWatch {
  const watch: Watch = backend.watch(NODES_PREFIX, {
    prefix: true,
    prevKv: true,
    ...(options.fromRevision !== undefined ? { fromRevision: options.fromRevision } : {}),
  });
  return {
    close: () => watch.close(),
    async *[Symbol.asyncIterator]() {
      for await (const batch of watch) {
        const changes: NodeLivenessEvent[] = [];
        for (const event of batch.events) {
          const rest = event.kv.key.slice(NODES_PREFIX.length);
          const alive = rest.endsWith(ALIVE) && rest.indexOf('/') === rest.length - ALIVE.length;
          const record = !rest.includes('/');
          if (!alive && !record) continue;
          const name = alive ? rest.slice(0, -ALIVE.length) : rest;
          if (event.type === 'put') {
            // A record written without a lease says nothing about liveness.
            if (event.kv.lease === null) continue;
            changes.push({ name, status: 'up', revision: event.revision, lease: event.kv.lease });
          } else {
            // A record without a lease deleted (removeNode) goes with its alive key: one event.
            if (record && event.prevKv && event.prevKv.lease === null) continue;
            changes.push({ name, status: 'down', revision: event.revision });
          }
        }
        if (changes.length > 0) yield changes;
      }
    },
  };
}
