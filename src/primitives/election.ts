import type { Backend, KeyValue, LeaseId } from '../core/backend.js';
import { NotHolderError } from '../core/errors.js';
import { layout, validateName } from './layout.js';
import { checkWaiterKey, joinQueue, leaveQueue, queueOf, waitForTurn, withQueueCleanup } from './waiter-queue.js';
import type { Leadership } from './result-schemas.js';

export interface Leader {
  readonly key: string;
  readonly value: Uint8Array;
  readonly token: number;
  readonly lease: LeaseId | null;
  /** The revision at which this leader was observed. */
  readonly revision: number;
}

const electionName = (name: string) => validateName(name, 'election name');

/**
 * Campaign in election `name` with `value`, first come first served; resolves
 * when the caller leads. A candidate that already campaigned with this session
 * keeps its place and has its value updated.
 */
export async function campaign(
  backend: Backend,
  name: string,
  value: Uint8Array,
  lease: LeaseId,
  signal?: AbortSignal,
): Promise<Leadership> {
  const prefix = layout.electionCandidates(electionName(name));
  const candidate = await joinQueue(backend, prefix, lease, value);
  const leadership = { election: name, key: candidate.key, token: candidate.token, lease };
  if (!candidate.created && Buffer.compare(Buffer.from(candidate.value), Buffer.from(value)) !== 0) {
    await proclaim(backend, leadership, value);
  }
  await withQueueCleanup(backend, candidate, () => waitForTurn(backend, prefix, candidate, 1, lease, signal));
  return leadership;
}

/** Change the leader's published value. Throws NotHolderError if no longer a candidate. */
export async function proclaim(backend: Backend, leadership: Leadership, value: Uint8Array): Promise<number> {
  checkWaiterKey(leadership.key, leadership.token, layout.electionCandidates(electionName(leadership.election)));
  const result = await backend.txn({
    compare: [{ key: leadership.key, target: 'createRevision', op: '=', value: leadership.token }],
    success: [{ type: 'put', key: leadership.key, value, lease: leadership.lease }],
    failure: [],
  });
  if (!result.succeeded) throw new NotHolderError(leadership.key, leadership.token);
  return result.revision;
}

/** Step down (or withdraw a candidacy). Throws NotHolderError if already gone (or not a candidate of this election). */
export async function resign(
  backend: Backend,
  leadership: Pick<Leadership, 'election' | 'key' | 'token'>,
): Promise<void> {
  const { election, key, token } = leadership;
  checkWaiterKey(key, token, layout.electionCandidates(electionName(election)));
  if (!(await leaveQueue(backend, key, token))) throw new NotHolderError(key, token);
}

/** The current leader, or null. */
export async function leader(backend: Backend, name: string): Promise<Leader | null> {
  const { revision, waiters } = await queueOf(backend, layout.electionCandidates(electionName(name)));
  return toLeader(waiters[0], revision);
}

/**
 * Every change of leader (or of its value), in order, starting with the current
 * one (null when there is none). Ends when `signal` aborts.
 */
export async function* observe(backend: Backend, name: string, signal?: AbortSignal): AsyncGenerator<Leader | null> {
  const prefix = layout.electionCandidates(electionName(name));
  const { revision, waiters } = await queueOf(backend, prefix);
  const candidates = new Map<string, KeyValue>(waiters.map((w) => [w.key, w]));
  let current = toLeader(waiters[0], revision);
  yield current;
  const watch = backend.watch(prefix, { prefix: true, fromRevision: revision + 1 });
  const onAbort = () => watch.close();
  signal?.addEventListener('abort', onAbort, { once: true });
  try {
    for await (const batch of watch) {
      for (const event of batch.events) {
        if (event.type === 'put') candidates.set(event.kv.key, event.kv);
        else candidates.delete(event.kv.key);
      }
      let first: KeyValue | undefined;
      for (const c of candidates.values()) if (!first || c.createRevision < first.createRevision) first = c;
      const next = toLeader(first, batch.events[batch.events.length - 1]?.revision ?? revision);
      if (!sameLeader(current, next)) {
        current = next;
        yield current;
      }
    }
  } finally {
    signal?.removeEventListener('abort', onAbort);
    watch.close();
  }
}

function toLeader(kv: KeyValue | undefined, revision: number): Leader | null {
  return kv ? { key: kv.key, value: kv.value, token: kv.createRevision, lease: kv.lease, revision } : null;
}

function sameLeader(a: Leader | null, b: Leader | null): boolean {
  if (a === null || b === null) return a === b;
  return a.key === b.key && a.token === b.token && Buffer.compare(Buffer.from(a.value), Buffer.from(b.value)) === 0;
}

export type { Leadership };
