import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { startAuthApp } from './auth-harness.js';
import type { AuthApp, Who } from './auth-harness.js';

/**
 * Every route × every role: allowed (anything but 401/403) or denied (403; 401
 * without a valid token), generated from the app's own route list. A route
 * added without a row here fails the first test; a route registered without an
 * access declaration cannot be built at all (server/access.ts).
 */

type Role = Exclude<Who, 'anonymous' | 'bogus'>;
const ALL: Role[] = ['admin', 'operator', 'reader', 'node', 'cluster'];
const READERS: Role[] = ['admin', 'operator', 'reader'];
const WRITERS: Role[] = ['admin', 'operator'];
const USERS: Role[] = ['admin', 'operator', 'node', 'cluster'];
const PUBLIC = 'public' as const;

interface Row {
  readonly path: (who: Who) => string;
  readonly body?: (who: Who) => unknown;
  /** Who may; `public`: everyone, without a token too. */
  readonly allowed: readonly Role[] | typeof PUBLIC;
  /** A stream: only the status line is read. */
  readonly stream?: boolean;
}

let t: AuthApp;
/** Each role's own lease (the reader's is the admin's: readers hold none). */
const lease: Partial<Record<Who, string>> = {};
let adminLease = '';

const own = (who: Who) => lease[who] ?? adminLease;
const fixed = (path: string) => () => path;

