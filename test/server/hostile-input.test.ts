import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { ManualClock } from '../../src/core/clock.js';
import { seededRandom } from '../../src/core/runtime.js';
import { errorCatalogue } from '../../src/core/error-catalogue.js';
import { MUSTER_API_PATH } from '../../src/server/error-handler.js';
import type { TestApp } from './harness.js';
import { makeApp } from './harness.js';
import type { NewToken } from '../../src/security/token-registry.js';

/**
 * At least 1,000 seeded random and malformed requests over every route of
 * /openapi.json, sent as raw bytes (nothing normalised on the way), each checked:
 * no 5xx and no crash, an error body of the catalogue's shape with a catalogued
 * code, and after any 4xx no change to the revision or the leases. The clock is
 * a ManualClock that never moves, so nothing changes the store by itself (no lease
 * expires) between a request and the check after it. `HOSTILE_SEED` replays a run.
 *
 * It runs with auth off (1,000 requests) and again with auth on as each role
 * (400 each): then most requests carry the role's token, some a wrong one or none.
 */
const MODES: readonly { readonly name: string; readonly role: NewToken | null; readonly requests: number }[] = [
  { name: 'auth off', role: null, requests: 1_000 },
  { name: 'as admin', role: { role: 'admin' }, requests: 400 },
  { name: 'as operator', role: { role: 'operator' }, requests: 400 },
  { name: 'as reader', role: { role: 'reader' }, requests: 400 },
  { name: 'as node web', role: { role: 'node', node: 'web' }, requests: 400 },
  { name: 'as cluster web', role: { role: 'cluster', cluster: 'web' }, requests: 400 },
];
const SEED = Number(process.env.HOSTILE_SEED ?? Math.floor(Math.random() * 2 ** 31));
const WHERE = `(HOSTILE_SEED=${SEED} replays this run)`;

/** Routes whose calls may block (until their timeout, which the frozen clock never reaches). */
const BLOCKING = /\/(acquire|campaign|enter|leave|begin|observe)(\?|$)|^\/v1\/(watch|wait)\/|waitAfter=/;

for (const mode of MODES) {
  describe(mode.name, () => {
    let t: TestApp;
    let routes: { path: string; methods: string[] }[];
    let lease: string;
    /** The role's token, sent with most requests; null with auth off. */
    let token: string | null = null;
    const REQUESTS = mode.requests;

    beforeAll(async () => {
      t = await makeApp({ clock: new ManualClock(), auth: mode.role !== null });
      if (mode.role !== null && t.tokens) token = (await t.tokens.create(mode.role)).token;
      await t.listen();
      const spec = JSON.parse((await t.app.inject({ method: 'GET', url: '/openapi.json' })).body) as {
        paths: Record<string, Record<string, unknown>>;
      };
      routes = Object.entries(spec.paths).map(([path, ops]) => ({
        path,
        methods: Object.keys(ops).map((m) => m.toUpperCase()),
      }));
      lease = (await t.backend.grantLease(3600)).id;
      await t.backend.put('/fuzz/a', new TextEncoder().encode('1'));
      await t.backend.put('/fuzz/b', new TextEncoder().encode('2'), { lease });
    });

    afterAll(async () => {
      await t?.close();
    });

    test(`${REQUESTS} hostile requests over every route: no 5xx, the catalogue's shape, and a 4xx changes nothing ${WHERE}`, async () => {
      expect(routes.length).toBeGreaterThan(20);
      const random = seededRandom(SEED);
      const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)] as T;
      const statuses = new Map<number, number>();
      const covered = new Set<string>();

      for (let i = 0; i < REQUESTS; i++) {
        const route = pick(routes);
        covered.add(route.path);
        const request = hostileRequest(route, pick, random, lease, token);
        const before = await snapshot();
        const blocking = BLOCKING.test(request.target);
        const answer = await exchange(t.port, request.bytes, blocking ? 150 : 3000);
        const what = `request ${i}: ${JSON.stringify(request.bytes.toString('latin1').slice(0, 300))} ${WHERE}`;
        expect(t.app.server.listening, `the server stopped listening after ${what}`).toBe(true);
        if (answer.status === null) {
          expect(blocking, `no answer to ${what}`).toBe(true);
          await blockedCallsGone();
          continue;
        }
        statuses.set(answer.status, (statuses.get(answer.status) ?? 0) + 1);
        expect(answer.status, `5xx for ${what}: ${answer.body.slice(0, 300)}`).toBeLessThan(500);
        if (answer.status >= 400) {
          const isHead = request.method === 'HEAD';
          if (!isHead) {
            let body: unknown;
            try {
              body = JSON.parse(answer.body);
            } catch {
              throw new Error(`a ${answer.status} without a JSON body for ${what}: ${answer.body.slice(0, 200)}`);
            }
            const noah = body as { result?: unknown; error_message?: unknown };
            if (noah.result === 'failure' && !MUSTER_API_PATH.test(request.target.split('?')[0] ?? '')) {
              // Outside /v<N> is Noah's API: its failure body (docs/noah.md).
              expect(typeof noah.error_message, `error_message for ${what}`).toBe('string');
              expect(await snapshot(), `a ${answer.status} changed the store: ${what}`).toEqual(before);
              continue;
            }
            const error = (body as { error?: { code?: unknown; message?: unknown } }).error;
            expect(typeof error?.code, `error.code for ${what}`).toBe('string');
            expect(typeof error?.message, `error.message for ${what}`).toBe('string');
            expect(Object.keys(errorCatalogue), `a code outside the catalogue for ${what}`).toContain(error?.code);
            expect(errorCatalogue[error?.code as keyof typeof errorCatalogue].status, `status of ${what}`).toBe(
              answer.status,
            );
          }
          expect(await snapshot(), `a ${answer.status} changed the store: ${what}`).toEqual(before);
        }
      }
      // The server is still whole.
      expect((await t.app.inject({ method: 'GET', url: '/healthz' })).statusCode).toBe(200);
      expect(covered.size, 'every route was tried').toBe(routes.length);
      // Most requests were refused, some went through: the run exercised both sides.
      const refused = [...statuses].filter(([s]) => s >= 400).reduce((n, [, c]) => n + c, 0);
      expect(refused).toBeGreaterThan(REQUESTS / 3);
      expect([...statuses].some(([s]) => s < 300)).toBe(true);
    }, 180_000);

    async function snapshot(): Promise<{ revision: number; leases: string[] }> {
      return { revision: await t.backend.revision(), leases: (await t.backend.listLeases()).sort() };
    }

    /** Wait until the server holds no blocked call (a cancelled one may still be tidying up). */
    async function blockedCallsGone(): Promise<void> {
      const admin = t.tokens ? (await t.tokens.create({ role: 'admin' })).token : null;
      for (let i = 0; i < 200; i++) {
        const metrics = (
          await t.app.inject({
            method: 'GET',
            url: '/metrics',
            headers: admin ? { authorization: `Bearer ${admin}` } : {},
          })
        ).body;
        if (/^muster_blocked_requests 0$/m.test(metrics)) return;
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
      throw new Error('blocked calls did not end after their callers went away');
    }
  });
}

