import { connect } from 'node:net';
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import { expectError, makeApp, rawRequest } from './harness.js';
import type { TestApp } from './harness.js';

/**
 * Every bad input gets a 4xx with `{ error: { code, message } }` naming the
 * problem, and changes nothing: the store revision does not move, /k keeps its
 * value, no lease appears or goes.
 */

let t: TestApp;
let lease: string;

beforeEach(async () => {
  t = await makeApp();
  await t.backend.put('/k', new TextEncoder().encode('original'));
  lease = (await t.backend.grantLease(60)).id;
});
afterEach(async () => {
  await t.close();
});

async function expectUnchanged(): Promise<void> {
  expect(await t.backend.revision()).toBe(1);
  const kv = await t.backend.get('/k');
  expect(kv && new TextDecoder().decode(kv.value)).toBe('original');
  expect(kv?.version).toBe(1);
  expect(await t.backend.listLeases()).toEqual([lease]);
}

interface Case {
  readonly name: string;
  readonly method: 'GET' | 'PUT' | 'POST' | 'DELETE' | 'PATCH';
  readonly url: string | ((lease: string) => string);
  /** A string is sent as is (with content-type JSON unless `type` says otherwise); an object as JSON. */
  readonly body?: unknown;
  readonly type?: string;
  readonly headers?: Record<string, string>;
  readonly status: number;
  readonly code: string;
  readonly message: RegExp;
}

const json = 'application/json';
const txn = (body: unknown): Pick<Case, 'method' | 'url' | 'body'> => ({ method: 'POST', url: '/v1/txn', body });
const put = (key: string, value = 'x') => ({ type: 'put', key, value });

