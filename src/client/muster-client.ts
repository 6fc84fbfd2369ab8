import type { HookDelivery, HookRequest, HookView } from './hook-types.js';
import type { KeyValue, LeaseId, LeaseInfo, RangeResult, SnapshotStream, WatchEvent } from '../core/backend.js';
import { BackendUnavailableError, InvalidArgumentError } from '../core/errors.js';
import { validateKey, validatePrefix } from '../core/key-path.js';
import type {
  WireBarrierReset,
  WireDeleteResponse,
  WireKeyValue,
  WireLeaderAnswer,
  WireLeaseList,
  WireOnceCompleted,
  WireOnceReset,
  WireProclaimed,
  WireWaitAnswer,
  WireWhoAmI,
  WireLeaseGrant,
  WireLeaseInfo,
  WirePutResponse,
  WireRangeResponse,
  WireTxnRequest,
  WireTxnResponse,
  WirePrimitiveKind,
  WirePrimitiveList,
} from '../api/wire.js';
import { fromWireKeyValue } from '../api/values.js';
import type { CustomPolicy, Role } from '../security/policy.js';
import type { TokenInfo } from '../security/token-registry.js';
import type { AuditRecord } from '../security/audit-log.js';
import { parseEndpoints } from './endpoints.js';
import { tlsFetch } from './tls-fetch.js';
import type { ClientTls } from './tls-fetch.js';
import { errorFromWire } from './error-from-wire.js';
import type { FetchFunction } from './http-transport.js';
import { HttpTransport, readJsonBody } from './http-transport.js';
import { keyPath, queryString } from './key-url.js';
import type { ClientTxnRequest, ClientTxnResult, ClientValue } from './txn-encoding.js';
import { decodeTxnResponse, encodeTxnRequest } from './txn-encoding.js';
import type { ClientWatchOptions } from './watch-stream.js';
import type {
  BarrierState,
  AcquireLockOptions,
  BlockingOptions,
  Held,
  LeaderInfo,
  Leadership,
  LockHandle,
  LockState,
  OnceResult,
  OnceState,
  OnceTurn,
  SemaphoreHandle,
  SemaphoreState,
  WaitCondition,
  WaitOutcome,
} from './coordination-types.js';
import { watchEvents } from './watch-stream.js';
import { readSse } from './sse-reader.js';
import { Backoff } from '../core/backoff.js';
import type { Runtime } from '../core/runtime.js';
import { systemRuntime } from '../core/runtime.js';
import type { AssignmentEvent, JobReport, NodeInfo, NodeRegistration, NodeSummary } from '../api/agent-protocol.js';
import type {
  ActualState,
  Desired,
  DesiredSpec,
  DesiredValue,
  Group,
  GroupStatus,
  PlanPreview,
  PlanRecord,
} from './plan-types.js';
import type {
  JobEvent,
  JobOutput,
  JobRecord,
  JobRequest,
  JobView,
  NodeJobRecord,
  OutputChunk,
  TriggerRecord,
  TriggerRequest,
} from './job-types.js';

/** What `createToken` takes. */
export interface NewTokenRequest {
  readonly role: Role;
  readonly description?: string;
  /** A node token's machine name. */
  readonly node?: string;
  /** A cluster token's cluster name. */
  readonly cluster?: string;
  /** A custom token's policy (or a node token's extra read rules). */
  readonly policy?: CustomPolicy;
  /** Expire after this: seconds, or a duration such as "30d". @default never */
  readonly ttl?: string | number;
  /** An enrolment token: how many node tokens it may make. @default 1 */
  readonly uses?: number;
}

export interface MusterClientOptions {
  /** One URL, a comma-separated list, or a list; the first one is tried first. */
  readonly endpoints: string | readonly string[];
  /** @default globalThis.fetch */
  readonly fetch?: FetchFunction;
  /** How long a request may take before it counts as unanswered. @default 30000 */
  readonly requestTimeoutMs?: number;
  /** Time and randomness for retries (backoff with jitter). @default systemRuntime */
  readonly runtime?: Runtime;
  /** HTTPS with a private CA (`ca`, PEM) and, for a server that requires one, a client certificate (`cert`, `key`). */
  readonly tls?: ClientTls;
  /** The token sent with every request (`muster token create` makes one; a new server keeps its admin's in <data-dir>/admin.token). */
  readonly token?: string;
  /** Headers sent with every request (the dashboard's CSRF header, for one). */
  readonly headers?: Readonly<Record<string, string>>;
}

/** A key with its metadata, and the store revision the read was served at. */
export interface GetResult extends KeyValue {
  readonly revision: number;
}

export interface ClientPutOptions {
  /** Bind the key to this lease. */
  readonly lease?: LeaseId;
  /** Write only if the key's modRevision is this (0: only if the key does not exist). */
  readonly prevRevision?: number;
}

export interface ClientListOptions {
  /** At most this many keys; 0 or absent: all. */
  readonly limit?: number;
  /** Read as of this past revision. */
  readonly revision?: number;
  /** Metadata only, values left empty. */
  readonly keysOnly?: boolean;
}

export interface ClientDeleteOptions {
  /** Delete every key starting with `key`. @default false */
  readonly prefix?: boolean;
  /** Delete only if the key's modRevision is this. */
  readonly prevRevision?: number;
}

/** The outcome of a long poll. */
export type ChangeResult =
  { readonly type: 'changed'; readonly kv: KeyValue } | { readonly type: 'deleted' } | { readonly type: 'timeout' };

export interface CallOptions {
  readonly signal?: AbortSignal;
  /** Overrides the client's request timeout for this call. */
  readonly timeoutMs?: number;
}

/** Text in and out of values (TextEncoder/TextDecoder: the client runs in browsers too). */
const utf8 = new TextDecoder();
const utf8Encoder = new TextEncoder();

/** How long past a long poll's own timeout the client waits for its answer. */
const LONG_POLL_GRACE_MS = 10_000;