interface HostileRequest {
  readonly method: string;
  readonly target: string;
  readonly bytes: Buffer;
}

/** A request for `route`, mangled in one or more of many ways. */
function hostileRequest(
  route: { path: string; methods: string[] },
  pick: <T>(items: readonly T[]) => T,
  random: () => number,
  lease: string,
  token: string | null,
): HostileRequest {
  const chance = (p: number) => random() < p;
  const method = chance(0.8)
    ? pick(route.methods)
    : pick(['GET', 'PUT', 'POST', 'DELETE', 'PATCH', 'HEAD', 'OPTIONS', 'TRACE', 'FOO', 'get', 'P\u00d8ST']);
  const names = ['web', 'db-migrate', 'a.b_c', 'x'.repeat(129), '', '%00', '..', '%ED%A0%80', 'caf%C3%A9', '%ZZ'];
  const keys = ['fuzz/a', 'fuzz/b', 'fuzz/', 'fuzz/new', 'a/../b', './x', 'x%00y', '%ED%A0%80', 'k'.repeat(1100), ''];
  const ids = [lease, 'ffff', '0', 'zz', 'f'.repeat(17), '-1', '%20'];
  let path = route.path
    .replace('{*}', () => pick(keys))
    .replace('{name}', () => pick(names))
    .replace('{id}', () => pick(ids));
  if (chance(0.05)) path = path.replace('/v1/', pick(['/v1//', '/v2/', '/V1/', '/v1/./']));
  const queries = [
    '',
    '?prefix=true',
    '?prefix=maybe',
    '?revision=1e309',
    '?revision=-1',
    '?limit=1e309',
    '?fromRevision=0',
    '?timeout=1ms',
    '?timeout=25h',
    '?timeout=soon',
    '?lease=' + lease,
    '?lease=nope',
    '?prevRevision=abc',
    '?exists=true&deleted=true',
    '?matches=' + encodeURIComponent('^(a+)+$'),
    '?matches=%28',
    '?equals=' + 'v'.repeat(300),
    '?bogus=1',
    '?' + 'q'.repeat(2000),
    '?prefix=true&prefix=false',
    '?encoding=utf7',
  ];
  const target = path + (chance(0.6) ? pick(queries) : '');
  const jsonBodies = [
    '{}',
    '{',
    'null',
    '[]',
    '"text"',
    '{"ttl":"ten"}',
    '{"ttl":1e309}',
    '{"ttl":3600}',
    `{"lease":"${lease}","timeout":"1ms"}`,
    `{"lease":"${lease}","limit":1e309,"timeout":"1ms"}`,
    `{"lease":"zz"}`,
    `{"lease":"${lease}","limit":2,"timeout":"1ms"}`,
    `{"lease":"${lease}","limit":3,"timeout":"1ms"}`,
    `{"lease":"${lease}","count":2,"timeout":"1ms"}`,
    `{"lease":"${lease}","count":5,"timeout":"1ms"}`,
    '{"key":"/muster/locks/x/waiters/1","token":1}',
    '{"key":"/etc/passwd","token":-1}',
    '{"success":[{"type":"put","key":"/fuzz/t","value":"x","lease":"ffff"}]}',
    '{"success":[{"type":"put","key":"/fuzz/\\ud800","value":"x"}]}',
    '{"success":[{"type":"get","key":"/fuzz/a","revision":1e309}]}',
    '{"compare":[{"key":"/fuzz/a","target":"nope","op":"=","value":1}],"success":[]}',
    '{"success":[{"type":"delete","key":"/","prefix":true}],"unknown":1}',
    '{"exitCode":999}',
    '{"value":' + '['.repeat(5000) + ']'.repeat(5000) + '}',
    '{"count":1e309,"timeout":"1ms"}',
    '{"id":"' + 'i'.repeat(500) + '"}',
    '{"__proto__":{"polluted":true}}',
  ];
  let body: Buffer | null = null;
  let contentType: string | null = null;
  if (method !== 'GET' && method !== 'HEAD' && chance(0.85)) {
    const kind = random();
    if (kind < 0.6) {
      body = Buffer.from(pick(jsonBodies));
      contentType = 'application/json';
    } else if (kind < 0.75) {
      body = Buffer.from('plain value');
      contentType = pick(['text/plain', 'application/octet-stream', 'application/x-www-form-urlencoded']);
    } else if (kind < 0.85) {
      body = Buffer.alloc(Math.floor(random() * 3) * 1024 * 1024 + 10, 0x61);
      contentType = pick(['application/json', 'application/octet-stream']);
    } else {
      body = Buffer.from([0xff, 0xfe, 0x00, 0x7b, 0x22]);
      contentType = 'application/json; charset=utf-16';
    }
  }
  const headers: string[] = [];
  if (!chance(0.05)) headers.push('Host: 127.0.0.1');
  if (token !== null) {
    const which = random();
    if (which < 0.85) headers.push(`Authorization: Bearer ${token}`);
    else if (which < 0.92) headers.push(`Authorization: Bearer ${token.slice(0, -1)}x`);
    else if (which < 0.96)
      headers.push(`Authorization: ${pick(['Basic YTpi', 'Bearer', 'Bearer a b', 'x'.repeat(600)])}`);
  }
  if (contentType) headers.push(`Content-Type: ${contentType}`);
  const framing = random();
  let payload = body ?? Buffer.alloc(0);
  if (body && framing < 0.08) {
    headers.push(`Content-Length: ${pick(['abc', '-5', String(body.length + 10), '1e3'])}`);
  } else if (body && framing < 0.15) {
    headers.push('Transfer-Encoding: chunked');
    payload = Buffer.concat([
      Buffer.from(pick(['zz\r\n', `${body.length.toString(16)}\r\n`])),
      body,
      Buffer.from('\r\n'),
    ]);
  } else if (body) {
    headers.push(`Content-Length: ${body.length}`);
  }
  if (chance(0.05)) headers.push(`X-Big: ${'h'.repeat(20_000)}`);
  if (chance(0.05)) headers.push('Last-Event-ID: not-a-number');
  headers.push('Connection: close');
  const head = `${method} ${target} HTTP/1.1\r\n${headers.join('\r\n')}\r\n\r\n`;
  const tail = chance(0.05) ? Buffer.from('GARBAGE\x00\x01\r\n\r\n') : Buffer.alloc(0);
  return { method, target, bytes: Buffer.concat([Buffer.from(head, 'latin1'), payload, tail]) };
}