const cases: Case[] = [
  // Malformed JSON
  { name: 'truncated txn JSON', ...txn('{"success": ['), status: 400, code: 'invalid_json', message: /JSON/ },
  {
    name: 'unquoted lease JSON',
    method: 'POST',
    url: '/v1/leases',
    body: '{ttl: 5}',
    status: 400,
    code: 'invalid_json',
    message: /JSON/,
  },
  {
    name: 'empty JSON body',
    method: 'POST',
    url: '/v1/leases',
    body: '',
    status: 400,
    code: 'invalid_json',
    message: /empty/,
  },
  { name: 'a JSON array for the txn', ...txn('[]'), status: 400, code: 'invalid_request', message: /body.*object/ },
  { name: 'JSON null for the txn', ...txn('null'), status: 400, code: 'invalid_request', message: /body.*object/ },
  {
    name: 'not JSON on acquire',
    method: 'POST',
    url: '/v1/locks/x/acquire',
    body: 'lease=abc',
    status: 400,
    code: 'invalid_json',
    message: /JSON/,
  },

  // Unknown fields in bodies and query strings
  {
    name: 'unknown txn field',
    ...txn({ bogus: 1 }),
    status: 400,
    code: 'invalid_request',
    message: /unknown field bogus/,
  },
  {
    name: 'unknown op field',
    ...txn({ success: [{ ...put('/k'), extra: 1 }] }),
    status: 400,
    code: 'invalid_request',
    message: /unknown field success\.0\.extra/,
  },
  {
    name: 'a field the op type does not take',
    ...txn({ success: [{ type: 'delete', key: '/k', value: 'x' }] }),
    status: 400,
    code: 'invalid_request',
    message: /delete takes no value/,
  },
  {
    name: 'unknown lease field',
    method: 'POST',
    url: '/v1/leases',
    body: { ttl: 10, x: 1 },
    status: 400,
    code: 'invalid_request',
    message: /unknown field x/,
  },
  {
    name: 'unknown acquire field',
    method: 'POST',
    url: '/v1/locks/x/acquire',
    body: { lease: 'abc', foo: 1 },
    status: 400,
    code: 'invalid_request',
    message: /unknown field foo/,
  },
  {
    name: 'unknown PUT query',
    method: 'PUT',
    url: '/v1/kv/k?bogus=1',
    body: 'new',
    type: 'text/plain',
    status: 400,
    code: 'invalid_request',
    message: /querystring: unknown field bogus/,
  },
  {
    name: 'unknown GET query',
    method: 'GET',
    url: '/v1/kv/k?recursive=true',
    status: 400,
    code: 'invalid_request',
    message: /unknown field recursive/,
  },
  {
    name: 'unknown DELETE query',
    method: 'DELETE',
    url: '/v1/kv/k?recursive=true',
    status: 400,
    code: 'invalid_request',
    message: /unknown field recursive/,
  },
  {
    name: 'unknown watch query',
    method: 'GET',
    url: '/v1/watch/k?since=1',
    status: 400,
    code: 'invalid_request',
    message: /unknown field since/,
  },
  {
    name: 'unknown wait query',
    method: 'GET',
    url: '/v1/wait/k?exists=true&x=1',
    status: 400,
    code: 'invalid_request',
    message: /unknown field x/,
  },

  // Wrong types
  {
    name: 'limit=abc',
    method: 'GET',
    url: '/v1/kv/?prefix=true&limit=abc',
    status: 400,
    code: 'invalid_request',
    message: /limit must be integer/,
  },
  {
    name: 'limit=-1',
    method: 'GET',
    url: '/v1/kv/?prefix=true&limit=-1',
    status: 400,
    code: 'invalid_request',
    message: /limit must be >= 0/,
  },
  {
    name: 'meta=maybe',
    method: 'GET',
    url: '/v1/kv/k?meta=maybe',
    status: 400,
    code: 'invalid_request',
    message: /meta must be boolean/,
  },
  {
    name: 'prevRevision=abc',
    method: 'PUT',
    url: '/v1/kv/k?prevRevision=abc',
    body: 'new',
    type: 'text/plain',
    status: 400,
    code: 'invalid_request',
    message: /prevRevision must be integer/,
  },
  {
    name: 'prevRevision=-1',
    method: 'PUT',
    url: '/v1/kv/k?prevRevision=-1',
    body: 'new',
    type: 'text/plain',
    status: 400,
    code: 'invalid_request',
    message: /prevRevision must be >= 0/,
  },
  {
    name: 'DELETE prevRevision=1.5',
    method: 'DELETE',
    url: '/v1/kv/k?prevRevision=1.5',
    status: 400,
    code: 'invalid_request',
    message: /prevRevision must be integer/,
  },
  {
    name: 'revision=x',
    method: 'GET',
    url: '/v1/kv/k?revision=x',
    status: 400,
    code: 'invalid_request',
    message: /revision must be integer/,
  },
  {
    name: 'a future revision',
    method: 'GET',
    url: '/v1/kv/k?revision=99',
    status: 400,
    code: 'future_revision',
    message: /revision 99 is in the future/,
  },
  {
    // A JSON body is taken as sent: true is not the duration "true" (nor a number).
    name: 'ttl: true',
    method: 'POST',
    url: '/v1/leases',
    body: { ttl: true },
    status: 400,
    code: 'invalid_request',
    message: /ttl/,
  },
  {
    name: 'ttl: {}',
    method: 'POST',
    url: '/v1/leases',
    body: { ttl: {} },
    status: 400,
    code: 'invalid_request',
    message: /ttl/,
  },
  { name: 'success: "x"', ...txn({ success: 'x' }), status: 400, code: 'invalid_request', message: /success/ },
  {
    name: 'semaphore limit "two"',
    method: 'POST',
    url: '/v1/semaphores/s/acquire',
    body: { lease: 'abc', limit: 'two' },
    status: 400,
    code: 'invalid_request',
    message: /limit must be integer/,
  },
  {
    name: 'barrier count 1.5',
    method: 'POST',
    url: '/v1/barriers/b/enter',
    body: { lease: 'abc', count: 1.5 },
    status: 400,
    code: 'invalid_request',
    message: /count must be integer/,
  },
  {
    name: 'fromRevision=0',
    method: 'GET',
    url: '/v1/watch/k?fromRevision=0',
    status: 400,
    code: 'invalid_request',
    message: /fromRevision must be >= 1/,
  },
  {
    name: 'fromRevision=abc',
    method: 'GET',
    url: '/v1/watch/k?fromRevision=abc',
    status: 400,
    code: 'invalid_request',
    message: /fromRevision must be integer/,
  },

  // Paths
  {
    name: 'empty segment',
    method: 'PUT',
    url: '/v1/kv/a//b',
    body: 'x',
    type: 'text/plain',
    status: 400,
    code: 'invalid_key',
    message: /empty segment/,
  },
  {
    name: 'leading empty segment',
    method: 'PUT',
    url: '/v1/kv//k',
    body: 'x',
    type: 'text/plain',
    status: 400,
    code: 'invalid_key',
    message: /empty segment/,
  },
  {
    name: 'NUL in a key',
    method: 'PUT',
    url: '/v1/kv/k%00',
    body: 'x',
    type: 'text/plain',
    status: 400,
    code: 'invalid_key',
    message: /control character/,
  },
  {
    name: 'newline in a key',
    method: 'PUT',
    url: '/v1/kv/a%0Ab',
    body: 'x',
    type: 'text/plain',
    status: 400,
    code: 'invalid_key',
    message: /control character/,
  },
  {
    name: 'DEL in a key',
    method: 'DELETE',
    url: '/v1/kv/k%7F',
    status: 400,
    code: 'invalid_key',
    message: /control character/,
  },
  {
    name: 'no key (PUT)',
    method: 'PUT',
    url: '/v1/kv/',
    body: 'x',
    type: 'text/plain',
    status: 400,
    code: 'invalid_key',
    message: /root/,
  },
  { name: 'no key (GET)', method: 'GET', url: '/v1/kv/', status: 400, code: 'invalid_key', message: /root/ },
  { name: 'no key (DELETE)', method: 'DELETE', url: '/v1/kv/', status: 400, code: 'invalid_key', message: /root/ },
  {
    name: 'a key ending in /',
    method: 'PUT',
    url: '/v1/kv/k/',
    body: 'x',
    type: 'text/plain',
    status: 400,
    code: 'invalid_key',
    message: /must not end with/,
  },
  {
    name: 'a key over 1 KiB',
    method: 'PUT',
    url: `/v1/kv/${'k'.repeat(1024)}`,
    body: 'x',
    type: 'text/plain',
    status: 400,
    code: 'invalid_key',
    message: /longer than 1024 bytes/,
  },
  {
    name: 'empty segment in a prefix',
    method: 'GET',
    url: '/v1/kv//a/?prefix=true',
    status: 400,
    code: 'invalid_key',
    message: /empty segment/,
  },
  {
    name: 'empty segment in a watch',
    method: 'GET',
    url: '/v1/watch/a//b',
    status: 400,
    code: 'invalid_key',
    message: /empty segment/,
  },
  {
    name: 'control character in a wait',
    method: 'GET',
    url: '/v1/wait/a%01?exists=true',
    status: 400,
    code: 'invalid_key',
    message: /control character/,
  },
  {
    name: 'txn key without /',
    ...txn({ success: [put('k')] }),
    status: 400,
    code: 'invalid_key',
    message: /must start with "\/"/,
  },
  {
    name: 'txn compare key with ..',
    ...txn({ compare: [{ key: '/a/../k', target: 'version', op: '=', value: 1 }] }),
    status: 400,
    code: 'invalid_key',
    message: /"\.\." segment/,
  },

  // Lease ids
  {
    name: 'uppercase lease id on PUT',
    method: 'PUT',
    url: '/v1/kv/k?lease=ABC',
    body: 'x',
    type: 'text/plain',
    status: 400,
    code: 'invalid_request',
    message: /lease must match/,
  },
  {
    name: '17-digit lease id',
    method: 'PUT',
    url: '/v1/kv/k?lease=12345678901234567',
    body: 'x',
    type: 'text/plain',
    status: 400,
    code: 'invalid_request',
    message: /lease must match/,
  },
  {
    name: 'an unknown lease on PUT',
    method: 'PUT',
    url: '/v1/kv/k?lease=abc',
    body: 'x',
    type: 'text/plain',
    status: 404,
    code: 'lease_not_found',
    message: /lease abc/,
  },
  {
    name: 'keepalive of a bad id',
    method: 'POST',
    url: '/v1/leases/xyz/keepalive',
    status: 400,
    code: 'invalid_request',
    message: /id must match/,
  },
  {
    name: 'revoke of a bad id',
    method: 'DELETE',
    url: '/v1/leases/not-hex',
    status: 400,
    code: 'invalid_request',
    message: /id must match/,
  },
  {
    name: 'show of a bad id',
    method: 'GET',
    url: '/v1/leases/g1',
    status: 400,
    code: 'invalid_request',
    message: /id must match/,
  },
  {
    name: 'revoke of an unknown lease',
    method: 'DELETE',
    url: '/v1/leases/abc',
    status: 404,
    code: 'lease_not_found',
    message: /lease abc/,
  },
  {
    name: 'txn put with a bad lease',
    ...txn({ success: [{ ...put('/k'), lease: 'XYZ' }] }),
    status: 400,
    code: 'invalid_request',
    message: /lease/,
  },
  {
    name: 'txn put with an unknown lease',
    ...txn({ success: [{ ...put('/k'), lease: 'abc' }] }),
    status: 404,
    code: 'lease_not_found',
    message: /lease abc/,
  },
  {
    name: 'lock with a bad lease',
    method: 'POST',
    url: '/v1/locks/x/acquire',
    body: { lease: 'nothex!' },
    status: 400,
    code: 'invalid_request',
    message: /lease must match/,
  },

  // TTLs
  ...(
    [
      [0, 'invalid_ttl'],
      [-5, 'invalid_duration'],
      [86_401, 'invalid_ttl'],
      ['25h', 'invalid_ttl'],
      ['2w', 'invalid_duration'],
      ['2d', 'invalid_ttl'],
      ['abc', 'invalid_duration'],
      ['', 'invalid_duration'],
      ['0s', 'invalid_ttl'],
    ] as const
  ).map(([ttl, code]): Case => ({
    name: `ttl ${JSON.stringify(ttl)}`,
    method: 'POST',
    url: '/v1/leases',
    body: { ttl },
    status: 400,
    code,
    message: /ttl/,
  })),
  {
    name: 'no ttl',
    method: 'POST',
    url: '/v1/leases',
    body: {},
    status: 400,
    code: 'invalid_request',
    message: /missing field ttl/,
  },

  // Transactions
  {
    name: '129 puts',
    ...txn({ success: Array.from({ length: 129 }, (_, i) => put(`/t/${i}`)) }),
    status: 400,
    code: 'invalid_request',
    message: /success must NOT have more than 128 items/,
  },
  {
    name: '129 compares and ops in all',
    ...txn({
      compare: Array.from({ length: 64 }, (_, i) => ({ key: `/c/${i}`, target: 'version', op: '=', value: 0 })),
      success: Array.from({ length: 65 }, (_, i) => put(`/t/${i}`)),
    }),
    status: 400,
    code: 'invalid_request',
    message: /at most 128/,
  },
  {
    name: 'one key written twice',
    ...txn({ success: [put('/k', 'a'), put('/k', 'b')] }),
    status: 400,
    code: 'duplicate_key',
    message: /\/k/,
  },
  {
    name: 'a put under its own prefix delete',
    ...txn({ success: [{ type: 'delete', key: '/', prefix: true }, put('/k')] }),
    status: 400,
    code: 'duplicate_key',
    message: /\/k/,
  },
  {
    name: 'a duplicate in the failure branch',
    ...txn({ failure: [put('/x'), { type: 'delete', key: '/x' }] }),
    status: 400,
    code: 'duplicate_key',
    message: /\/x/,
  },
  {
    name: 'compare target bogus',
    ...txn({ compare: [{ key: '/k', target: 'bogus', op: '=', value: 1 }] }),
    status: 400,
    code: 'invalid_request',
    message: /target must be equal to one of/,
  },
  {
    name: 'compare op ~',
    ...txn({ compare: [{ key: '/k', target: 'version', op: '~', value: 1 }] }),
    status: 400,
    code: 'invalid_request',
    message: /op must be equal to one of/,
  },
  {
    name: 'compare without value',
    ...txn({ compare: [{ key: '/k', target: 'version', op: '=' }] }),
    status: 400,
    code: 'invalid_request',
    message: /missing field compare\.0\.value/,
  },
  {
    name: 'version compare with a string',
    ...txn({ compare: [{ key: '/k', target: 'version', op: '=', value: '1' }] }),
    status: 400,
    code: 'invalid_request',
    message: /whole number/,
  },
  {
    name: 'value compare with a number',
    ...txn({ compare: [{ key: '/k', target: 'value', op: '=', value: 1 }] }),
    status: 400,
    code: 'invalid_request',
    message: /string value/,
  },
  {
    name: 'lease compare with a bad id',
    ...txn({ compare: [{ key: '/k', target: 'lease', op: '=', value: 'XYZ' }] }),
    status: 400,
    code: 'invalid_request',
    message: /hex lease id/,
  },
  {
    name: 'op type bogus',
    ...txn({ success: [{ type: 'bogus', key: '/k' }] }),
    status: 400,
    code: 'invalid_request',
    message: /type must be equal to one of/,
  },
  {
    name: 'put without value',
    ...txn({ success: [{ type: 'put', key: '/k' }] }),
    status: 400,
    code: 'invalid_request',
    message: /put needs a string value/,
  },

  // Encodings
  {
    name: 'encoding hex',
    ...txn({ success: [{ ...put('/k'), encoding: 'hex' }] }),
    status: 400,
    code: 'invalid_request',
    message: /encoding must be equal to one of/,
  },
  {
    name: 'base64 that is not base64',
    ...txn({ success: [{ ...put('/k', 'not base64!'), encoding: 'base64' }] }),
    status: 400,
    code: 'invalid_encoding',
    message: /not valid base64/,
  },
  {
    name: 'base64 of the wrong length',
    ...txn({ success: [{ ...put('/k', 'abc'), encoding: 'base64' }] }),
    status: 400,
    code: 'invalid_encoding',
    message: /not valid base64/,
  },
  {
    name: 'a base64 compare value that is not base64',
    ...txn({
      compare: [{ key: '/k', target: 'value', op: '=', value: '***', encoding: 'base64' }],
      success: [put('/k')],
    }),
    status: 400,
    code: 'invalid_encoding',
    message: /compare\[0\].*base64/,
  },
  {
    name: 'encoding on a version compare',
    ...txn({
      compare: [{ key: '/k', target: 'version', op: '=', value: 1, encoding: 'base64' }],
      success: [put('/k')],
    }),
    status: 400,
    code: 'invalid_encoding',
    message: /encoding applies only to a value compare/,
  },

  // Routes and methods
  {
    name: 'unknown route',
    method: 'GET',
    url: '/v1/nope',
    status: 404,
    code: 'not_found',
    message: /no route GET \/v1\/nope/,
  },
  {
    name: 'unknown version',
    method: 'PUT',
    url: '/v2/kv/k',
    body: 'x',
    type: 'text/plain',
    status: 404,
    code: 'not_found',
    message: /\/v2\/kv\/k/,
  },
  {
    name: '/v1/kv without a key',
    method: 'PUT',
    url: '/v1/kv',
    body: 'x',
    type: 'text/plain',
    status: 404,
    code: 'not_found',
    message: /\/v1\/kv/,
  },
  {
    name: 'POST a key',
    method: 'POST',
    url: '/v1/kv/k',
    body: 'x',
    type: 'text/plain',
    status: 405,
    code: 'method_not_allowed',
    message: /PUT/,
  },
  {
    name: 'PATCH a key',
    method: 'PATCH',
    url: '/v1/kv/k',
    body: 'x',
    type: 'text/plain',
    status: 405,
    code: 'method_not_allowed',
    message: /DELETE, GET, HEAD, PUT/,
  },
  {
    name: 'GET the txn route',
    method: 'GET',
    url: '/v1/txn',
    status: 405,
    code: 'method_not_allowed',
    message: /POST/,
  },
  {
    name: 'DELETE every lease',
    method: 'DELETE',
    url: '/v1/leases',
    status: 405,
    code: 'method_not_allowed',
    message: /GET, HEAD, POST/,
  },
  {
    name: 'GET an acquire',
    method: 'GET',
    url: '/v1/locks/x/acquire',
    status: 405,
    code: 'method_not_allowed',
    message: /POST/,
  },
  {
    name: 'DELETE a lock',
    method: 'DELETE',
    url: '/v1/locks/x',
    status: 405,
    code: 'method_not_allowed',
    message: /GET/,
  },

  // Headers
  ...['abc', '-1', '1.5', '1e3', '9999999999999999'].map((id): Case => ({
    name: `Last-Event-ID ${id}`,
    method: 'GET',
    url: '/v1/watch/k',
    headers: { 'last-event-id': id },
    status: 400,
    code: 'invalid_request',
    message: /last-event-id/,
  })),

  // Primitives (names and leases; their behaviour is in primitives.test.ts)
  {
    name: 'a lock name with a space',
    method: 'POST',
    url: '/v1/locks/bad%20name/acquire',
    body: { lease: 'abc' },
    status: 400,
    code: 'invalid_name',
    message: /invalid lock name "bad name"/,
  },
  {
    name: 'a lock without a lease',
    method: 'POST',
    url: '/v1/locks/x/acquire',
    body: {},
    status: 400,
    code: 'invalid_request',
    message: /missing field lease/,
  },
  {
    name: 'wait with no condition',
    method: 'GET',
    url: '/v1/wait/k',
    status: 400,
    code: 'invalid_request',
    message: /exactly one condition.*none/,
  },
  {
    name: 'wait with a bad pattern',
    method: 'GET',
    url: '/v1/wait/k?matches=(',
    status: 400,
    code: 'invalid_pattern',
    message: /regular expression/,
  },
  {
    name: 'wait with a bad timeout',
    method: 'GET',
    url: '/v1/wait/k?exists=true&timeout=soon',
    status: 400,
    code: 'invalid_duration',
    message: /timeout/,
  },
  {
    name: 'wait with a timeout over a day',
    method: 'GET',
    url: '/v1/wait/k?exists=true&timeout=25h',
    status: 400,
    code: 'invalid_duration',
    message: /at most 24h/,
  },
  {
    name: 'a revision of 1e309 (Infinity)',
    method: 'GET',
    url: '/v1/kv/k?revision=1e309',
    status: 400,
    code: 'invalid_request',
    message: /revision must be a finite number/,
  },
  {
    name: 'a limit of 1e309 (Infinity)',
    method: 'GET',
    url: '/v1/kv/k/?prefix=true&limit=1e309',
    status: 400,
    code: 'invalid_request',
    message: /limit must be a finite number/,
  },
  {
    name: 'a txn get at revision 1e309',
    method: 'POST',
    url: '/v1/txn',
    body: '{"success":[{"type":"get","key":"/k","revision":1e309}]}',
    status: 400,
    code: 'invalid_request',
    message: /revision must be integer/,
  },
  {
    name: 'a txn key with a lone surrogate',
    method: 'POST',
    url: '/v1/txn',
    body: '{"success":[{"type":"put","key":"/k/\\ud800","value":"x"}]}',
    status: 400,
    code: 'invalid_key',
    message: /lone surrogate/,
  },
  {
    name: 'a txn compare on a key with a lone surrogate',
    method: 'POST',
    url: '/v1/txn',
    body: '{"compare":[{"key":"/k\\udc00","target":"version","op":"=","value":0}],"success":[]}',
    status: 400,
    code: 'invalid_key',
    message: /lone surrogate/,
  },
  {
    name: 'a lock name far over the limit',
    method: 'GET',
    url: `/v1/locks/${'n'.repeat(2000)}`,
    status: 414,
    code: 'uri_too_long',
    message: /too long/,
  },
  {
    name: 'a lease id far over the limit',
    method: 'GET',
    url: `/v1/leases/${'a'.repeat(2000)}`,
    status: 414,
    code: 'uri_too_long',
    message: /too long/,
  },
];

