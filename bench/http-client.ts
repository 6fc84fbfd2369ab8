/**
 * A small HTTP client for the scenarios that drive their load from Node (locks,
 * wait): requests go through a node:http Agent the caller sizes, so that every
 * blocked request can hold a connection of its own (the global fetch pools its
 * connections per origin), plus the latency percentiles of their rows.
 */
import { Agent, request } from 'node:http';

/** A whole answer: its status and its body as text. */
export interface Answer {
  readonly status: number;
  readonly body: string;
}

/** How long a request may take before it is given up. Blocking calls in the bench ask for 60 s at most. */
const REQUEST_TIMEOUT_MS = 70_000;

/** An agent that keeps up to `sockets` connections open and reuses them. */
export function keepAliveAgent(sockets: number): Agent {
  return new Agent({ keepAlive: true, maxSockets: sockets, maxFreeSockets: sockets });
}

/**
 * Send one request through `agent` and read the whole answer. An object body is
 * sent as JSON, a string or bytes as they are. Rejects on a socket error or after
 * `timeoutMs`.
 */
export function send(
  agent: Agent,
  method: string,
  url: string,
  body?: object | string | Uint8Array,
  timeoutMs = REQUEST_TIMEOUT_MS,
  headers: Readonly<Record<string, string>> = {},
): Promise<Answer> {
  const json = body !== undefined && typeof body === 'object' && !(body instanceof Uint8Array);
  const payload = json ? JSON.stringify(body) : body;
  return new Promise((resolve, reject) => {
    const req = request(url, {
      method,
      agent,
      headers: {
        ...headers,
        ...(payload === undefined ? {} : { 'content-type': json ? 'application/json' : 'application/octet-stream' }),
      },
    });
    const timer = setTimeout(
      () => req.destroy(new Error(`${method} ${new URL(url).pathname}: no answer within ${timeoutMs} ms`)),
      timeoutMs,
    );
    req.on('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    req.once('response', (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('error', (error) => {
        clearTimeout(timer);
        reject(error);
      });
      res.once('end', () => {
        clearTimeout(timer);
        resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') });
      });
    });
    req.end(payload);
  });
}

/** `send`, then parse the JSON answer; throws, naming the call, unless the status is 2xx. */
export async function sendJson(
  agent: Agent,
  method: string,
  url: string,
  body?: object,
  headers: Readonly<Record<string, string>> = {},
): Promise<unknown> {
  const answer = await send(agent, method, url, body, REQUEST_TIMEOUT_MS, headers);
  if (answer.status < 200 || answer.status > 299) {
    throw new Error(`${method} ${new URL(url).pathname} answered ${answer.status}: ${answer.body.slice(0, 300)}`);
  }
  return JSON.parse(answer.body) as unknown;
}

/** The nearest-rank `p`-quantile (0 < p ≤ 1) of ascending `sorted`; 0 for none. */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))] ?? 0;
}

/** Resolve after `ms`. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
