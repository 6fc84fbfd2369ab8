/**
 * The tokens, kept in the keyspace (`/muster/auth/tokens/<id>`, JSON with the
 * secret's SHA-256, never the secret) so that every server in front of one etcd
 * cluster knows them. Each server caches them, kept current by a watch: a token
 * revoked on one server stops working on the others as soon as they see the
 * delete. Without a running watch the cache is bypassed (every check reads the
 * store), so a revoked token is never accepted from a stale cache.
 */
import { randomBytes } from 'node:crypto';
import Type from 'typebox';
import type { Static } from 'typebox';
import type { Backend, Watch } from '../core/backend.js';
import type { Clock } from '../core/clock.js';
import { sleep } from '../core/clock.js';
import { InvalidArgumentError, TokenNotFoundError, UnauthenticatedError } from '../core/errors.js';
import { AUTH_PREFIX, CustomPolicy, Policy, ROLES } from './policy.js';
import type { Role } from './policy.js';
import { hashSecret, newToken, parseToken, sameString, secretMatches } from './token-secret.js';

export const TOKENS_PREFIX = `${AUTH_PREFIX}tokens/`;

/** A token as the API shows it: everything but the secret's hash. */
export const TokenInfo = Type.Object({
  id: Type.String(),
  role: Type.Enum([...ROLES]),
  description: Type.String(),
  node: Type.Optional(Type.String()),
  cluster: Type.Optional(Type.String()),
  policy: Type.Optional(CustomPolicy),
  createdAt: Type.String({ description: 'ISO 8601' }),
  expiresAt: Type.Union([Type.String(), Type.Null()], { description: 'ISO 8601, or null: never' }),
  uses: Type.Optional(Type.Integer({ description: 'An enrolment token: how many more node tokens it may make' })),
});
export type TokenInfo = Static<typeof TokenInfo>;

interface TokenRecord extends TokenInfo {
  readonly hash: string;
}

/** Who made a request: the token's id and its effective policy. */
export interface Principal {
  readonly tokenId: string;
  readonly role: Role;
  readonly policy: Policy;
}

export interface NewToken {
  readonly role: Role;
  readonly description?: string | undefined;
  readonly node?: string | undefined;
  readonly cluster?: string | undefined;
  readonly policy?: CustomPolicy | undefined;
  /** Seconds until it expires; none: never. */
  readonly ttlSeconds?: number | undefined;
  /** An enrolment token: how many node tokens it may make. @default 1 */
  readonly uses?: number | undefined;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

export class TokenRegistry {
  private readonly cache = new Map<string, TokenRecord>();
  /** The principal of each record read; a changed record is a new object, so it gets a new principal. */
  private readonly principals = new WeakMap<TokenRecord, Principal>();
  /**
   * The secret of each record once it has been proven against the stored hash: the
   * next request with that token compares strings in constant time instead of
   * hashing again (held in memory only, as the secret passes through it anyway).
   */
  private readonly proven = new WeakMap<TokenRecord, string>();
  private watch: Watch | null = null;
  private watching = false;
  private stopped = false;

  constructor(
    private readonly backend: Backend,
    private readonly clock: Clock,
  ) {}

  /** Load the tokens and follow their changes. */
  async start(): Promise<void> {
    this.stopped = false;
    await this.follow();
  }

  stop(): void {
    this.stopped = true;
    this.watching = false;
    this.watch?.close();
    this.watch = null;
    this.cache.clear();
  }

  /** The principal of a presented token; UnauthenticatedError for anything else, whatever the reason. */
  async authenticate(text: string | undefined): Promise<Principal> {
    const parts = partsOf(text);
    return this.check(parts, await this.record(parts.id));
  }

  /**
   * `authenticate` without waiting, when the token's record is in the cache (the
   * common case, on the hot path of every request); undefined when it must be read.
   */
  authenticateNow(text: string | undefined): Principal | undefined {
    const parts = partsOf(text);
    if (!this.watching) return undefined;
    const cached = this.cache.get(parts.id);
    return cached ? this.check(parts, cached) : undefined;
  }

  private check(parts: { id: string; secret: string }, record: TokenRecord | null): Principal {
    if (!record || !this.secretOf(record, parts.secret) || this.expired(record)) {
      throw new UnauthenticatedError('the token is not valid');
    }
    // One Principal (and its Policy) per token record, not per request.
    let principal = this.principals.get(record);
    if (!principal) {
      principal = principalOf(record);
      this.principals.set(record, principal);
    }
    return principal;
  }