describe('every bad input: a 4xx naming the problem, and nothing changes', () => {
  test.each(cases)('$name → $status $code', async (c) => {
    const url = typeof c.url === 'function' ? c.url(lease) : c.url;
    const payload = c.body === undefined ? undefined : typeof c.body === 'string' ? c.body : JSON.stringify(c.body);
    const headers: Record<string, string> = { ...(c.headers ?? {}) };
    if (payload !== undefined) headers['content-type'] = c.type ?? json;
    const res = await t.app.inject({ method: c.method, url, headers, ...(payload !== undefined ? { payload } : {}) });
    expectError(res, c.status, c.code, c.message);
    if (c.status === 405) expect(String(res.headers.allow)).toMatch(/[A-Z]+(, [A-Z]+)*/);
    await expectUnchanged();
  });

  test('a 2 MiB JSON body is 413 body_too_large', async () => {
    const body = JSON.stringify({ success: [put('/k', 'x'.repeat(2 * 1024 * 1024))] });
    const res = await t.app.inject({
      method: 'POST',
      url: '/v1/txn',
      headers: { 'content-type': json },
      payload: body,
    });
    expectError(res, 413, 'body_too_large', /body/i);
    await expectUnchanged();
  });

  test('a value of 1 MiB + 1 byte is 413 value_too_large; exactly 1 MiB is taken', async () => {
    const tooBig = Buffer.alloc(1024 * 1024 + 1, 0x61);
    const err = expectError(
      await t.app.inject({ method: 'PUT', url: '/v1/kv/k', payload: tooBig }),
      413,
      'value_too_large',
      /limit of 1048576 bytes/,
    );
    expect(err).toMatchObject({ size: 1024 * 1024 + 1, limit: 1024 * 1024 });
    await expectUnchanged();
    const res = await t.app.inject({ method: 'PUT', url: '/v1/kv/big', payload: Buffer.alloc(1024 * 1024, 0x61) });
    expect(res.statusCode).toBe(200);
  });

  test('a txn put over the value limit is 413 value_too_large', async () => {
    const body = { success: [put('/k', 'x'.repeat(1024 * 1024 + 1))] };
    expectError(
      await t.app.inject({ method: 'POST', url: '/v1/txn', payload: body }),
      413,
      'value_too_large',
      /exceeds the limit/,
    );
    await expectUnchanged();
  });
});

