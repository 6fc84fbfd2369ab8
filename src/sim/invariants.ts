import type { History, Holding } from './history.js';

/** A broken invariant: which, when (virtual ms since the start), and what happened. */
export interface Violation {
  readonly invariant: string;
  readonly at: number;
  readonly message: string;
}

/**
 * Check the recorded history. What a node believed is not evidence: a holding
 * (leadership, lock, once run) lasts from the moment the server told the node
 * it held it until it let go or its lease ended on the server (revoked, or a
 * TTL after the last keepalive the server answered), whichever came first.
 * `end` is when the run stopped (holdings still open end there).
 */
export function checkInvariants(history: History, end: number): Violation[] {
  const violations: Violation[] = [];
  const until = (h: Holding) => Math.min(h.end ?? end, history.leaseEnd(h.lease), end);

  // One leader per election at any time.
  for (const [name, terms] of byName(history.leaderships)) {
    for (const [a, b] of overlaps(terms, until))
      violations.push({
        invariant: 'one leader',
        at: b.start,
        message: `election ${name}: ${b.node} was told it leads at ${seconds(b.start)} while ${a.node} led (${seconds(a.start)} to ${seconds(until(a))})`,
      });
  }
  // A leader acts only while it leads.
  for (const action of history.leaderActions) {
    const leads = history.leaderships.some(
      (t) => t.name === action.name && t.lease === action.lease && t.start <= action.at && action.at < until(t),
    );
    if (!leads)
      violations.push({
        invariant: 'one leader',
        at: action.at,
        message: `election ${action.name}: ${action.node} acted as leader (${action.what}) without leading`,
      });
  }
  // A lock never held by two live sessions.
  for (const [name, holds] of byName(history.lockHolds)) {
    for (const [a, b] of overlaps(holds, until))
      violations.push({
        invariant: 'one lock holder',
        at: b.start,
        message: `lock ${name}: ${b.node} got it at ${seconds(b.start)} while ${a.node} held it (${seconds(a.start)} to ${seconds(until(a))})`,
      });
  }
  // A once command: runs never overlap, and exactly one run succeeds, whose result everyone sees.
  for (const [name, runs] of byName(history.onceRuns)) {
    for (const [a, b] of overlaps(runs, until))
      violations.push({
        invariant: 'once',
        at: b.start,
        message: `once ${name}: ${b.node} started a run at ${seconds(b.start)} while ${a.node}'s run was live`,
      });
    const completed = runs.filter((r) => r.completed);
    for (const extra of completed.slice(1))
      violations.push({
        invariant: 'once',
        at: extra.end ?? extra.start,
        message: `once ${name}: completed again by ${extra.node} (first by ${completed[0]?.node})`,
      });
  }
  const onceNames = new Set([...history.onceRuns.map((r) => r.name), ...history.onceSeen.map((s) => s.name)]);
  for (const name of onceNames) {
    const success = history.onceRuns.find((r) => r.name === name && r.completed);
    for (const seen of history.onceSeen.filter((s) => s.name === name)) {
      if (!success || seen.token !== success.token)
        violations.push({
          invariant: 'once',
          at: seen.at,
          message: `once ${name}: ${seen.node} was given the result of run ${seen.token}, but ${success ? `run ${success.token} (${success.node}) is the one that succeeded` : 'no run succeeded'}`,
        });
    }
  }
  // A barrier opens only when enough distinct participants with live sessions have arrived.
  const firstRelease = new Map<string, { at: number; count: number; node: string }>();
  for (const release of history.releases) {
    const known = firstRelease.get(release.name);
    if (!known || release.at < known.at) firstRelease.set(release.name, release);
  }
  for (const [name, release] of firstRelease) {
    const present = new Set(
      history.arrivals
        .filter((a) => a.name === name && a.at <= release.at && history.leaseEnd(a.lease) >= release.at)
        .map((a) => a.id),
    );
    if (present.size < release.count)
      violations.push({
        invariant: 'barrier',
        at: release.at,
        message: `barrier ${name}: released to ${release.node} at ${seconds(release.at)} with ${present.size} of ${release.count} participants present`,
      });
  }
  for (const problem of history.problems) violations.push(problem);
  return violations.sort((a, b) => a.at - b.at);
}

function byName<T extends { readonly name: string }>(items: readonly T[]): Map<string, T[]> {
  const map = new Map<string, T[]>();
  for (const item of items) {
    const list = map.get(item.name);
    if (list) list.push(item);
    else map.set(item.name, [item]);
  }
  return map;
}

/**
 * Pairs of holdings of different sessions whose half-open intervals
 * [start, until) overlap: each later holding paired with the one it overlaps.
 */
function overlaps<T extends Holding>(holdings: readonly T[], until: (h: T) => number): [T, T][] {
  const sorted = holdings.filter((h) => until(h) > h.start).sort((a, b) => a.start - b.start);
  const pairs: [T, T][] = [];
  let open: T[] = [];
  for (const h of sorted) {
    open = open.filter((o) => until(o) > h.start);
    const other = open.find((o) => o.lease !== h.lease);
    if (other) pairs.push([other, h]);
    open.push(h);
  }
  return pairs;
}

/** Virtual ms as seconds, for messages. */
export function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(3)}s`;
}
