/**
 * Talks to a real server as Noah's clients did: rack-test and Net::HTTP label every
 * body `application/x-www-form-urlencoded` unless told otherwise, and send it raw.
 */
import { expect } from 'vitest';

export interface NoahResponse {
  readonly status: number;
  readonly contentType: string;
  readonly text: string;
  /** The body parsed as JSON (throws if it is not JSON). */
  json<T = Record<string, unknown>>(): T;
}

export const FORM = 'application/x-www-form-urlencoded';

export class NoahClient {
  constructor(
    readonly base: string,
    private readonly auth?: string,
  ) {}

  async send(method: string, path: string, body?: string, headers: Record<string, string> = {}): Promise<NoahResponse> {
    const all: Record<string, string> = { ...headers };
    if (body !== undefined && !Object.keys(all).some((h) => h.toLowerCase() === 'content-type')) {
      all['content-type'] = FORM;
    }
    if (this.auth !== undefined) all.authorization = this.auth;
    const res = await fetch(this.base + path, { method, headers: all, ...(body !== undefined ? { body } : {}) });
    const text = await res.text();
    return {
      status: res.status,
      contentType: res.headers.get('content-type') ?? '',
      text,
      json: <T>() => JSON.parse(text) as T,
    };
  }
  get(path: string, headers?: Record<string, string>): Promise<NoahResponse> {
    return this.send('GET', path, undefined, headers);
  }
  put(path: string, body?: string, headers?: Record<string, string>): Promise<NoahResponse> {
    return this.send('PUT', path, body, headers);
  }
  /** As the specs did: a JSON body labelled application/json. */
  putJson(path: string, body: unknown): Promise<NoahResponse> {
    return this.send('PUT', path, JSON.stringify(body), { 'content-type': 'application/json' });
  }
  delete(path: string, body?: string): Promise<NoahResponse> {
    return this.send('DELETE', path, body);
  }
}

/** The spec helper's `return_json`: Content-Type application/json;… and a body that parses. */
export function returnJson<T = Record<string, unknown>>(res: NoahResponse): T {
  expect(res.contentType).toMatch(/^application\/json;.*/);
  return res.json<T>();
}

/** `be_missing`: 404 with Noah's failure body. */
export function beMissing(res: NoahResponse): void {
  expect(res.status).toBe(404);
  expect(returnJson(res)).toEqual({ result: 'failure', error_message: 'Resource not found' });
}

/** `be_invalid`: a failure "Missing Parameters" (400 here where Noah answered 500). */
export function beInvalid(res: NoahResponse): void {
  expect(res.status).toBe(400);
  expect(returnJson(res)).toEqual({ result: 'failure', error_message: 'Missing Parameters' });
}

export function failure(res: NoahResponse, status: number, message: string): void {
  expect(res.status).toBe(status);
  expect(returnJson(res)).toEqual({ result: 'failure', error_message: message });
}

const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const TIME = /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC$/;

/** Field-for-field comparison: `ID` and `TIME` stand for any GUID or Noah timestamp. */
export const ID = Symbol('id');
export const TIME_ = Symbol('time');
export function matchShape(actual: unknown, expected: unknown, at = '$'): void {
  if (expected === ID) {
    expect(actual, at).toMatch(GUID);
    return;
  }
  if (expected === TIME_) {
    expect(actual, at).toMatch(TIME);
    return;
  }
  if (typeof expected === 'object' && expected !== null && 'asymmetricMatch' in expected) {
    expect(actual, at).toEqual(expected);
    return;
  }
  if (Array.isArray(expected)) {
    expect(Array.isArray(actual), `${at} is an array`).toBe(true);
    expect((actual as unknown[]).length, `${at} length`).toBe(expected.length);
    expected.forEach((e, i) => matchShape((actual as unknown[])[i], e, `${at}[${i}]`));
    return;
  }
  if (typeof expected === 'object' && expected !== null) {
    expect(typeof actual === 'object' && actual !== null, `${at} is an object`).toBe(true);
    expect(Object.keys(actual as object).sort(), `${at} keys`).toEqual(Object.keys(expected).sort());
    for (const [k, v] of Object.entries(expected)) matchShape((actual as Record<string, unknown>)[k], v, `${at}.${k}`);
    return;
  }
  expect(actual, at).toEqual(expected);
}
