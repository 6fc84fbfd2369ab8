/**
 * The one enforcement point. Every route declares in `config.access` what it
 * touches (keys and a mode, a primitive, a lease, a capability, or nothing: a
 * public route); a route without a declaration cannot be registered. One hook
 * authenticates the token (onRequest: 401 before anything else is looked at) and
 * one checks the declaration once the request is parsed (preHandler: 403 naming
 * the rule). The primitives' own keys under /muster/ are then written by the
 * server on the caller's behalf. Reads that cover keys the token may not see
 * (a range, a watch) are filtered with `request.principal`.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import type { Backend, LeaseId, RangeResult } from '../core/backend.js';
import { ForbiddenError, LeaseNotFoundError, LimitExceededError } from '../core/errors.js';
import type { AuditLog } from '../security/audit-log.js';
import type { HeldKind, Limits } from './limits.js';
import { validateKey, validatePrefix } from '../core/key-path.js';
import { leaseOwner } from '../security/lease-owners.js';
import type { Capability, KeyMode } from '../security/policy.js';
import { Policy } from '../security/policy.js';
import type { Principal, TokenRegistry } from '../security/token-registry.js';
import type { UiSessions } from './ui/ui-sessions.js';
import { CSRF_HEADER, sessionIdOf } from './ui/ui-sessions.js';

/** What one key-touching request reads or writes. */
export interface KeyNeed {
  readonly key: string;
  readonly prefix: boolean;
  readonly mode: KeyMode;
  /** A lease the write binds keys to: it must be the caller's. */
  readonly lease?: LeaseId | null | undefined;
  /**
   * The route filters what it reads with `request.principal` (a range, a watch),
   * so a prefix with narrower rules inside may be read; otherwise it is refused.
   */
  readonly filtered?: boolean;
}

export type RouteAccess =
  | { readonly kind: 'public' }
  | { readonly kind: 'keys'; readonly needs: (request: FastifyRequest) => readonly KeyNeed[] }
  | {
      readonly kind: 'primitive';
      readonly mode: 'use' | 'read';
      /** The lease the caller acquires with: it must be the caller's. */
      readonly lease?: (request: FastifyRequest) => LeaseId | undefined;
      /** The holder key the caller releases: its lease must be the caller's. */
      readonly held?: (request: FastifyRequest) => string | undefined;
    }
  | { readonly kind: 'lease'; readonly action: 'grant' | 'own' | 'list' }
  | { readonly kind: 'capability'; readonly capability: Capability }
  | { readonly kind: 'admin' }
  /** Enrolment: an enrol token (or an admin) only. */
  | { readonly kind: 'enrol' };

declare module 'fastify' {
  interface FastifyContextConfig {
    access?: RouteAccess;
    /** The route also takes HTTP Basic credentials whose password is a token (Noah's clients). */
    basicAuth?: boolean;
  }
  interface FastifyRequest {
    /** Who is asking (an admin principal when auth is off; null before authentication). */
    principal: Principal;
    /** Take one of the token's open watches or blocked calls until the returned function is called (429 when none is left). */
    occupy(kind: HeldKind): () => void;
    /** The error code the request was refused with, for the server's log. */
    refusedWith: string | null;
    /** What the audit record names when the path does not (the id of what a POST created). */
    auditTarget: string | null;
  }
}

/** Declarations of the common cases. */
export const access = {
  public: { kind: 'public' } as RouteAccess,
  admin: { kind: 'admin' } as RouteAccess,
  enrol: { kind: 'enrol' } as RouteAccess,
  key: (mode: KeyMode, target: (request: FastifyRequest) => Omit<KeyNeed, 'mode'>): RouteAccess => ({
    kind: 'keys',
    needs: (request) => {
      const need = target(request) as KeyNeed & { mode: KeyMode };
      need.mode = mode;
      return [need];
    },
  }),
  keys: (needs: (request: FastifyRequest) => readonly KeyNeed[]): RouteAccess => ({ kind: 'keys', needs }),
  primitive: (
    mode: 'use' | 'read',
    proof: {
      lease?: (request: FastifyRequest) => LeaseId | undefined;
      held?: (request: FastifyRequest) => string | undefined;
    } = {},
  ): RouteAccess => ({ kind: 'primitive', mode, ...proof }),
  lease: (action: 'grant' | 'own' | 'list'): RouteAccess => ({ kind: 'lease', action }),
  capability: (capability: Capability): RouteAccess => ({ kind: 'capability', capability }),
};

