import { request } from 'node:http';
import type { IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import { expect } from 'vitest';
import { SqliteBackend } from '../../src/backends/sqlite/sqlite-backend.js';
import type { ManualClock } from '../../src/core/clock.js';
import { buildApp } from '../../src/server/build-app.js';
import { systemClock } from '../../src/core/clock.js';
import { TokenRegistry } from '../../src/security/token-registry.js';

/** An app over an in-memory SQLite store, not listening (use `inject`) until `listen` is called. */
export interface TestApp {
  readonly app: FastifyInstance;
  readonly backend: SqliteBackend;
  /** The tokens, when built with `auth: true`. */
  readonly tokens: TokenRegistry | null;
  /** Set once `listen()` ran. */
  port: number;
  listen(): Promise<number>;
  close(): Promise<void>;
}

export interface TestAppOptions {
  readonly clock?: ManualClock;
  readonly maxValueBytes?: number;
  /** Check tokens (the app's real default); off unless asked for. */
  readonly auth?: boolean;
}

/** Build the app on a fresh in-memory store. */
export async function makeApp(options: TestAppOptions = {}): Promise<TestApp> {
  const backend = SqliteBackend.open({ dataDir: ':memory:', ...(options.clock ? { clock: options.clock } : {}) });
  const tokens = options.auth ? new TokenRegistry(backend, options.clock ?? systemClock) : null;
  await tokens?.start();
  const app = await buildApp({
    backend,
    // Most tests exercise the API itself; test/server/auth*.test.ts exercise the tokens.
    auth: tokens ? { tokens } : 'off',
    // Refusals are logged at warn; the tests read answers, not logs.
    logger: false,
    ...(options.clock ? { runtime: { clock: options.clock, random: Math.random } } : {}),
    ...(options.maxValueBytes !== undefined ? { maxValueBytes: options.maxValueBytes } : {}),
  });
  const test: TestApp = {
    app,
    backend,
    tokens,
    port: 0,
    async listen() {
      await app.listen({ host: '127.0.0.1', port: 0 });
      test.port = (app.server.address() as AddressInfo).port;
      return test.port;
    },
    async close() {
      tokens?.stop();
      await app.close();
      await backend.close();
    },
  };
  return test;
}

/** Assert an error answer: status, code, a message matching `message`; returns the error body. */
export function expectError(
  res: LightMyRequestResponse | RawResponse,
  status: number,
  code: string,
  message?: RegExp,
): { code: string; message: string; [field: string]: unknown } {
  const text = 'payload' in res ? res.payload : res.body;
  const status_ = 'statusCode' in res ? res.statusCode : res.status;
  expect({ status: status_, text }).toMatchObject({ status });
  const body = JSON.parse(text) as { error: { code: string; message: string; [field: string]: unknown } };
  expect(body.error.code).toBe(code);
  expect(typeof body.error.message).toBe('string');
  if (message) expect(body.error.message).toMatch(message);
  return body.error;
}

export interface RawResponse {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  readonly body: string;
}

/**
 * A request sent exactly as written with node:http (fetch and inject normalise
 * `..` and `%2e%2e` away).
 */
export function rawRequest(
  port: number,
  method: string,
  path: string,
  options: { headers?: Record<string, string>; body?: string | Buffer } = {},
): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, method, path, headers: options.headers ?? {} }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () =>
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }),
      );
      res.on('error', reject);
    });
    req.on('error', reject);
    if (options.body !== undefined) req.write(options.body);
    req.end();
  });
}

/** A JSON request over the socket, for blocking calls. */
export async function jsonFetch(
  port: number,
  method: string,
  path: string,
  body?: unknown,
  signal?: AbortSignal,
): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(`http://127.0.0.1:${port}${path}`, {
    method,
    ...(body !== undefined ? { body: JSON.stringify(body), headers: { 'content-type': 'application/json' } } : {}),
    ...(signal ? { signal } : {}),
  });
  const text = await res.text();
  return { status: res.status, body: text ? (JSON.parse(text) as Record<string, unknown>) : {} };
}