  /** True when `secret` is the record's: against the proven secret if there is one, else its hash. */
  private secretOf(record: TokenRecord, secret: string): boolean {
    const proven = this.proven.get(record);
    if (proven !== undefined) return sameString(proven, secret);
    if (!secretMatches(secret, record.hash)) return false;
    this.proven.set(record, secret);
    return true;
  }

  /** Create a token; its secret is in `token`, shown once. */
  async create(spec: NewToken): Promise<{ token: string; info: TokenInfo }> {
    checkSpec(spec);
    const { id, secret, text } = newToken((size) => randomBytes(size));
    const record: TokenRecord = {
      id,
      role: spec.role,
      description: spec.description ?? '',
      ...(spec.node !== undefined ? { node: spec.node } : {}),
      ...(spec.cluster !== undefined ? { cluster: spec.cluster } : {}),
      ...(spec.policy !== undefined ? { policy: spec.policy } : {}),
      ...(spec.role === 'enrol' ? { uses: spec.uses ?? 1 } : {}),
      createdAt: new Date(this.clock.now()).toISOString(),
      expiresAt:
        spec.ttlSeconds === undefined ? null : new Date(this.clock.now() + spec.ttlSeconds * 1000).toISOString(),
      hash: hashSecret(secret),
    };
    await this.store(record);
    return { token: text, info: infoOf(record) };
  }

  /**
   * Make `text` an admin token (the first admin, given by automation or kept in
   * the data folder): its record is written unless one with the same hash exists.
   */
  async ensureAdmin(text: string, description: string): Promise<TokenInfo> {
    const parts = parseToken(text);
    if (!parts) {
      throw new InvalidArgumentError(
        'the admin token must be a muster token (mst_…) or at least 24 printable characters',
        'invalid_config',
      );
    }
    const existing = await this.read(parts.id);
    if (existing && existing.role === 'admin' && secretMatches(parts.secret, existing.hash)) return infoOf(existing);
    const record: TokenRecord = {
      id: parts.id,
      role: 'admin',
      description,
      createdAt: new Date(this.clock.now()).toISOString(),
      expiresAt: null,
      hash: hashSecret(parts.secret),
    };
    await this.store(record);
    return infoOf(record);
  }

  /**
   * Spend one use of enrolment token `enrolId` on a node token for `node`. The use
   * is taken with a compare-and-swap, so concurrent enrolments never make more node
   * tokens than the uses; the last use deletes the enrolment token.
   */
  async enrol(enrolId: string, node: string, description?: string): Promise<{ token: string; info: TokenInfo }> {
    checkSpec({ role: 'node', node });
    for (let attempt = 0; attempt < 50; attempt++) {
      const kv = await this.backend.get(TOKENS_PREFIX + enrolId);
      const record = kv ? decodeRecord(kv.value) : null;
      if (!kv || !record || record.role !== 'enrol' || (record.uses ?? 0) < 1 || this.expired(record)) {
        throw new UnauthenticatedError('the enrolment token is not valid (used up, expired or revoked)');
      }
      const left = (record.uses ?? 1) - 1;
      const key = TOKENS_PREFIX + enrolId;
      const taken = await this.backend.txn({
        compare: [{ key, target: 'modRevision', op: '=', value: kv.modRevision }],
        success:
          left === 0
            ? [{ type: 'delete', key }]
            : [{ type: 'put', key, value: encoder.encode(JSON.stringify({ ...record, uses: left })), lease: null }],
        failure: [],
      });
      if (!taken.succeeded) continue;
      if (left === 0) this.cache.delete(enrolId);
      return this.create({ role: 'node', node, description: description ?? `enrolled with ${enrolId}` });
    }
    throw new UnauthenticatedError('the enrolment token is in use by too many enrolments at once; try again');
  }

  async list(): Promise<TokenInfo[]> {
    const range = await this.backend.range({ key: TOKENS_PREFIX, prefix: true });
    return range.kvs.map((kv) => infoOf(decodeRecord(kv.value))).sort((a, b) => a.createdAt.localeCompare(b.createdAt));
  }

  async get(id: string): Promise<TokenInfo> {
    const record = await this.read(id);
    if (!record) throw new TokenNotFoundError(id);
    return infoOf(record);
  }