/** The principal of every request when auth is off (`--insecure-no-auth`, or a test app). */
export const NO_AUTH_PRINCIPAL: Principal = {
  tokenId: 'none',
  role: 'admin',
  policy: new Policy({ role: 'admin' }),
};

export interface AccessOptions {
  readonly backend: Backend;
  /** The tokens; null: auth off, everyone is admin. */
  readonly tokens: TokenRegistry | null;
  /** Per-token limits (null: none). */
  readonly limits: Limits | null;
  /** Where writes, primitive actions and refusals are recorded (null: nowhere). */
  readonly audit: AuditLog | null;
  /** The dashboard's sessions: a request without a token may carry a session cookie. */
  readonly sessions?: UiSessions | null;
}

/** Reads are not audited, nor keepalives (a session's heartbeat, every few seconds). */
const UNAUDITED_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);
const UNAUDITED_ROUTES = new Set(['/v1/leases/:id/keepalive', '/v1/jobs/:id/nodes/:node/report']);

/** The token a request presents: `Authorization: Bearer T`. */
export function presentedToken(request: FastifyRequest): string | undefined {
  const header = request.headers.authorization;
  if (typeof header === 'string') {
    // The common form without a regular expression: one space, nothing after the token.
    if (header.startsWith('Bearer ') && header.indexOf(' ', 7) === -1 && header.length > 7) return header.slice(7);
    // Noah's clients (`http://x:TOKEN@host:5678`): Basic, the password is the token.
    if (request.routeOptions.config.basicAuth === true && /^basic\s/i.test(header)) {
      const decoded = Buffer.from(header.slice(6).trim(), 'base64').toString('utf8');
      const colon = decoded.indexOf(':');
      return colon < 0 ? decoded : decoded.slice(colon + 1);
    }
    const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
    return match ? match[1] : header;
  }
  return undefined;
}