/**
 * The typed client of muster's HTTP API v1, one method per route. Keys are checked
 * here first (InvalidKeyError) because URL parsing would silently rewrite a key
 * with a "." or ".." segment. Errors are the
 * classes of core/errors.ts (RevisionConflictError, KeyNotFoundError, …);
 * BackendUnavailableError means no endpoint could serve the request.
 *
 * @example
 *   const client = new MusterClient({ endpoints: 'http://127.0.0.1:4100' });
 *   await client.put('/config/db/host', '10.0.0.5');
 *   console.log(await client.getText('/config/db/host'));
 */
export class MusterClient {
  private readonly transport: HttpTransport;
  private readonly runtime: Runtime;

  constructor(options: MusterClientOptions) {
    this.runtime = options.runtime ?? systemRuntime;
    const fetchFn: FetchFunction =
      options.fetch ?? (options.tls ? tlsFetch(options.tls) : (input, init) => fetch(input, init));
    this.transport = new HttpTransport(
      parseEndpoints(options.endpoints),
      fetchFn,
      options.requestTimeoutMs ?? 30_000,
      options.token,
      options.headers,
    );
  }

  /** The endpoints in the order they are tried. */
  get endpoints(): readonly string[] {
    return this.transport.endpoints;
  }

  /** The endpoint the next request goes to. */
  get currentEndpoint(): string {
    return this.transport.endpoint;
  }

  /** A key's value (bytes) and metadata. Throws KeyNotFoundError. */
  async get(key: string, options: CallOptions = {}): Promise<GetResult> {
    const response = await this.transport.send({
      method: 'GET',
      path: keyPath('/v1/kv', validateKey(key)) + queryString({ meta: true }),
      idempotent: true,
      context: { subject: key },
      ...callOptions(options),
    });
    const body = (await response.json()) as WireKeyValue & { revision?: number };
    const header = Number(response.headers.get('x-muster-revision'));
    return { ...fromWireKeyValue(body), revision: body.revision ?? (header > 0 ? header : body.modRevision) };
  }

  /** A key's value as UTF-8 text. Throws KeyNotFoundError. */
  async getText(key: string, options: CallOptions = {}): Promise<string> {
    return utf8.decode((await this.get(key, options)).value);
  }

  /** Write a value; with `prevRevision`, only if the key is still at that revision (else RevisionConflictError). */
  async put(key: string, value: ClientValue, options: ClientPutOptions & CallOptions = {}): Promise<WirePutResponse> {
    const response = await this.transport.send({
      method: 'PUT',
      path:
        keyPath('/v1/kv', validateKey(key)) + queryString({ lease: options.lease, prevRevision: options.prevRevision }),
      headers: { 'content-type': 'application/octet-stream' },
      body: typeof value === 'string' ? utf8Encoder.encode(value) : value,
      idempotent: false,
      context: { subject: key, expectedModRevision: options.prevRevision },
      ...callOptions(options),
    });
    return (await response.json()) as WirePutResponse;
  }

  /** Every key starting with `prefix`, sorted by key. */
  async list(prefix: string, options: ClientListOptions & CallOptions = {}): Promise<RangeResult> {
    const wire = await this.listWire(prefix, options);
    return { revision: wire.revision, kvs: wire.kvs.map(fromWireKeyValue), more: wire.more, count: wire.count };
  }

  /** `list` as the API sends it (values as text or base64), for printing JSON. */
  async listWire(prefix: string, options: ClientListOptions & CallOptions = {}): Promise<WireRangeResponse> {
    const response = await this.transport.send({
      method: 'GET',
      path:
        keyPath('/v1/kv', validatePrefix(prefix)) +
        queryString({
          prefix: true,
          limit: options.limit,
          revision: options.revision,
          keysOnly: options.keysOnly === true ? true : undefined,
        }),
      idempotent: true,
      context: { subject: prefix },
      ...callOptions(options),
    });
    return (await response.json()) as WireRangeResponse;
  }

  /** Delete a key (or, with `prefix`, every key under it); returns how many were deleted. */
  async delete(key: string, options: ClientDeleteOptions & CallOptions = {}): Promise<WireDeleteResponse> {
    const response = await this.transport.send({
      method: 'DELETE',
      path:
        keyPath('/v1/kv', options.prefix === true ? validatePrefix(key) : validateKey(key)) +
        queryString({ prefix: options.prefix === true ? true : undefined, prevRevision: options.prevRevision }),
      idempotent: false,
      context: { subject: key, expectedModRevision: options.prevRevision },
      ...callOptions(options),
    });
    return (await response.json()) as WireDeleteResponse;
  }

  /** An atomic transaction: if every compare holds, run `success`, else `failure`. */
  async txn(request: ClientTxnRequest, options: CallOptions = {}): Promise<ClientTxnResult> {
    return decodeTxnResponse(await this.txnWire(encodeTxnRequest(request), options));
  }

  /** `txn` with a body already in the API's JSON shape (as the CLI reads it from a file). */
  async txnWire(request: WireTxnRequest, options: CallOptions = {}): Promise<WireTxnResponse> {
    const response = await this.transport.send({
      method: 'POST',
      path: '/v1/txn',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(request),
      idempotent: false,
      ...callOptions(options),
    });
    return (await response.json()) as WireTxnResponse;
  }

