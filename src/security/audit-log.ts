/**
 * The audit log: every write, txn, primitive action, lease grant or revocation and
 * token change that was carried out, with when, which token id and role, what, and
 * the result, kept under `/muster/audit/` for a retention. Records are written in
 * batches (every `flushMs`, and on stop), so a crash may lose the last fraction of
 * a second of them. A refused request leaves no trace in the store, this log
 * included: refusals for want of a token or a right go to the server's log.
 */
import { randomBytes } from 'node:crypto';
import { promisify } from 'node:util';
import { deflate, inflate } from 'node:zlib';
import Type from 'typebox';
import type { Static } from 'typebox';
import type { Backend, Compare, TxnOp } from '../core/backend.js';
import type { Clock, TimerHandle } from '../core/clock.js';

export const AUDIT_PREFIX = '/muster/audit/';
/**
 * Records are stored several to a key (one JSON line each, the lines compressed
 * with zlib), at most this many: a write per batch, not per record, and a tenth of
 * the bytes keep the log's cost small next to the writes it records, also when
 * compaction later deletes their history (a key of 1,000 records is about 10 KiB).
 */
const RECORDS_PER_KEY = 1000;
const compress = promisify(deflate);
const decompress = promisify(inflate);
/** A stored chunk that is not compressed starts with the "[" of its first record. */
const PLAIN_CHUNK = 0x5b;
/** Keys deleted in one txn (the stores take 128 ops in one txn). */
const DELETES_PER_TXN = 100;

export const AuditRecord = Type.Object({
  at: Type.String({ description: 'ISO 8601' }),
  tokenId: Type.String({ description: '"none" for a request without a valid token' }),
  role: Type.String(),
  method: Type.String(),
  route: Type.String({ description: 'The route, such as /v1/kv/*' }),
  target: Type.String({ description: 'The key, name or id the request named' }),
  status: Type.Integer({ description: 'The HTTP status it was answered with' }),
});
export type AuditRecord = Static<typeof AuditRecord>;

export interface AuditQuery {
  /** Only records at or after this time (ms since the epoch). */
  readonly since?: number;
  readonly tokenId?: string;
  /** The newest this many. @default 1000 */
  readonly limit?: number;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

export class AuditLog {
  /** Records as stored (`compact`), newest last. */
  private pending: string[] = [];
  private newestAt = 0;
  private timer: TimerHandle | null = null;
  private flushing: Promise<void> = Promise.resolve();
  private sequence = 0;
  /** Keeps keys of two servers writing in the same millisecond apart. */
  private readonly origin = randomBytes(3).toString('hex');

  constructor(
    private readonly backend: Backend,
    private readonly clock: Clock,
    private readonly flushMs = 250,
  ) {}

  record(entry: Omit<AuditRecord, 'at'>): void {
    this.newestAt = this.clock.now();
    this.pending.push(compact(this.newestAt, entry));
    // On the clock only (a virtual one in tests and the simulator), never in the middle of a request.
    this.timer ??= this.clock.setTimeout(() => void this.flush(), this.flushMs);
  }

  /** Write what is pending; resolves when it is written (or failed: logged by the caller's store). */
  flush(): Promise<void> {
    if (this.timer) this.clock.clearTimeout(this.timer);
    this.timer = null;
    const batch = this.pending;
    const newestAt = this.newestAt;
    this.pending = [];
    if (batch.length === 0) return this.flushing;
    this.flushing = this.flushing.then(async () => {
      for (let i = 0; i < batch.length; i += RECORDS_PER_KEY) {
        const chunk = batch.slice(i, i + RECORDS_PER_KEY);
        // A chunk's key carries the time of its newest record (query skips older keys): the
        // last chunk's is the batch's newest; an earlier one's is read from its last line.
        const at = i + RECORDS_PER_KEY >= batch.length ? newestAt : timeOfLine(chunk[chunk.length - 1] as string);
        // Compressed on libuv's threads, off the event loop.
        const value = await compress(encoder.encode(chunk.join('\n'))).catch(() => null);
        if (value !== null) await this.backend.put(this.keyFor(at), value).catch(() => undefined);
      }
    });
    return this.flushing;
  }

  async query(query: AuditQuery = {}): Promise<AuditRecord[]> {
    await this.flush();
    const range = await this.backend.range({ key: AUDIT_PREFIX, prefix: true });
    const since = query.since ?? 0;
    const records: AuditRecord[] = [];
    for (const kv of range.kvs) {
      // A key is named after its newest record: older keys hold nothing this recent.
      if (timeOfKey(kv.key) < since) continue;
      const text = kv.value[0] === PLAIN_CHUNK ? kv.value : await decompress(kv.value).catch(() => null);
      if (text === null) continue; // not a chunk this server wrote: skipped, not fatal to the query
      for (const line of decoder.decode(text).split('\n')) {
        const record = expand(line);
        if (Date.parse(record.at) < since) continue;
        if (query.tokenId !== undefined && record.tokenId !== query.tokenId) continue;
        records.push(record);
      }
    }
    return records.slice(-(query.limit ?? 1000));
  }

  /** The key of a chunk: the time of its newest record, then this server's origin and a sequence. */
  private keyFor(newestAt: number): string {
    this.sequence = (this.sequence + 1) % 1_000_000;
    const ms = String(newestAt).padStart(15, '0');
    return `${AUDIT_PREFIX}${ms}-${this.origin}-${String(this.sequence).padStart(6, '0')}`;
  }
}

/** Delete the keys of audit records all older than `before` (ms since the epoch), fenced by `fence` when given; returns how many keys. */
export async function pruneAudit(backend: Backend, before: number, fence?: Compare): Promise<number> {
  const range = await backend.range({ key: AUDIT_PREFIX, prefix: true, keysOnly: true });
  const old = range.kvs.map((kv) => kv.key).filter((key) => timeOfKey(key) < before);
  for (let i = 0; i < old.length; i += DELETES_PER_TXN) {
    const success: TxnOp[] = old.slice(i, i + DELETES_PER_TXN).map((key) => ({ type: 'delete', key, prefix: false }));
    await backend.txn({ compare: fence ? [fence] : [], success, failure: [] });
  }
  return old.length;
}

/**
 * One record as stored: a JSON array in a fixed order, the time in ms since the
 * epoch (about half the bytes of the object form; the log is written for every write).
 */
function compact(at: number, r: Omit<AuditRecord, 'at'>): string {
  return JSON.stringify([at, r.tokenId, r.role, r.method, r.route, r.target, r.status]);
}

/** The time of a stored record: the number that opens its array. */
function timeOfLine(line: string): number {
  return Number(line.slice(1, line.indexOf(',')));
}

function expand(line: string): AuditRecord {
  const [at, tokenId, role, method, route, target, status] = JSON.parse(line) as [
    number,
    string,
    string,
    string,
    string,
    string,
    number,
  ];
  return { at: new Date(at).toISOString(), tokenId, role, method, route, target, status };
}

function timeOfKey(key: string): number {
  return Number(key.slice(AUDIT_PREFIX.length, AUDIT_PREFIX.length + 15));
}