describe('a custom maxValueBytes', () => {
  let small: TestApp;
  beforeEach(async () => {
    small = await makeApp({ maxValueBytes: 16 });
  });
  afterEach(async () => {
    await small.close();
  });

  test('16 bytes are taken, 17 are 413 value_too_large, by PUT and by txn', async () => {
    expect((await small.app.inject({ method: 'PUT', url: '/v1/kv/a', payload: 'x'.repeat(16) })).statusCode).toBe(200);
    const err = expectError(
      await small.app.inject({ method: 'PUT', url: '/v1/kv/a', payload: 'y'.repeat(17) }),
      413,
      'value_too_large',
      /17 bytes exceeds the limit of 16 bytes/,
    );
    expect(err.limit).toBe(16);
    expectError(
      await small.app.inject({ method: 'POST', url: '/v1/txn', payload: { success: [put('/a', 'z'.repeat(17))] } }),
      413,
      'value_too_large',
      /limit of 16 bytes/,
    );
    expect(await small.backend.revision()).toBe(1);
    expect((await small.app.inject({ method: 'GET', url: '/v1/kv/a' })).payload).toBe('x'.repeat(16));
  });

  test('a chunked body over the limit is 413 without a made-up size', async () => {
    await small.listen();
    const res = await rawRequest(small.port, 'PUT', '/v1/kv/a', {
      headers: { 'transfer-encoding': 'chunked' },
      body: 'y'.repeat(40),
    });
    const err = expectError(res, 413, 'value_too_large', /exceeds the limit of 16 bytes/);
    expect(err.message).not.toMatch(/value of 0 bytes/);
    expect(await small.backend.revision()).toBe(0);
  });
});