const MATRIX: Record<string, Row> = {
  'GET /healthz': { path: fixed('/healthz'), allowed: PUBLIC },
  'GET /openapi.json': { path: fixed('/openapi.json'), allowed: PUBLIC },
  'GET /metrics': { path: fixed('/metrics'), allowed: READERS },
  'GET /v1/snapshot': { path: fixed('/v1/snapshot'), allowed: ['admin'] },
  'POST /v1/tokens': { path: fixed('/v1/tokens'), body: () => ({ role: 'reader' }), allowed: ['admin'] },
  'GET /v1/tokens': { path: fixed('/v1/tokens'), allowed: ['admin'] },
  'GET /v1/tokens/{id}': { path: fixed('/v1/tokens/000000000000'), allowed: ['admin'] },
  'DELETE /v1/tokens/{id}': { path: fixed('/v1/tokens/000000000000'), allowed: ['admin'] },
  'GET /v1/auth/whoami': { path: fixed('/v1/auth/whoami'), allowed: ALL },
  'GET /v1/primitives': { path: fixed('/v1/primitives'), allowed: ALL },
  // Signing in checks the token in the body (a valid one here), whoever sends it.
  'POST /v1/ui/session': { path: fixed('/v1/ui/session'), body: () => ({ token: t.token.admin }), allowed: PUBLIC },
  'DELETE /v1/ui/session': { path: fixed('/v1/ui/session'), allowed: PUBLIC },
  'GET /v1/audit': { path: fixed('/v1/audit?since=1h'), allowed: ['admin'] },
  'POST /v1/enrol': { path: fixed('/v1/enrol'), body: () => ({ node: 'enrolled' }), allowed: ['admin'] },
  'PUT /v1/kv/{*}': { path: fixed('/v1/kv/app/x'), body: () => Buffer.from('v'), allowed: WRITERS },
  'GET /v1/kv/{*}': { path: fixed('/v1/kv/app/?prefix=true'), allowed: READERS },
  'DELETE /v1/kv/{*}': { path: fixed('/v1/kv/app/x'), allowed: WRITERS },
  'POST /v1/txn': {
    path: fixed('/v1/txn'),
    body: () => ({
      compare: [{ key: '/app/x', target: 'version', op: '>', value: 0 }],
      success: [{ type: 'put', key: '/app/y', value: 'v' }],
    }),
    allowed: WRITERS,
  },
  'POST /v1/leases': { path: fixed('/v1/leases'), body: () => ({ ttl: 30 }), allowed: USERS },
  'GET /v1/leases': { path: fixed('/v1/leases'), allowed: READERS },
  'GET /v1/leases/{id}': { path: (who) => `/v1/leases/${own(who)}`, allowed: USERS },
  'POST /v1/leases/{id}/keepalive': { path: (who) => `/v1/leases/${own(who)}/keepalive`, allowed: USERS },
  'DELETE /v1/leases/{id}': { path: () => `/v1/leases/${adminLease}`, allowed: ['admin'] },
  'GET /v1/watch/{*}': { path: fixed('/v1/watch/app/'), allowed: READERS, stream: true },
  'POST /v1/locks/{name}/acquire': {
    path: (who) => `/v1/locks/k8s.${who}/acquire`,
    body: (who) => ({ lease: own(who) }),
    allowed: USERS,
  },
  'POST /v1/locks/{name}/release': {
    path: fixed('/v1/locks/k8s.m/release'),
    body: () => ({ key: '/muster/locks/k8s.m/waiters/ffff', token: 1 }),
    allowed: USERS,
  },
  'GET /v1/locks/{name}': { path: fixed('/v1/locks/k8s.m'), allowed: ALL },
  'POST /v1/semaphores/{name}/acquire': {
    path: fixed('/v1/semaphores/k8s.s/acquire'),
    body: (who) => ({ lease: own(who), limit: 100 }),
    allowed: USERS,
  },
  'POST /v1/semaphores/{name}/release': {
    path: fixed('/v1/semaphores/k8s.s/release'),
    body: () => ({ key: '/muster/semaphores/k8s.s/waiters/ffff', token: 1 }),
    allowed: USERS,
  },
  'GET /v1/semaphores/{name}': { path: fixed('/v1/semaphores/k8s.s'), allowed: ALL },
  'POST /v1/elections/{name}/campaign': {
    path: (who) => `/v1/elections/k8s.${who}/campaign`,
    body: (who) => ({ lease: own(who), value: 'v' }),
    allowed: USERS,
  },
  'POST /v1/elections/{name}/proclaim': {
    path: fixed('/v1/elections/k8s.e/proclaim'),
    body: (who) => ({ key: '/muster/elections/k8s.e/candidates/ffff', token: 1, lease: own(who), value: 'v' }),
    allowed: USERS,
  },
  'POST /v1/elections/{name}/resign': {
    path: fixed('/v1/elections/k8s.e/resign'),
    body: () => ({ key: '/muster/elections/k8s.e/candidates/ffff', token: 1 }),
    allowed: USERS,
  },
  'GET /v1/elections/{name}/leader': { path: fixed('/v1/elections/k8s.e/leader'), allowed: ALL },
  'GET /v1/elections/{name}/observe': { path: fixed('/v1/elections/k8s.e/observe'), allowed: ALL, stream: true },
  'POST /v1/barriers/{name}/enter': {
    path: (who) => `/v1/barriers/k8s.${who}/enter`,
    body: (who) => ({ lease: own(who), count: 1 }),
    allowed: USERS,
  },
  'POST /v1/barriers/{name}/leave': {
    path: fixed('/v1/barriers/k8s.b/leave'),
    body: () => ({ id: 'nobody', timeout: '1s' }),
    allowed: USERS,
  },
  'GET /v1/barriers/{name}': { path: fixed('/v1/barriers/k8s.b'), allowed: ALL },
  'DELETE /v1/barriers/{name}': { path: fixed('/v1/barriers/k8s.b'), allowed: USERS },
  'POST /v1/once/{name}/begin': {
    path: (who) => `/v1/once/k8s.${who}/begin`,
    body: (who) => ({ lease: own(who) }),
    allowed: USERS,
  },
  'POST /v1/once/{name}/complete': {
    path: fixed('/v1/once/k8s.o/complete'),
    body: () => ({ key: '/muster/once/k8s.o/runners/ffff', token: 1, exitCode: 0 }),
    allowed: USERS,
  },
  'GET /v1/once/{name}': { path: fixed('/v1/once/k8s.o'), allowed: ALL },
  'DELETE /v1/once/{name}': { path: fixed('/v1/once/k8s.o'), allowed: USERS },
  'GET /v1/wait/{*}': { path: fixed('/v1/wait/app/ready?exists=true&timeout=1s'), allowed: READERS },
  // Push jobs (docs/jobs.md): a job id nobody started answers 404 to those who may look.
  'POST /v1/jobs': { path: fixed('/v1/jobs'), body: () => ({ query: 'role:web', command: 'echo' }), allowed: WRITERS },
  'GET /v1/jobs': { path: fixed('/v1/jobs'), allowed: [...READERS, 'node'] },
  'GET /v1/jobs/{id}': { path: fixed('/v1/jobs/0mhq3x1k2-4f9a0c'), allowed: ALL },
  'DELETE /v1/jobs/{id}': { path: fixed('/v1/jobs/0mhq3x1k2-4f9a0c'), allowed: WRITERS },
  'GET /v1/jobs/{id}/events': { path: fixed('/v1/jobs/0mhq3x1k2-4f9a0c/events'), allowed: ALL },
  'GET /v1/jobs/{id}/nodes/{node}/output': {
    path: fixed('/v1/jobs/0mhq3x1k2-4f9a0c/nodes/web-3/output'),
    allowed: ALL,
  },
  'POST /v1/jobs/{id}/nodes/{node}/report': {
    path: fixed('/v1/jobs/0mhq3x1k2-4f9a0c/nodes/web-3/report'),
    body: () => ({ seq: 0, type: 'started', pid: 1 }),
    allowed: ['admin', 'node'],
  },
  'GET /v1/nodes/{node}/assignments': {
    path: fixed('/v1/nodes/web-3/assignments'),
    allowed: ['admin', 'node'],
    stream: true,
  },
  'POST /v1/triggers': {
    path: fixed('/v1/triggers'),
    body: () => ({ name: 'converge', on: '/app/', job: { query: 'role:web', command: 'echo' } }),
    allowed: WRITERS,
  },
  'GET /v1/triggers': { path: fixed('/v1/triggers'), allowed: READERS },
  'PUT /v1/groups/{group}': { path: fixed('/v1/groups/web'), body: () => ({ query: 'role:web' }), allowed: WRITERS },
  'PUT /v1/nodes/{node}': {
    path: fixed('/v1/nodes/web-3'),
    body: (who) => ({ lease: own(who), tags: [], attrs: {}, facts: {} }),
    allowed: ['admin', 'operator', 'node'],
  },
  'GET /v1/nodes': { path: fixed('/v1/nodes'), allowed: ALL },
  'GET /v1/nodes/{node}': { path: fixed('/v1/nodes/web-3'), allowed: ALL },
  'DELETE /v1/nodes/{node}': { path: fixed('/v1/nodes/gone'), allowed: WRITERS },
  'GET /v1/groups': { path: fixed('/v1/groups'), allowed: ALL },
  'GET /v1/groups/{group}': { path: fixed('/v1/groups/web'), allowed: ALL },
  'DELETE /v1/groups/{group}': { path: fixed('/v1/groups/gone'), allowed: WRITERS },
  'PUT /v1/desired/{group}': { path: fixed('/v1/desired/web'), body: () => ({ state: 'converged' }), allowed: WRITERS },
  'GET /v1/desired/{group}': { path: fixed('/v1/desired/web'), allowed: ALL },
  // A node reports under its own prefix (/nodes/web-3/state/web): the node token of web-3 may.
  'PUT /v1/state/{group}/{node}': {
    path: fixed('/v1/state/web/web-3'),
    body: () => ({ state: 'converged' }),
    allowed: ['admin', 'operator', 'node'],
  },
  'GET /v1/state/{group}': { path: fixed('/v1/state/web'), allowed: ALL },
  'POST /v1/plans': {
    path: fixed('/v1/plans'),
    body: () => ({ source: 'name: p\nsteps:\n  - id: a\n    group: web\n    run: x\n', dryRun: true }),
    allowed: WRITERS,
  },
  'GET /v1/plans': { path: fixed('/v1/plans'), allowed: READERS },
  'GET /v1/plans/{id}': { path: fixed('/v1/plans/000000000-000000'), allowed: READERS },
  'GET /v1/plans/{id}/events': { path: fixed('/v1/plans/000000000-000000/events'), allowed: READERS },
  'POST /v1/plans/{id}/pause': { path: fixed('/v1/plans/000000000-000000/pause'), allowed: WRITERS },
  'POST /v1/plans/{id}/resume': { path: fixed('/v1/plans/000000000-000000/resume'), allowed: WRITERS },
  'DELETE /v1/plans/{id}': { path: fixed('/v1/plans/000000000-000000'), allowed: WRITERS },
  'GET /v1/triggers/{name}': { path: fixed('/v1/triggers/nothing'), allowed: READERS },
  'DELETE /v1/triggers/{name}': { path: fixed('/v1/triggers/nothing'), allowed: WRITERS },
};