export const accessControl = fp<AccessOptions>(
  async (app: FastifyInstance, { backend, tokens, limits, audit, sessions = null }) => {
    app.decorateRequest('principal', null as unknown as Principal);
    app.decorateRequest('refusedWith', null);
    app.decorateRequest('auditTarget', null);
    app.decorateRequest('occupy', function (this: FastifyRequest, kind: HeldKind) {
      return limits && this.principal ? limits.hold(kind, this.principal.tokenId) : () => undefined;
    });
    app.addHook('onRoute', (route) => {
      if (!route.config?.access) {
        throw new Error(`route ${String(route.method)} ${route.url} declares no access (config.access)`);
      }
    });
    // Callback hooks that finish at once when they can (a cached token, no lease to
    // look up): on the path of every request, each promise costs.
    app.addHook('onRequest', (request, reply, done) => {
      const declared = request.routeOptions.config.access;
      // An unknown route (404) is answered as such, with or without a token.
      if (!declared || declared.kind === 'public' || tokens === null) {
        request.principal = NO_AUTH_PRINCIPAL;
        done();
        return;
      }
      const admitted = (principal: Principal): void => {
        request.principal = principal;
        try {
          limits?.admit(principal.tokenId);
        } catch (error) {
          if (error instanceof LimitExceededError && error.retryAfterSeconds !== undefined) {
            reply.header('retry-after', error.retryAfterSeconds);
          }
          done(error as Error);
          return;
        }
        done();
      };
      let presented = presentedToken(request);
      if (presented === undefined && sessions !== null) {
        const id = sessionIdOf(request);
        presented = id === undefined ? undefined : sessions.tokenOf(id);
        // A cookie rides along with any request the browser makes, a forged one from
        // another site included (SameSite=Strict stops most): changes need a header
        // that only the dashboard's own script sets.
        if (presented !== undefined && !UNAUDITED_METHODS.has(request.method) && !request.headers[CSRF_HEADER]) {
          done(
            new ForbiddenError(
              `a request signed in by the dashboard's cookie must carry the ${CSRF_HEADER} header to change anything`,
              'csrf',
            ),
          );
          return;
        }
      }
      let now: Principal | undefined;
      try {
        now = tokens.authenticateNow(presented);
      } catch (error) {
        done(error as Error);
        return;
      }
      if (now) admitted(now);
      else tokens.authenticate(presented).then(admitted, (error: Error) => done(error));
    });
    app.addHook('preHandler', (request, _reply, done) => {
      const declared = request.routeOptions.config.access;
      if (!declared || tokens === null) {
        done();
        return;
      }
      let pending: Promise<void> | undefined;
      try {
        pending = authorize(backend, request.principal, declared, request);
      } catch (error) {
        done(error as Error);
        return;
      }
      if (pending)
        pending.then(
          () => done(),
          (error: Error) => done(error),
        );
      else done();
    });
    // What was carried out goes to the audit log; a refusal leaves no trace in the
    // store (nothing a watcher could see), and one for want of a token or a right is
    // logged by the server instead.
    app.addHook('onError', async (request, _reply, error) => {
      request.refusedWith = (error as { code?: unknown }).code?.toString() ?? 'internal';
    });
    app.addHook('onResponse', (request, reply, done) => {
      done();
      // The common case first: a read that was answered is neither logged nor audited.
      if (reply.statusCode < 300 && UNAUDITED_METHODS.has(request.method)) return;
      const route = request.routeOptions.url;
      const declared = request.routeOptions.config.access;
      if (!route || !declared || declared.kind === 'public') return;
      const params = (request.params ?? {}) as Record<string, string | undefined>;
      const target =
        request.auditTarget ??
        (params['*'] !== undefined ? '/' + params['*'] : (params.name ?? params.id ?? params.node ?? ''));
      const tokenId = request.principal?.tokenId ?? 'none';
      const role = request.principal?.role ?? 'none';
      if (reply.statusCode === 401 || reply.statusCode === 403) {
        request.log.warn(
          { tokenId, role, method: request.method, route, target, status: reply.statusCode, code: request.refusedWith },
          'refused',
        );
        return;
      }
      if (audit === null || reply.statusCode >= 300) return;
      if (UNAUDITED_METHODS.has(request.method) || UNAUDITED_ROUTES.has(route)) return;
      audit.record({ tokenId, role, method: request.method, route, target, status: reply.statusCode });
    });
  },
  { name: 'muster-access' },
);

/**
 * Check a request against its route's declaration: throws ForbiddenError at once,
 * or returns a promise when a lease's owner must be looked up (undefined otherwise).
 */
