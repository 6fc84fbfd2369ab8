import { Readable } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import type { FetchFunction } from '../client/http-transport.js';

/** One request handed to the app, and (once answered) its answer. */
export interface Exchange {
  readonly method: string;
  /** Path and query. */
  readonly path: string;
  readonly headers: Readonly<Record<string, string>>;
  readonly body: string | null;
  /** Set on the answer. */
  readonly status?: number;
  readonly payload?: string;
}

/** Told of each request as it is handed over, and of its answer, whoever waits for it. */
export interface ExchangeObserver {
  sent?(exchange: Exchange): void;
  answered?(exchange: Exchange): void;
}

/**
 * A `fetch` that hands each request to the app in this process (`app.inject`)
 * instead of a socket: the simulator's nodes talk to a real muster server this
 * way, with every request passing through the same routes, checks and
 * primitives as over HTTP. Bodies are whole (no streaming): the simulated nodes
 * use request/response calls only (blocking calls answer when their wait ends).
 * Aborting is the caller's business: a request handed over is always answered.
 *
 * An event stream (an agent's assignments, `GET /v1/nodes/<node>/assignments`)
 * is the exception: its answer comes as soon as the server starts it, with a
 * body that carries the events as the server writes them, and aborting the
 * request's signal ends it on both sides (the server sees its client go away).
 */
export function injectFetch(app: FastifyInstance, observer: ExchangeObserver = {}): FetchFunction {
  return async (input, init) => {
    const url = new URL(input);
    const body = init.body === undefined || init.body === null ? null : (init.body as string | Uint8Array);
    const exchange: Exchange = {
      method: init.method ?? 'GET',
      path: url.pathname + url.search,
      headers: headersOf(init.headers),
      body: body === null ? null : typeof body === 'string' ? body : Buffer.from(body).toString('utf8'),
    };
    observer.sent?.(exchange);
    if (isEventStream(exchange.method, url.pathname)) return stream(app, exchange, init.signal ?? null);
    const answer = await app.inject({
      method: exchange.method as 'GET' | 'PUT' | 'POST' | 'DELETE',
      url: exchange.path,
      headers: exchange.headers,
      ...(body !== null ? { payload: typeof body === 'string' ? body : Buffer.from(body) } : {}),
    });
    observer.answered?.({ ...exchange, status: answer.statusCode, payload: answer.payload });
    return wholeResponse(answer.statusCode, answer.headers, answer.payload);
  };
}

/**
 * The answer as a Response, built without a web stream under it (the simulator
 * sends thousands of requests, and a stream per answer is most of what a
 * Response costs): status, ok, headers.get, text, json and arrayBuffer read the
 * payload directly; `body` makes a stream only when something asks for it.
 */
function wholeResponse(
  status: number,
  raw: Readonly<Record<string, string | string[] | number | undefined>>,
  payload: string,
): Response {
  const empty = status === 204 || status === 304;
  const text = empty ? '' : payload;
  const headers = {
    get(name: string): string | null {
      const value = raw[name.toLowerCase()];
      if (value === undefined) return null;
      return Array.isArray(value) ? value.join(', ') : String(value);
    },
    has(name: string): boolean {
      return raw[name.toLowerCase()] !== undefined;
    },
  };
  let used = false;
  const consume = () => {
    if (used) return Promise.reject(new TypeError('Body is unusable: Body has already been read'));
    used = true;
    return Promise.resolve(text);
  };
  const response = {
    status,
    ok: status >= 200 && status < 300,
    statusText: '',
    headers,
    get bodyUsed() {
      return used;
    },
    get body(): ReadableStream<Uint8Array> | null {
      if (empty) return null;
      used = true;
      return new Response(text).body;
    },
    text: consume,
    json: () => consume().then((t) => JSON.parse(t) as unknown),
    arrayBuffer: () => consume().then((t) => new TextEncoder().encode(t).buffer),
  };
  return response as unknown as Response;
}

/** The routes whose answer (to a GET) is an event stream: an agent's assignments. */
const STREAMS = /^\/v1\/nodes\/[^/]+\/assignments$/;

/** The request (`pathname` without its query) is answered by an event stream, which stays open after its answer. */
export function isEventStream(method: string, pathname: string): boolean {
  return method === 'GET' && STREAMS.test(pathname);
}

async function stream(app: FastifyInstance, exchange: Exchange, signal: AbortSignal | null): Promise<Response> {
  signal?.throwIfAborted();
  const answer = await app.inject({
    method: 'GET',
    url: exchange.path,
    headers: exchange.headers,
    payloadAsStream: true,
  });
  const body = answer.stream();
  const raw = answer.raw.res;
  const end = () => {
    raw.destroy();
    body.destroy(signal?.reason instanceof Error ? signal.reason : new Error('aborted'));
  };
  if (signal?.aborted) end();
  else signal?.addEventListener('abort', end, { once: true });
  body.once('close', () => signal?.removeEventListener('abort', end));
  const headers = new Headers();
  for (const [name, value] of Object.entries(answer.headers)) {
    if (value === undefined) continue;
    for (const one of Array.isArray(value) ? value : [value]) headers.append(name, String(one));
  }
  return new Response(Readable.toWeb(body) as ReadableStream<Uint8Array>, { status: answer.statusCode, headers });
}

function headersOf(headers: RequestInit['headers']): Record<string, string> {
  if (headers === undefined) return {};
  if (headers instanceof Headers) return Object.fromEntries(headers.entries());
  if (Array.isArray(headers)) return Object.fromEntries(headers);
  return { ...(headers as Record<string, string>) };
}