beforeAll(async () => {
  t = await startAuthApp();
  for (const who of ['admin', 'operator', 'node', 'cluster'] as const) {
    const res = await t.call(who, 'POST', '/v1/leases', { ttl: 60 });
    lease[who] = ((await res.json()) as { id: string }).id;
  }
  adminLease = lease.admin as string;
  await t.backend.put('/app/ready', Buffer.from('yes'));
});
afterAll(async () => {
  await t.close();
});

async function statusOf(who: Who, method: string, row: Row): Promise<number> {
  const stop = new AbortController();
  const res = await t.call(who, method, row.path(who), row.body?.(who), stop.signal);
  const status = res.status;
  if (row.stream && status === 200) stop.abort();
  else await res.arrayBuffer();
  return status;
}

describe('every route × every role', () => {
  test('the matrix names every route of the app', async () => {
    const doc = (await (await t.call('anonymous', 'GET', '/openapi.json')).json()) as {
      paths: Record<string, Record<string, unknown>>;
    };
    const documented = Object.entries(doc.paths).flatMap(([path, methods]) =>
      Object.keys(methods).map((m) => `${m.toUpperCase()} ${path}`),
    );
    const hidden = ['GET /metrics', 'GET /openapi.json'];
    expect([...documented, ...hidden].sort()).toEqual(Object.keys(MATRIX).sort());
  });

  for (const [route, row] of Object.entries(MATRIX)) {
    const method = route.slice(0, route.indexOf(' '));
    test(`${route}`, async () => {
      const seen: Record<string, number> = {};
      // The admin last: its DELETE of the lease must not take it away from the others' attempts.
      for (const who of ['anonymous', 'bogus', ...[...ALL].reverse()] as const)
        seen[who] = await statusOf(who, method, row);
      const expected: Record<string, string> = {};
      const actual: Record<string, string> = {};
      for (const who of ['anonymous', 'bogus', ...ALL] as const) {
        const allowed = row.allowed === PUBLIC || (who !== 'anonymous' && who !== 'bogus' && row.allowed.includes(who));
        const denied = row.allowed !== PUBLIC && (who === 'anonymous' || who === 'bogus') ? 401 : 403;
        expected[who] = allowed ? 'allowed' : String(denied);
        const status = seen[who] as number;
        actual[who] = status === 401 || status === 403 ? String(status) : 'allowed';
      }
      expect(actual, JSON.stringify(seen)).toEqual(expected);
    });
  }
});