  /** A new lease of `ttlSeconds`; keys put with it vanish when it ends. */
  async grantLease(ttlSeconds: number, options: CallOptions = {}): Promise<WireLeaseGrant> {
    if (!Number.isFinite(ttlSeconds) || ttlSeconds < 1) {
      throw new InvalidArgumentError(`a lease TTL must be at least 1 second, not ${ttlSeconds}`, 'invalid_request');
    }
    const response = await this.transport.send({
      method: 'POST',
      path: '/v1/leases',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ ttl: ttlSeconds }),
      idempotent: false,
      ...callOptions(options),
    });
    return (await response.json()) as WireLeaseGrant;
  }

  /** Renew a lease to its full TTL. Throws LeaseNotFoundError once it has ended. */
  async keepAlive(id: LeaseId, options: CallOptions = {}): Promise<WireLeaseGrant> {
    const response = await this.transport.send({
      method: 'POST',
      path: `/v1/leases/${encodeURIComponent(id)}/keepalive`,
      idempotent: true,
      context: { subject: id },
      ...callOptions(options),
    });
    return (await response.json()) as WireLeaseGrant;
  }

  /** End a lease now, deleting its keys. Throws LeaseNotFoundError. */
  async revokeLease(id: LeaseId, options: CallOptions = {}): Promise<void> {
    await this.transport.send({
      method: 'DELETE',
      path: `/v1/leases/${encodeURIComponent(id)}`,
      idempotent: false,
      context: { subject: id },
      ...callOptions(options),
    });
  }

  /** A lease's remaining and granted TTL and its keys. Throws LeaseNotFoundError. */
  async leaseInfo(id: LeaseId, options: CallOptions = {}): Promise<LeaseInfo> {
    const response = await this.transport.send({
      method: 'GET',
      path: `/v1/leases/${encodeURIComponent(id)}`,
      idempotent: true,
      context: { subject: id },
      ...callOptions(options),
    });
    return (await response.json()) as WireLeaseInfo;
  }

  /** Create a token. Its secret (`token`) is in this answer only: the server keeps a hash. Needs tokens:manage. */
  async createToken(spec: NewTokenRequest, options: CallOptions = {}): Promise<{ token: string; info: TokenInfo }> {
    const body = {
      role: spec.role,
      ...(spec.description !== undefined ? { description: spec.description } : {}),
      ...(spec.node !== undefined ? { node: spec.node } : {}),
      ...(spec.cluster !== undefined ? { cluster: spec.cluster } : {}),
      ...(spec.policy !== undefined ? { policy: spec.policy } : {}),
      ...(spec.ttl !== undefined ? { ttl: spec.ttl } : {}),
      ...(spec.uses !== undefined ? { uses: spec.uses } : {}),
    };
    return this.postJson('/v1/tokens', body, options, spec.role);
  }

  /**
   * Enrol this machine: spend one use of the client's enrolment token on a node
   * token for `node` (shown only in this answer). `muster agent` does this on first start.
   */
  async enrol(
    node: string,
    options: CallOptions & { description?: string } = {},
  ): Promise<{ token: string; info: TokenInfo }> {
    const body = { node, ...(options.description !== undefined ? { description: options.description } : {}) };
    return this.postJson('/v1/enrol', body, options, node);
  }

  /** Every token (never a secret). */
  async listTokens(options: CallOptions = {}): Promise<TokenInfo[]> {
    return (await this.getJson<{ tokens: TokenInfo[] }>('/v1/tokens', options)).tokens;
  }

  async getToken(id: string, options: CallOptions = {}): Promise<TokenInfo> {
    return this.getJson<TokenInfo>(`/v1/tokens/${seg(id)}`, { ...options });
  }

  /** Revoke a token: every server refuses it from now on. */
  async revokeToken(id: string, options: CallOptions = {}): Promise<void> {
    await this.deleteJson(`/v1/tokens/${seg(id)}`, options);
  }

  /** The token this client sends: its id and role. */
  async whoami(options: CallOptions = {}): Promise<WireWhoAmI> {
    return this.getJson<WireWhoAmI>('/v1/auth/whoami', options);
  }

  /** The audit log, oldest first (admin, or audit:read). `since`: a duration back ("1h") or an ISO time. */
  async audit(
    query: { since?: string; token?: string; limit?: number } = {},
    options: CallOptions = {},
  ): Promise<AuditRecord[]> {
    const path = '/v1/audit' + queryString({ since: query.since, token: query.token, limit: query.limit });
    return (await this.getJson<{ records: AuditRecord[] }>(path, options)).records;
  }

  /** The coordination primitives in use (with keys now), by kind and name; only those the token may read. */
  async listPrimitives(kind?: WirePrimitiveKind, options: CallOptions = {}): Promise<WirePrimitiveList> {
    return this.getJson<WirePrimitiveList>('/v1/primitives' + queryString({ kind }), options);
  }

  /**
   * Sign a browser in to the dashboard with a token: the server answers with an
   * HttpOnly session cookie (the browser keeps it; script never sees it again).
   */
  async startUiSession(token: string, options: CallOptions = {}): Promise<WireWhoAmI> {
    return this.postJson<WireWhoAmI>('/v1/ui/session', { token }, options, 'session');
  }

  /** Sign out of the dashboard: the server ends the session and clears the cookie. */
  async endUiSession(options: CallOptions = {}): Promise<{ signedOut: boolean }> {
    return this.deleteJson<{ signedOut: boolean }>('/v1/ui/session', options);
  }

  /** The ids of every live lease. */
  async listLeases(options: CallOptions = {}): Promise<LeaseId[]> {
    const response = await this.transport.send({
      method: 'GET',
      path: '/v1/leases',
      idempotent: true,
      ...callOptions(options),
    });
    return ((await response.json()) as WireLeaseList).leases;
  }

  /**
   * Long poll: resolve when `key`'s modRevision exceeds `afterRevision` (changed),
   * when it is deleted, or after `timeoutMs` (timeout).
   */
  async waitForChange(
    key: string,
    afterRevision: number,
    timeoutMs: number,
    options: { signal?: AbortSignal } = {},
  ): Promise<ChangeResult> {
    const response = await this.transport.send({
      method: 'GET',
      path:
        keyPath('/v1/kv', validateKey(key)) +
        queryString({ waitAfter: afterRevision, timeout: `${Math.max(0, Math.round(timeoutMs))}ms`, meta: true }),
      idempotent: true,
      accept: [204, 404],
      timeoutMs: timeoutMs + LONG_POLL_GRACE_MS,
      context: { subject: key },
      ...(options.signal ? { signal: options.signal } : {}),
    });
    if (response.status === 204) return { type: 'timeout' };
    if (response.status === 404) {
      const body = await readJsonBody(response);
      const code = (body as { error?: { code?: unknown } } | null)?.error?.code;
      if (code !== undefined && code !== 'key_not_found') throw errorFromWire(404, body, { subject: key });
      return { type: 'deleted' };
    }
    return { type: 'changed', kv: fromWireKeyValue((await response.json()) as WireKeyValue) };
  }

  /** The server's `/healthz` answer. Throws BackendUnavailableError when no endpoint is healthy. */
  async health(options: CallOptions = {}): Promise<{ endpoint: string; status: number; body: unknown }> {
    const response = await this.transport.send({
      method: 'GET',
      path: '/healthz',
      idempotent: true,
      ...callOptions(options),
    });
    return { endpoint: this.transport.endpoint, status: response.status, body: await readJsonBody(response) };
  }

  /**
   * Every change under `prefix` (or to the one key, with `prefix: false`) from
   * `fromRevision` on, as an async iterator. It reconnects on its own and resumes
   * after the last complete revision it delivered; it throws CompactedError when
   * that history is gone. Stop it with `signal` or by leaving the loop.
   *
   * @example
   *   for await (const event of client.watch('/config/', { fromRevision: 1 })) console.log(event.type, event.kv.key);
   */
  watch(prefix: string, options: ClientWatchOptions = {}): AsyncIterable<WatchEvent> {
    if (options.prefix === false) validateKey(prefix);
    else validatePrefix(prefix);
    return {
      [Symbol.asyncIterator]: () =>
        watchEvents(this.transport, prefix, options, this.runtime, async () => {
          const range = await this.listWire(prefix, {
            limit: 1,
            keysOnly: true,
            ...(options.signal ? { signal: options.signal } : {}),
          });
          return range.revision;
        }),
    };
  }

  // ---- coordination primitives (issue 3) ----------------------------------

  /**
   * Wait for lock `name` and take it for the session `lease`. Throws TimeoutError
   * when `timeoutMs` passes first. See AcquireLockOptions for the lock-delay.
   */
  async acquireLock(name: string, lease: LeaseId, options: AcquireLockOptions = {}): Promise<LockHandle> {
    const body = options.lockDelayMs ? { lease, lockDelay: `${Math.round(options.lockDelayMs)}ms` } : { lease };
    return this.blockingCall<LockHandle>(`/v1/locks/${seg(name)}/acquire`, body, options, name);
  }

  /** Release a lock; NotHolderError if `token` no longer holds it. */
  async releaseLock(name: string, held: Held, options: CallOptions = {}): Promise<void> {
    await this.postJson(`/v1/locks/${seg(name)}/release`, { key: held.key, token: held.token }, options, held.key);
  }

  /** Who holds lock `name`, and how many wait. */
  async lockStatus(name: string, options: CallOptions = {}): Promise<LockState> {
    return this.getJson<LockState>(`/v1/locks/${seg(name)}`, options);
  }

  /** Take one of `limit` slots of semaphore `name` (every contender must give the same limit). */
  async acquireSemaphore(
    name: string,
    limit: number,
    lease: LeaseId,
    options: BlockingOptions = {},
  ): Promise<SemaphoreHandle> {
    return this.blockingCall<SemaphoreHandle>(`/v1/semaphores/${seg(name)}/acquire`, { lease, limit }, options, name);
  }

  async releaseSemaphore(name: string, held: Held, options: CallOptions = {}): Promise<void> {
    await this.postJson(`/v1/semaphores/${seg(name)}/release`, { key: held.key, token: held.token }, options, held.key);
  }

  async semaphoreStatus(name: string, options: CallOptions = {}): Promise<SemaphoreState> {
    return this.getJson<SemaphoreState>(`/v1/semaphores/${seg(name)}`, options);
  }

  /** Campaign in election `name` with `value`; resolves when the caller leads. */
  async campaign(name: string, value: string, lease: LeaseId, options: BlockingOptions = {}): Promise<Leadership> {
    return this.blockingCall<Leadership>(`/v1/elections/${seg(name)}/campaign`, { lease, value }, options, name);
  }

  /** Change the leader's value; NotHolderError if the caller no longer leads. */
  async proclaim(name: string, leadership: Leadership, value: string, options: CallOptions = {}): Promise<number> {
    const { key, token, lease } = leadership;
    const body = await this.postJson<WireProclaimed>(
      `/v1/elections/${seg(name)}/proclaim`,
      { key, token, lease, value },
      options,
      key,
    );
    return body.revision;
  }

  async resign(name: string, held: Held, options: CallOptions = {}): Promise<void> {
    await this.postJson(`/v1/elections/${seg(name)}/resign`, { key: held.key, token: held.token }, options, held.key);
  }

  /** The current leader of election `name`, or null. */
  async leader(name: string, options: CallOptions = {}): Promise<LeaderInfo | null> {
    return (await this.getJson<WireLeaderAnswer>(`/v1/elections/${seg(name)}/leader`, options)).leader;
  }

  /**
   * The leader now and at every change, in order (null while there is none).
   * Reconnects after a network failure, starting with the leader at that time.
   */
  async *observeLeader(name: string, options: { signal?: AbortSignal } = {}): AsyncGenerator<LeaderInfo | null> {
    let last: string | undefined;
    const backoff = new Backoff(this.runtime, { initialMs: 200, maxMs: 5000 });
    while (!options.signal?.aborted) {
      try {
        const response = await this.transport.send({
          method: 'GET',
          path: `/v1/elections/${seg(name)}/observe`,
          idempotent: true,
          timeoutMs: 0,
          context: { subject: name },
          ...(options.signal ? { signal: options.signal } : {}),
        });
        for await (const data of sseData(response, 'leader')) {
          const leader = (JSON.parse(data) as WireLeaderAnswer).leader;
          const id = leader ? `${leader.key}@${leader.token}:${leader.value}` : '';
          backoff.reset();
          if (id === last) continue;
          last = id;
          yield leader;
        }
      } catch (error) {
        if (options.signal?.aborted) return;
        if (!(error instanceof BackendUnavailableError) && !isNetworkError(error)) throw error;
      }
      await backoff.wait(options.signal).catch(() => undefined);
    }
  }

  /** Arrive at barrier `name` and wait until `count` participants have (`id` defaults to the lease id). */
  async enterBarrier(
    name: string,
    count: number,
    lease: LeaseId,
    options: BlockingOptions & { id?: string } = {},
  ): Promise<BarrierState> {
    const body = { count, lease, ...(options.id ? { id: options.id } : {}) };
    return this.blockingCall<BarrierState>(`/v1/barriers/${seg(name)}/enter`, body, options, name);
  }

  /** Leave a double barrier; resolves when every participant has left. */
  async leaveBarrier(name: string, id: string, options: BlockingOptions = {}): Promise<void> {
    await this.blockingCall(`/v1/barriers/${seg(name)}/leave`, { id }, options, name);
  }

  async barrierStatus(name: string, options: CallOptions = {}): Promise<BarrierState> {
    return this.getJson<BarrierState>(`/v1/barriers/${seg(name)}`, options);
  }

  /** Close a tripped barrier and forget its participants. */
  async resetBarrier(name: string, options: CallOptions = {}): Promise<number> {
    return (await this.deleteJson<WireBarrierReset>(`/v1/barriers/${seg(name)}`, options)).deleted;
  }

  /** Join `once NAME`: run the command if `role` is "runner", else use the recorded result. */
  async beginOnce(name: string, lease: LeaseId, options: BlockingOptions = {}): Promise<OnceTurn> {
    return this.blockingCall<OnceTurn>(`/v1/once/${seg(name)}/begin`, { lease }, options, name);
  }

  /** Record the runner's result; NotHolderError if its session ended first. */
  async completeOnce(
    name: string,
    turn: { key: string; token: number; startedAt?: string },
    outcome: { exitCode: number; output: string; runner: string },
    options: CallOptions = {},
  ): Promise<OnceResult> {
    const body = {
      key: turn.key,
      token: turn.token,
      ...(turn.startedAt ? { startedAt: turn.startedAt } : {}),
      ...outcome,
    };
    return (await this.postJson<WireOnceCompleted>(`/v1/once/${seg(name)}/complete`, body, options, turn.key)).result;
  }

  async onceStatus(name: string, options: CallOptions = {}): Promise<OnceState> {
    return this.getJson<OnceState>(`/v1/once/${seg(name)}`, options);
  }

  /** Forget the recorded result so the next caller runs the command again; false if there was none. */
  async resetOnce(name: string, options: CallOptions = {}): Promise<boolean> {
    return (await this.deleteJson<WireOnceReset>(`/v1/once/${seg(name)}`, options)).reset;
  }

  /** Block until `key` satisfies `condition` (Noah's noah_block). Throws TimeoutError. */
  async waitFor(key: string, condition: WaitCondition, options: BlockingOptions = {}): Promise<WaitOutcome> {
    const timeoutMs = options.timeoutMs ?? 60_000;
    const response = await this.transport.send({
      method: 'GET',
      path:
        keyPath('/v1/wait', validateKey(key)) +
        queryString({ ...condition, timeout: `${Math.max(1, Math.round(timeoutMs))}ms` }),
      idempotent: true,
      timeoutMs: timeoutMs + LONG_POLL_GRACE_MS,
      context: { subject: key },
      ...(options.signal ? { signal: options.signal } : {}),
    });
    const body = (await response.json()) as WireWaitAnswer;
    const kv = body.kv ? fromWireKeyValue(body.kv) : null;
    return {
      key: body.key,
      revision: body.revision,
      value: kv ? utf8.decode(kv.value) : null,
      modRevision: kv ? kv.modRevision : null,
    };
  }

  /**
   * A consistent snapshot of the server's embedded store, as bytes to write to a
   * file (`muster snapshot save`). SnapshotUnsupportedError on etcd.
   */
  async snapshot(signal?: AbortSignal): Promise<SnapshotStream> {
    const response = await this.transport.send({
      method: 'GET',
      path: '/v1/snapshot',
      idempotent: true,
      // The timeout covers reading the body too; a large store takes a while to stream.
      timeoutMs: 600_000,
      ...(signal ? { signal } : {}),
    });
    const body = response.body as unknown as AsyncIterable<Uint8Array> | null;
    async function* chunks(): AsyncGenerator<Uint8Array> {
      if (body) yield* body;
    }
    return {
      revision: Number(response.headers.get('x-muster-revision') ?? 0),
      size: Number(response.headers.get('content-length') ?? 0),
      chunks: chunks(),
    };
  }

  // ---- nodes (issue 10) ----------------------------------------------------

  /** Register a node (what `muster agent` does at every connect), up while `registration.lease` lives. */
  async registerNode(name: string, registration: NodeRegistration, options: CallOptions = {}): Promise<NodeInfo> {
    return this.sendJson<NodeInfo>('PUT', `/v1/nodes/${seg(name)}`, registration, options, name);
  }

  /**
   * The registered nodes, or those `query` matches (docs/queries.md), by name.
   * `facts: false` answers summaries, without facts or registeredAt
   * (`GET /v1/nodes?facts=false`): what a list of thousands needs; `getNode` has
   * a node's facts.
   *
   * @example
   *   const down = await client.listNodes('status:down', { facts: false });
   */
  async listNodes(query?: string, options?: CallOptions & { facts?: true }): Promise<NodeInfo[]>;
  async listNodes(query: string | undefined, options: CallOptions & { facts: false }): Promise<NodeSummary[]>;
  async listNodes(query?: string, options: CallOptions & { facts?: boolean } = {}): Promise<NodeSummary[]> {
    const { facts, ...call } = options;
    const path = '/v1/nodes' + queryString({ query, facts: facts === false ? false : undefined });
    return (await this.getJson<{ nodes: NodeInfo[] }>(path, call)).nodes;
  }

  /** One node. Throws InvalidArgumentError-like node_not_found (404) when none is registered so. */
  async getNode(name: string, options: CallOptions = {}): Promise<NodeInfo> {
    return this.getJson<NodeInfo>(`/v1/nodes/${seg(name)}`, options);
  }

  /** Forget a node; false when there was none. Needs jobs:run. */
  async removeNode(name: string, options: CallOptions = {}): Promise<boolean> {
    return (await this.deleteJson<{ removed: boolean }>(`/v1/nodes/${seg(name)}`, options)).removed;
  }

  // ---- groups, desired state and plans (issue 11) --------------------------

  /** Make or change a group: a named node query. Needs jobs:run. */
  async putGroup(name: string, query: string, options: CallOptions = {}): Promise<Group> {
    return this.sendJson<Group>('PUT', `/v1/groups/${seg(name)}`, { query }, options, name);
  }

  async listGroups(options: CallOptions = {}): Promise<Group[]> {
    return (await this.getJson<{ groups: Group[] }>('/v1/groups', options)).groups;
  }

  /** A group with its desired state and each node's reported state. */
  async groupStatus(name: string, options: CallOptions = {}): Promise<GroupStatus> {
    return this.getJson<GroupStatus>(`/v1/groups/${seg(name)}`, options);
  }

  async removeGroup(name: string, options: CallOptions = {}): Promise<boolean> {
    return (await this.deleteJson<{ removed: boolean }>(`/v1/groups/${seg(name)}`, options)).removed;
  }

  /** Set a group's desired state (the previous one is kept for a rollback). Needs jobs:run. */
  async setDesired(group: string, desired: DesiredSpec, options: CallOptions = {}): Promise<Desired> {
    return this.sendJson<Desired>('PUT', `/v1/desired/${seg(group)}`, desired, options, group);
  }

  /** A group's desired state, or null when none was set. */
  async getDesired(group: string, options: CallOptions = {}): Promise<Desired | null> {
    return (await this.getJson<{ desired: Desired | null }>(`/v1/desired/${seg(group)}`, options)).desired;
  }

  /**
   * What `node` is to be in now: its group's desired state, or the previous one
   * while a plan's rolling step has not released the node yet (null: none). What a
   * recipe converges to.
   */
  async effectiveDesired(group: string, node: string, options: CallOptions = {}): Promise<DesiredValue | null> {
    const path = `/v1/desired/${seg(group)}?node=${encodeURIComponent(node)}`;
    return (await this.getJson<{ effective?: DesiredValue | null }>(path, options)).effective ?? null;
  }

  /** A node reports its actual state in a group (a node token: for itself only). */
  async reportState(
    group: string,
    node: string,
    state: string,
    version: string | null = null,
    options: CallOptions = {},
  ): Promise<ActualState> {
    return this.sendJson<ActualState>('PUT', `/v1/state/${seg(group)}/${seg(node)}`, { state, version }, options, node);
  }

  /** What applying a plan would do now: its order, batches and nodes (nothing is applied). */
  async previewPlan(source: string, filename = 'plan', options: CallOptions = {}): Promise<PlanPreview> {
    return this.postJson<PlanPreview>('/v1/plans', { source, filename, dryRun: true }, options, filename);
  }

  /** Apply a plan (YAML or JSON text); the server runs it. Needs jobs:run. */
  async applyPlan(source: string, filename = 'plan', options: CallOptions = {}): Promise<PlanRecord> {
    return this.postJson<PlanRecord>('/v1/plans', { source, filename }, options, filename);
  }

  async listPlans(query: { limit?: number } = {}, options: CallOptions = {}): Promise<PlanRecord[]> {
    return (await this.getJson<{ plans: PlanRecord[] }>('/v1/plans' + queryString({ limit: query.limit }), options))
      .plans;
  }

  async getPlan(id: string, options: CallOptions = {}): Promise<PlanRecord> {
    return this.getJson<PlanRecord>(`/v1/plans/${seg(id)}`, options);
  }

  async pausePlan(id: string, options: CallOptions = {}): Promise<PlanRecord> {
    return this.postJson<PlanRecord>(`/v1/plans/${seg(id)}/pause`, {}, options, id);
  }

  async resumePlan(id: string, options: CallOptions = {}): Promise<PlanRecord> {
    return this.postJson<PlanRecord>(`/v1/plans/${seg(id)}/resume`, {}, options, id);
  }

  async abortPlan(id: string, options: CallOptions = {}): Promise<PlanRecord> {
    return this.deleteJson<PlanRecord>(`/v1/plans/${seg(id)}`, options);
  }

  /**
   * Follow a plan: its record at each change, until it has ended. Reconnects on
   * its own (each connection starts with the plan as it is then).
   */
  async *planEvents(id: string, options: { signal?: AbortSignal } = {}): AsyncGenerator<PlanRecord> {
    const backoff = new Backoff(this.runtime, { initialMs: 200, maxMs: 5000 });
    while (!options.signal?.aborted) {
      try {
        const response = await this.transport.send({
          method: 'GET',
          path: `/v1/plans/${seg(id)}/events`,
          idempotent: true,
          timeoutMs: 0,
          context: { subject: id },
          ...(options.signal ? { signal: options.signal } : {}),
        });
        if (!response.body) throw new BackendUnavailableError('the plan stream has no body');
        for await (const item of readSse(response.body)) {
          if (item.type !== 'event') continue;
          backoff.reset();
          if (item.event === 'plan') yield JSON.parse(item.data) as PlanRecord;
          else if (item.event === 'end') return;
          else if (item.event === 'error') throw new BackendUnavailableError(`the plan stream failed: ${item.data}`);
        }
      } catch (error) {
        if (options.signal?.aborted) return;
        if (!(error instanceof BackendUnavailableError) && !isNetworkError(error)) throw error;
      }
      await backoff.wait(options.signal).catch(() => undefined);
    }
  }

  // ---- push jobs and triggers (issue 10) ----------------------------------

  /** Start a job: `command` (allowlisted on the nodes) on the nodes `query` matches. Needs jobs:run. */
  async startJob(request: JobRequest, options: CallOptions = {}): Promise<JobRecord> {
    return this.postJson<JobRecord>('/v1/jobs', request, options, request.command);
  }

  /** The jobs, newest first (a node token sees only its own). */
  async listJobs(query: { limit?: number; state?: string } = {}, options: CallOptions = {}): Promise<JobView[]> {
    const path = '/v1/jobs' + queryString({ limit: query.limit, state: query.state });
    return (await this.getJson<{ jobs: JobView[] }>(path, options)).jobs;
  }

  /** A job with its counts and every node's state. Throws InvalidArgumentError (job_not_found). */
  async getJob(id: string, options: CallOptions = {}): Promise<JobView> {
    return this.getJson<JobView>(`/v1/jobs/${seg(id)}`, options);
  }

  /** A node's output in a job, oldest chunk first. */
  async jobOutput(id: string, node: string, options: CallOptions = {}): Promise<JobOutput> {
    return this.getJson<JobOutput>(`/v1/jobs/${seg(id)}/nodes/${seg(node)}/output`, options);
  }

  /** Abort a job (nodes not started never start; running ones are stopped). Needs jobs:run. */
  async abortJob(id: string, options: CallOptions = {}): Promise<JobRecord> {
    return this.deleteJson<JobRecord>(`/v1/jobs/${seg(id)}`, options);
  }

  /**
   * Follow a job: its record, every node's state and output as they change, then
   * `{type: 'end'}` once it is over. Reconnects on its own, resuming after the last
   * revision it delivered.
   *
   * @example
   *   for await (const e of client.jobEvents(job.id)) if (e.type === 'output') process.stdout.write(e.chunk.data);
   */
  async *jobEvents(id: string, options: { signal?: AbortSignal } = {}): AsyncGenerator<JobEvent> {
    let last: number | undefined;
    const backoff = new Backoff(this.runtime, { initialMs: 200, maxMs: 5000 });
    while (!options.signal?.aborted) {
      try {
        const response = await this.transport.send({
          method: 'GET',
          path: `/v1/jobs/${seg(id)}/events`,
          headers: last !== undefined ? { 'last-event-id': String(last) } : {},
          idempotent: true,
          timeoutMs: 0,
          context: { subject: id },
          ...(options.signal ? { signal: options.signal } : {}),
        });
        if (!response.body) throw new BackendUnavailableError('the job stream has no body');
        for await (const item of readSse(response.body)) {
          if (item.type !== 'event') continue;
          backoff.reset();
          const revision = item.id !== undefined && item.id !== '' ? Number(item.id) : undefined;
          if (item.event === 'job') yield { type: 'job', job: JSON.parse(item.data) as JobRecord };
          else if (item.event === 'node') yield { type: 'node', node: JSON.parse(item.data) as NodeJobRecord };
          else if (item.event === 'output') yield { type: 'output', chunk: JSON.parse(item.data) as OutputChunk };
          else if (item.event === 'end') {
            yield { type: 'end' };
            return;
          } else if (item.event === 'compacted') last = undefined;
          else if (item.event === 'error') throw new BackendUnavailableError(`the job stream failed: ${item.data}`);
          if (revision !== undefined && Number.isFinite(revision)) last = revision;
        }
      } catch (error) {
        if (options.signal?.aborted) return;
        if (!(error instanceof BackendUnavailableError) && !isNetworkError(error)) throw error;
      }
      await backoff.wait(options.signal).catch(() => undefined);
    }
  }

  /**
   * A node's assignments (what its agent is asked to run or stop), as they come;
   * reconnects and resumes after the last revision it delivered. `muster agent` holds this.
   */
  async *assignments(
    node: string,
    options: { signal?: AbortSignal; from?: number } = {},
  ): AsyncGenerator<AssignmentEvent> {
    let next = options.from;
    const backoff = new Backoff(this.runtime, { initialMs: 200, maxMs: 5000 });
    while (!options.signal?.aborted) {
      try {
        const response = await this.transport.send({
          method: 'GET',
          path: `/v1/nodes/${seg(node)}/assignments` + queryString({ from: next }),
          idempotent: true,
          timeoutMs: 0,
          context: { subject: node },
          ...(options.signal ? { signal: options.signal } : {}),
        });
        if (!response.body) throw new BackendUnavailableError('the assignment stream has no body');
        for await (const data of sseData(response, 'assignment')) {
          backoff.reset();
          const event = JSON.parse(data) as AssignmentEvent;
          next = event.revision + 1;
          yield event;
        }
      } catch (error) {
        if (options.signal?.aborted) return;
        if (!(error instanceof BackendUnavailableError) && !isNetworkError(error)) throw error;
      }
      await backoff.wait(options.signal).catch(() => undefined);
    }
  }

  /** A node reports on its part in a job; a seq already taken is answered `accepted: false`. */
  async reportJob(
    id: string,
    node: string,
    report: JobReport,
    options: CallOptions = {},
  ): Promise<{ accepted: boolean; state: string }> {
    const response = await this.transport.send({
      method: 'POST',
      path: `/v1/jobs/${seg(id)}/nodes/${seg(node)}/report`,
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(report),
      // The seq makes a resent report harmless.
      idempotent: true,
      context: { subject: id },
      ...callOptions(options),
    });
    return (await response.json()) as { accepted: boolean; state: string };
  }

  /** Add (or replace) a trigger: a change under `on` starts the job. Needs jobs:run. */
  async addTrigger(request: TriggerRequest, options: CallOptions = {}): Promise<TriggerRecord> {
    return this.postJson<TriggerRecord>('/v1/triggers', request, options, request.name);
  }

  async listTriggers(options: CallOptions = {}): Promise<TriggerRecord[]> {
    return (await this.getJson<{ triggers: TriggerRecord[] }>('/v1/triggers', options)).triggers;
  }

  /** A trigger with the jobs it started. Throws InvalidArgumentError (trigger_not_found). */
  async getTrigger(name: string, options: CallOptions = {}): Promise<TriggerRecord> {
    return this.getJson<TriggerRecord>(`/v1/triggers/${seg(name)}`, options);
  }

  async removeTrigger(name: string, options: CallOptions = {}): Promise<void> {
    await this.deleteJson(`/v1/triggers/${seg(name)}`, options);
  }

  // ---- webhooks (docs/hooks.md) -------------------------------------------

  /**
   * Add a webhook: every change under `prefix` from now on is POSTed to `url`, in
   * order, at least once. Needs hooks:manage. Throws on hook_exists, invalid_url.
   * @example await client.addHook({ name: 'ci', prefix: '/deploy/', url: 'https://ci.example/hook', secret: 's3cret' })
   */
  async addHook(request: HookRequest, options: CallOptions = {}): Promise<HookView> {
    return this.postJson<HookView>('/v1/hooks', request, options, request.name);
  }

  async listHooks(options: CallOptions = {}): Promise<HookView[]> {
    return (await this.getJson<{ hooks: HookView[] }>('/v1/hooks', options)).hooks;
  }

  /** A hook's status (active, failing, paused), cursor and failures. Throws on hook_not_found. */
  async getHook(name: string, options: CallOptions = {}): Promise<HookView> {
    return this.getJson<HookView>(`/v1/hooks/${seg(name)}`, options);
  }

  /** The hook's last 100 delivery attempts, oldest first. */
  async hookDeliveries(name: string, options: CallOptions = {}): Promise<HookDelivery[]> {
    return (await this.getJson<{ deliveries: HookDelivery[] }>(`/v1/hooks/${seg(name)}/deliveries`, options))
      .deliveries;
  }

  async pauseHook(name: string, options: CallOptions = {}): Promise<HookView> {
    return this.postJson<HookView>(`/v1/hooks/${seg(name)}/pause`, {}, options, name);
  }

  /** Resume a paused hook: delivery restarts from its cursor. */
  async resumeHook(name: string, options: CallOptions = {}): Promise<HookView> {
    return this.postJson<HookView>(`/v1/hooks/${seg(name)}/resume`, {}, options, name);
  }

  async removeHook(name: string, options: CallOptions = {}): Promise<void> {
    await this.deleteJson(`/v1/hooks/${seg(name)}`, options);
  }

  /**
   * A blocking POST: the server waits up to `timeoutMs`; the HTTP request waits a
   * little longer for its answer. Retrying it with the same lease is safe (the
   * caller finds its old place), so it counts as idempotent.
   */
  private async blockingCall<T>(path: string, body: object, options: BlockingOptions, subject: string): Promise<T> {
    const timeoutMs = options.timeoutMs ?? 60_000;
    const response = await this.transport.send({
      method: 'POST',
      path,
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ ...body, timeout: `${Math.max(1, Math.round(timeoutMs))}ms` }),
      idempotent: true,
      timeoutMs: timeoutMs + LONG_POLL_GRACE_MS,
      context: { subject },
      ...(options.signal ? { signal: options.signal } : {}),
    });
    return (await response.json()) as T;
  }

  private async sendJson<T>(
    method: 'PUT' | 'POST',
    path: string,
    body: object,
    options: CallOptions,
    subject: string,
  ): Promise<T> {
    const response = await this.transport.send({
      method,
      path,
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
      // A PUT sets a whole value: sending it twice leaves what sending it once does.
      idempotent: method === 'PUT',
      context: { subject },
      ...callOptions(options),
    });
    return (await response.json()) as T;
  }

  private async postJson<T = unknown>(path: string, body: object, options: CallOptions, subject: string): Promise<T> {
    const response = await this.transport.send({
      method: 'POST',
      path,
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
      idempotent: false,
      context: { subject },
      ...callOptions(options),
    });
    return (await response.json()) as T;
  }

  private async getJson<T>(path: string, options: CallOptions): Promise<T> {
    const response = await this.transport.send({ method: 'GET', path, idempotent: true, ...callOptions(options) });
    return (await response.json()) as T;
  }

  private async deleteJson<T>(path: string, options: CallOptions): Promise<T> {
    const response = await this.transport.send({ method: 'DELETE', path, idempotent: true, ...callOptions(options) });
    return (await response.json()) as T;
  }
}

/** A primitive's name as one URL path segment. */
function seg(name: string): string {
  return encodeURIComponent(name);
}

function isNetworkError(error: unknown): boolean {
  return error instanceof TypeError || (error instanceof Error && error.name === 'AbortError');
}

/** The `data:` of each SSE event named `event` in a response body (an `error` event fails the stream). */
async function* sseData(response: Response, event: string): AsyncGenerator<string> {
  if (!response.body) return;
  for await (const item of readSse(response.body)) {
    if (item.type !== 'event') continue;
    if (item.event === event) yield item.data;
    else if (item.event === 'error') throw new BackendUnavailableError(`the stream failed: ${item.data}`);
  }
}

function callOptions(options: CallOptions): CallOptions {
  return {
    ...(options.signal ? { signal: options.signal } : {}),
    ...(options.timeoutMs !== undefined ? { timeoutMs: options.timeoutMs } : {}),
  };
}