/** Poll `check` until it returns true (a state change we cannot subscribe to), failing after `ms`. */
export async function waitUntil(check: () => boolean | Promise<boolean>, what: string, ms = 5_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/** Track whether a promise has settled, to assert that a blocking call is still blocked. */
export function track<T>(promise: Promise<T>): { promise: Promise<T>; settled: () => boolean } {
  let done = false;
  const tracked = promise.finally(() => {
    done = true;
  });
  return { promise: tracked, settled: () => done };
}

/** One Server-Sent Event as it came over the wire. */
export interface SseEvent {
  readonly event?: string;
  readonly id?: string;
  readonly data: string;
  /** The block's lines, as sent. */
  readonly lines: string[];
}

/** A Server-Sent Events stream read with node:http, event by event. */
export class SseStream {
  private buffer = '';
  private readonly queue: SseEvent[] = [];
  private wake: (() => void) | null = null;
  private ended_ = false;
  /** Every byte received, for framing assertions. */
  text = '';
  readonly ended: Promise<void>;
  private markEnded: () => void = () => undefined;

  private constructor(
    readonly status: number,
    readonly headers: IncomingHttpHeaders,
    private readonly destroy: () => void,
  ) {
    this.ended = new Promise((resolve) => (this.markEnded = resolve));
  }

  /** Open `path`; resolves when the response headers arrive. */
  static open(port: number, path: string, headers: Record<string, string> = {}): Promise<SseStream> {
    return new Promise((resolve, reject) => {
      const req = request(
        { host: '127.0.0.1', port, method: 'GET', path, headers: { accept: 'text/event-stream', ...headers } },
        (res) => {
          const stream = new SseStream(res.statusCode ?? 0, res.headers, () => req.destroy());
          res.setEncoding('utf8');
          res.on('data', (chunk: string) => stream.feed(chunk));
          res.on('end', () => stream.finish());
          res.on('close', () => stream.finish());
          res.on('error', () => stream.finish());
          resolve(stream);
        },
      );
      req.on('error', reject);
      req.end();
    });
  }

  private feed(chunk: string): void {
    this.text += chunk;
    this.buffer += chunk;
    for (;;) {
      const end = this.buffer.indexOf('\n\n');
      if (end < 0) break;
      const block = this.buffer.slice(0, end);
      this.buffer = this.buffer.slice(end + 2);
      const lines = block.split('\n').filter((l) => !l.startsWith(':'));
      if (lines.length === 0) continue;
      const field = (name: string) => lines.find((l) => l.startsWith(`${name}: `))?.slice(name.length + 2);
      const event = field('event');
      const id = field('id');
      this.queue.push({
        ...(event !== undefined ? { event } : {}),
        ...(id !== undefined ? { id } : {}),
        data: field('data') ?? '',
        lines,
      });
    }
    this.wake?.();
  }

  private finish(): void {
    if (this.ended_) return;
    this.ended_ = true;
    this.markEnded();
    this.wake?.();
  }

  /** The next event; fails if the stream ends first or nothing comes within `ms`. */
  async next(ms = 5_000): Promise<SseEvent> {
    const deadline = Date.now() + ms;
    for (;;) {
      const event = this.queue.shift();
      if (event) return event;
      if (this.ended_) throw new Error('the stream ended');
      const left = deadline - Date.now();
      if (left <= 0) throw new Error('no event arrived in time');
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.wake = () => {
          clearTimeout(timer);
          this.wake = null;
          resolve();
        };
      });
    }
  }

  /** The next `n` events. */
  async take(n: number): Promise<SseEvent[]> {
    const events: SseEvent[] = [];
    while (events.length < n) events.push(await this.next());
    return events;
  }

  /** Events already received and not yet taken. */
  pending(): number {
    return this.queue.length;
  }

  /** Disconnect, as a client going away. */
  close(): void {
    this.destroy();
  }
}

/** The value of a metric line (no labels) in Prometheus text. */
export function metricValue(text: string, name: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${name} `));
  return line === undefined ? undefined : Number(line.slice(name.length + 1));
}
