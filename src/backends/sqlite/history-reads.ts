/**
 * Reads of the keyspace as it is or was: a range now or at a past revision, and
 * the history of events that watches replay.
 */
import type { RangeRequest, RangeResult, WatchEvent } from '../../core/backend.js';
import { CompactedError, FutureRevisionError } from '../../core/errors.js';
import { prefixEnd } from '../../core/key-path.js';
import type { KeyFilter } from './sqlite-watch.js';
import type { HistoryRow, KeyOnlyRow, KvRow, Statements } from './statements.js';
import { EMPTY, keyOnlyRowToKv, rowToKv, tombstone } from './statements.js';

/** Range as of `request.revision`, or as of `latest` (the state the caller sees). */
export function readRange(
  stmt: Statements,
  request: RangeRequest,
  latest: number,
  compactRevision: number,
): RangeResult {
  const at = request.revision && request.revision > 0 ? request.revision : 0;
  if (at > latest) throw new FutureRevisionError(at, latest);
  if (at > 0 && at < compactRevision) throw new CompactedError(at, Math.max(1, compactRevision));
  const prefix = request.prefix ?? false;
  const limit = request.limit && request.limit > 0 ? request.limit : Infinity;
  if ((at === 0 || at === latest) && prefix) {
    const end = prefixEnd(request.key);
    const limited = limit !== Infinity;
    // Keys only (a liveness check lists 20,000): no values read, no row objects.
    const kvs = request.keysOnly
      ? (
          (limited
            ? stmt.keysOnlyInRangeLimit.all(request.key, end, limit)
            : stmt.keysOnlyInRange.all(request.key, end)) as KeyOnlyRow[]
        ).map(keyOnlyRowToKv)
      : (
          (limited
            ? stmt.keysInRangeLimit.all(request.key, end, limit)
            : stmt.keysInRange.all(request.key, end)) as KvRow[]
        ).map(rowToKv);
    // A full page of a large prefix (a watch learning the revision reads one key of
    // 20,000): the rest are counted, not read.
    const count = kvs.length < limit ? kvs.length : (stmt.countInRange.get(request.key, end) as { n: number }).n;
    return { revision: latest, kvs, more: count > kvs.length, count };
  }
  let rows: KvRow[];
  if (at === 0 || at === latest) {
    rows = stmt.getKey.all(request.key) as KvRow[];
  } else {
    const found = (
      prefix
        ? stmt.historyRangeAt.all({ from: request.key, to: prefixEnd(request.key), at })
        : stmt.historyKeyAt.all({ key: request.key, at })
    ) as (HistoryRow & { mod_revision: number })[];
    rows = found.filter((r) => r.deleted === 0).map((r) => ({ ...r, value: r.value ?? Buffer.alloc(0) }));
  }
  const kept = rows.length > limit ? rows.slice(0, limit) : rows;
  return {
    revision: latest,
    kvs: kept.map((r) => (request.keysOnly ? { ...rowToKv(r), value: EMPTY } : rowToKv(r))),
    more: rows.length > kept.length,
    count: rows.length,
  };
}

/** The events of `filter` in revisions [from, to], at most about `maxEvents`, never splitting a revision. */
export function readHistory(
  stmt: Statements,
  filter: KeyFilter,
  from: number,
  to: number,
  maxEvents: number,
  prevKv: boolean,
): { events: WatchEvent[]; next: number } {
  const args = filter.prefix
    ? { from, to, lo: filter.key, hi: prefixEnd(filter.key), limit: maxEvents + 1 }
    : { from, to, key: filter.key, limit: maxEvents + 1 };
  let rows = (filter.prefix ? stmt.historyEventsPrefix : stmt.historyEventsKey).all(args) as HistoryRow[];
  let next = to + 1;
  if (rows.length > maxEvents) {
    // Never split a revision: stop before the last one read, or if a single
    // revision is larger than a page, read all of it.
    const last = rows[rows.length - 1]?.revision ?? to;
    const whole = rows.filter((r) => r.revision < last);
    if (whole.length > 0) {
      rows = whole;
      next = last;
    } else {
      rows = (filter.prefix ? stmt.historyEventsPrefix : stmt.historyEventsKey).all({
        ...args,
        from: last,
        to: last,
        limit: -1,
      }) as HistoryRow[];
      next = last + 1;
    }
  }
  const events = rows.map((row): WatchEvent => {
    const event: WatchEvent =
      row.deleted === 0
        ? {
            type: 'put',
            kv: rowToKv({ ...row, value: row.value ?? Buffer.alloc(0), mod_revision: row.revision }),
            revision: row.revision,
          }
        : { type: 'delete', kv: tombstone(row.key, row.revision), revision: row.revision };
    if (!prevKv) return event;
    const prev = stmt.historyBefore.get(row.key, row.revision) as HistoryRow | undefined;
    return {
      ...event,
      prevKv:
        prev && prev.deleted === 0
          ? rowToKv({ ...prev, value: prev.value ?? Buffer.alloc(0), mod_revision: prev.revision })
          : null,
    };
  });
  return { events, next };
}