  async revoke(id: string): Promise<void> {
    const { deleted } = await this.backend.delete({ key: TOKENS_PREFIX + id });
    this.cache.delete(id);
    if (deleted === 0) throw new TokenNotFoundError(id);
  }

  private expired(record: TokenRecord): boolean {
    return record.expiresAt !== null && Date.parse(record.expiresAt) <= this.clock.now();
  }

  private async record(id: string): Promise<TokenRecord | null> {
    if (this.watching) {
      const cached = this.cache.get(id);
      if (cached) return cached;
    }
    return this.read(id);
  }

  private async read(id: string): Promise<TokenRecord | null> {
    const kv = await this.backend.get(TOKENS_PREFIX + id);
    return kv ? decodeRecord(kv.value) : null;
  }

  private async store(record: TokenRecord): Promise<void> {
    await this.backend.put(TOKENS_PREFIX + record.id, encoder.encode(JSON.stringify(record)));
    if (this.watching) this.cache.set(record.id, record);
  }

  /** Fill the cache from a range, then follow the watch; on any failure start over (reading the store meanwhile). */
  private async follow(): Promise<void> {
    const range = await this.backend.range({ key: TOKENS_PREFIX, prefix: true });
    this.cache.clear();
    for (const kv of range.kvs) {
      const record = decodeRecord(kv.value);
      this.cache.set(record.id, record);
    }
    const watch = this.backend.watch(TOKENS_PREFIX, { prefix: true, fromRevision: range.revision + 1 });
    this.watch = watch;
    this.watching = true;
    void (async () => {
      try {
        for await (const batch of watch) {
          for (const event of batch.events) {
            const id = event.kv.key.slice(TOKENS_PREFIX.length);
            if (event.type === 'delete') this.cache.delete(id);
            else this.cache.set(id, decodeRecord(event.kv.value));
          }
        }
      } catch {
        // Fall through: the cache can no longer be trusted.
      }
      this.watching = false;
      this.cache.clear();
      if (this.stopped || this.watch !== watch) return;
      // On the injected clock, as all background work (a virtual one in tests and the simulator).
      await sleep(this.clock, 1000);
      if (!this.stopped && this.watch === watch) await this.follow().catch(() => undefined);
    })();
  }
}

function partsOf(text: string | undefined): { id: string; secret: string } {
  if (text === undefined || text === '') throw new UnauthenticatedError();
  const parts = parseToken(text);
  if (!parts) throw new UnauthenticatedError('the token is not valid');
  return parts;
}

export function principalOf(record: TokenInfo): Principal {
  return {
    tokenId: record.id,
    role: record.role,
    policy: new Policy({ role: record.role, node: record.node, cluster: record.cluster, policy: record.policy }),
  };
}

function infoOf(record: TokenRecord): TokenInfo {
  const { hash: _hash, ...info } = record;
  return info;
}

function decodeRecord(value: Uint8Array): TokenRecord {
  return JSON.parse(decoder.decode(value)) as TokenRecord;
}

const SEGMENT = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

function checkSpec(spec: NewToken): void {
  const need = (field: 'node' | 'cluster', role: Role) => {
    if ((spec.role === role) !== (spec[field] !== undefined)) {
      throw new InvalidArgumentError(
        spec.role === role ? `a ${role} token needs --${field} NAME` : `--${field} applies only to a ${field} token`,
        'invalid_request',
      );
    }
    const value = spec[field];
    if (value !== undefined && !SEGMENT.test(value)) {
      throw new InvalidArgumentError(
        `invalid ${field} name ${JSON.stringify(value.slice(0, 80))}: use 1-128 letters, digits, ".", "_" or "-"`,
        'invalid_name',
      );
    }
  };
  need('node', 'node');
  need('cluster', 'cluster');
  if (spec.uses !== undefined && (spec.role !== 'enrol' || !Number.isInteger(spec.uses) || spec.uses < 1)) {
    throw new InvalidArgumentError(
      spec.role === 'enrol' ? '--uses must be a whole number ≥ 1' : '--uses applies only to an enrol token',
      'invalid_request',
    );
  }
  if ((spec.role === 'custom') !== (spec.policy !== undefined) && spec.role !== 'node') {
    throw new InvalidArgumentError(
      spec.role === 'custom'
        ? 'a custom token needs a policy (--policy FILE)'
        : '--policy applies to custom and node tokens',
      'invalid_request',
    );
  }
}