function authorize(
  backend: Backend,
  who: Principal,
  declared: RouteAccess,
  request: FastifyRequest,
): Promise<void> | undefined {
  const { policy } = who;
  const deny = (what: string, rule: string): never => forbid(policy, what, rule);
  switch (declared.kind) {
    case 'public':
      return undefined;
    case 'admin':
      if (!policy.isAdmin) deny('do this: it is for admin tokens', `${policy.describe()}`);
      return undefined;
    case 'enrol':
      if (!policy.isAdmin && who.role !== 'enrol') deny('enrol nodes: it takes an enrol token', policy.describe());
      return undefined;
    case 'capability': {
      const decision = policy.capability(declared.capability);
      if (!decision.allowed) deny(`do this without ${declared.capability}`, decision.rule);
      return undefined;
    }
    case 'keys': {
      const leases: LeaseId[] = [];
      for (const need of declared.needs(request)) {
        // Checked as given: every route validates its keys itself (400 for `..`,
        // `//`, NUL…), so a key that is not one is refused there whatever this says;
        // before a refusal here, it is validated, so that bad input is a 400, not a 403.
        const key = need.key;
        const check = need.prefix ? validatePrefix : validateKey;
        if (need.prefix) {
          const decision = policy.prefix(key, need.mode);
          if (!decision.allowed) deny(`${need.mode} under ${check(key)}`, decision.rule);
          const hidden = decision.narrower[0];
          if (hidden && !need.filtered) deny(`${need.mode} under ${check(key)}`, `${hidden.access} ${hidden.prefix}`);
        } else {
          const decision = policy.key(key, need.mode);
          if (!decision.allowed) deny(`${need.mode} ${check(key)}`, decision.rule);
        }
        if (need.lease) leases.push(need.lease);
      }
      return leases.length === 0 || policy.isAdmin
        ? undefined
        : Promise.all(leases.map((lease) => ownLease(backend, who, lease))).then(() => undefined);
    }
    case 'primitive': {
      const name = (request.params as { name?: string }).name ?? '';
      const decision = policy.primitive(name, declared.mode);
      if (!decision.allowed) deny(`${declared.mode} the primitive ${JSON.stringify(name)}`, decision.rule);
      const lease = declared.lease?.(request);
      const held = declared.held?.(request);
      if (policy.isAdmin || (!lease && !held)) return undefined;
      const heldKey = held ? validateKey(held) : undefined;
      return (async () => {
        if (lease) await ownLease(backend, who, lease);
        if (heldKey) {
          const kv = await backend.get(heldKey);
          // A key that is gone is answered by the route (409 not_holder).
          if (kv?.lease) await ownLease(backend, who, kv.lease);
        }
      })();
    }
    case 'lease': {
      if (declared.action === 'list') {
        const decision = policy.prefix('/', 'read');
        if (!decision.allowed) deny('list every lease', decision.rule);
        return undefined;
      }
      if (declared.action === 'grant') {
        // Reading tokens may not hold leases: a lease is for writing (ephemeral keys, primitives).
        if (policy.spec.role === 'reader') deny('grant leases', 'role reader');
        return undefined;
      }
      return ownLease(backend, who, (request.params as { id: string }).id);
    }
  }
}

function forbid(policy: Policy, what: string, rule: string): never {
  throw new ForbiddenError(`${policy.describe()} may not ${what} (${rule})`, rule);
}

/** The lease must be the caller's (or the caller an admin). A lease nobody owns is an admin's. */
async function ownLease(backend: Backend, who: Principal, lease: LeaseId): Promise<void> {
  if (who.policy.isAdmin) return;
  const owner = await leaseOwner(backend, lease);
  if (owner === who.tokenId) return;
  if (owner === null) {
    // Say "not found" only for a lease that does not exist.
    await backend.leaseInfo(lease).catch((error: unknown) => {
      if (error instanceof LeaseNotFoundError) throw error;
    });
  }
  throw new ForbiddenError(
    `${who.policy.describe()} may not use the lease ${lease}: it belongs to another token`,
    'lease owner',
  );
}

/**
 * A range as `who` may see it: keys under a rule that hides them are left out,
 * and `count` is lowered by the keys under those rules at the same revision.
 */
export async function visibleRange(
  backend: Backend,
  who: Principal,
  prefix: string,
  range: RangeResult,
): Promise<RangeResult> {
  const hidden = who.policy.prefix(prefix, 'read').narrower;
  if (hidden.length === 0) return range;
  let count = range.count;
  for (const rule of hidden) {
    // Only the outermost hidden prefixes count (one inside another is already in it).
    if (hidden.some((other) => other !== rule && rule.prefix.startsWith(other.prefix))) continue;
    const under = await backend.range({
      key: rule.prefix,
      prefix: true,
      revision: range.revision,
      limit: 1,
      keysOnly: true,
    });
    count -= under.count;
  }
  return { ...range, kvs: range.kvs.filter((kv) => who.policy.canRead(kv.key)), count };
}

/** A filter for a watch of `prefix` by `who`, or null when every event may be seen. */
export function eventFilter(who: Principal, prefix: string): ((key: string) => boolean) | null {
  return who.policy.prefix(prefix, 'read').narrower.length === 0 ? null : (key) => who.policy.canRead(key);
}