describe('raw paths (sent as is over a socket)', () => {
  beforeEach(async () => {
    await t.listen();
  });

  test.each([
    ['PUT', '/v1/kv/a/../k', /"\.\." segment/],
    ['PUT', '/v1/kv/../k', /"\.\." segment/],
    ['PUT', '/v1/kv/a/./k', /"\." segment/],
    ['PUT', '/v1/kv/a/%2e%2e/k', /"\.\." segment/],
    ['PUT', '/v1/kv/%2E/k', /"\." segment/],
    ['DELETE', '/v1/kv/x/../k', /"\.\." segment/],
    ['DELETE', '/v1/kv/./?prefix=true', /"\." segment/],
    ['GET', '/v1/kv/a/..?prefix=true', /"\.\." segment/],
    ['GET', '/v1/watch/x/../k', /"\.\." segment/],
    ['GET', '/v1/wait/x/%2E%2E/k?exists=true', /"\.\." segment/],
  ])('%s %s → 400 invalid_key', async (method, path, message) => {
    const res = await rawRequest(t.port, method, path, method === 'PUT' ? { body: 'changed' } : {});
    expectError(res, 400, 'invalid_key', message);
    await expectUnchanged();
  });

  test.each([
    ['an unknown method', 'FOO /v1/kv/a HTTP/1.1\r\nHost: x\r\n\r\n', 400, 'invalid_request', /unknown method/],
    [
      'a 20 KB query string',
      `GET /v1/kv/a?x=${'a'.repeat(20_000)} HTTP/1.1\r\nHost: x\r\n\r\n`,
      431,
      'headers_too_large',
      /16 KiB/,
    ],
    ['no Host header', 'PUT /v1/kv/a HTTP/1.1\r\ncontent-length: 1\r\n\r\nx', 400, 'invalid_request', /Host/],
    ['garbage', 'GARBAGE\u0000\r\n\r\n', 400, 'invalid_request', /malformed HTTP/],
  ] as const)('malformed HTTP (%s) gets the catalogue body', async (_what, request, status, code, message) => {
    const answer = await rawExchange(t.port, request);
    const [head, body] = splitResponse(answer);
    expect(head).toMatch(new RegExp(`^HTTP/1.1 ${status} `));
    expect(JSON.parse(body)).toMatchObject({ error: { code, message: expect.stringMatching(message) } });
    await expectUnchanged();
  });

  test('garbage after a request: the request gets its answer, then the garbage its 400', async () => {
    const answer = await rawExchange(t.port, 'GET /healthz HTTP/1.1\r\nHost: x\r\n\r\nGARBAGE\u0000\r\n\r\n');
    expect(answer).toMatch(/^HTTP\/1.1 200 [\s\S]*"status":"ok"[\s\S]*HTTP\/1.1 400 [\s\S]*"code":"invalid_request"/);
  });

  test('garbage after a watch request: the watch still streams', async () => {
    const answer = await rawExchange(t.port, 'GET /v1/watch/a/ HTTP/1.1\r\nHost: x\r\n\r\nGARBAGE\u0000\r\n\r\n', 500);
    expect(answer).toMatch(/^HTTP\/1.1 200 [\s\S]*text\/event-stream[\s\S]*: watching/);
  });

  test.each(['/v1/kv/a%ZZ', '/v1/kv/k%'])(
    'an undecodable URL %s is 400 invalid_request in the usual body',
    async (path) => {
      const res = await rawRequest(t.port, 'PUT', path, { body: 'changed' });
      expectError(res, 400, 'invalid_request', /not a valid url/);
      expect(res.headers['content-type']).toMatch(/application\/json/);
      await expectUnchanged();
    },
  );
});

/** Send `request` as raw bytes; everything the server sent back within `ms` (or until it closed). */
function rawExchange(port: number, request: string, ms = 2000): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1', () => socket.write(request, 'latin1'));
    let answer = '';
    const timer = setTimeout(() => {
      socket.destroy();
      resolve(answer);
    }, ms);
    socket.on('data', (chunk: Buffer) => (answer += chunk.toString('utf8')));
    socket.on('close', () => {
      clearTimeout(timer);
      resolve(answer);
    });
    socket.on('error', (error) => {
      clearTimeout(timer);
      if (answer) resolve(answer);
      else reject(error);
    });
  });
}

function splitResponse(answer: string): [string, string] {
  const at = answer.indexOf('\r\n\r\n');
  return [answer.slice(0, at), answer.slice(at + 4)];
}