/** Send raw bytes; the first response's status and body (null status: nothing came within `ms`). */
function exchange(port: number, bytes: Buffer, ms: number): Promise<{ status: number | null; body: string }> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    const socket = connect(port, '127.0.0.1', () => socket.end(bytes));
    const done = () => {
      clearTimeout(timer);
      socket.destroy();
      const text = Buffer.concat(chunks).toString('utf8');
      const status = /^HTTP\/1\.1 (\d{3})/.exec(text);
      if (!status) return resolve({ status: null, body: text });
      const start = text.indexOf('\r\n\r\n');
      const headers = text.slice(0, start).toLowerCase();
      let body = text.slice(start + 4);
      if (headers.includes('transfer-encoding: chunked')) body = dechunk(body);
      else {
        const length = /content-length: (\d+)/.exec(headers);
        if (length) body = Buffer.from(body).subarray(0, Number(length[1])).toString('utf8');
      }
      resolve({ status: Number(status[1]), body });
    };
    const timer = setTimeout(done, ms);
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.on('close', done);
    socket.on('error', () => undefined);
  });
}

function dechunk(text: string): string {
  let out = '';
  let rest = text;
  for (;;) {
    const eol = rest.indexOf('\r\n');
    if (eol < 0) return out;
    const size = parseInt(rest.slice(0, eol), 16);
    if (!size) return out;
    out += rest.slice(eol + 2, eol + 2 + size);
    rest = rest.slice(eol + 2 + size + 2);
  }
}
