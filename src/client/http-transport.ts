import type { MusterError } from '../core/errors.js';
import { BackendUnavailableError } from '../core/errors.js';
import type { ErrorContext } from './error-from-wire.js';
import { errorFromWire } from './error-from-wire.js';

/** The `fetch` the client calls; the global one unless a test or a proxy gives another. */
export type FetchFunction = (input: string, init: RequestInit) => Promise<Response>;

export interface HttpRequest {
  readonly method: 'GET' | 'PUT' | 'POST' | 'DELETE';
  /** Path and query, starting with `/`. */
  readonly path: string;
  readonly body?: Uint8Array | string;
  readonly headers?: Record<string, string>;
  /**
   * True when sending the request twice has the effect of sending it once; only
   * then is it retried on another endpoint after it may have reached a server.
   */
  readonly idempotent: boolean;
  /** Abort after this many ms; 0 means never (streams). */
  readonly timeoutMs?: number;
  readonly signal?: AbortSignal;
  /** Statuses besides 2xx that the caller handles itself (such as 404 for a long poll). */
  readonly accept?: readonly number[];
  /** What to name in an error the body does not fully describe. */
  readonly context?: ErrorContext;
}

/** Network error codes that mean the request never reached a server. */
const NOT_SENT_CODES = new Set([
  'ECONNREFUSED',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'UND_ERR_CONNECT_TIMEOUT',
]);

/** Plain words for the usual network error codes. */
const NETWORK_REASONS: Record<string, string> = {
  ECONNREFUSED: 'connection refused',
  ECONNRESET: 'connection reset',
  ENOTFOUND: 'host not found',
  EAI_AGAIN: 'host name lookup failed',
  EHOSTUNREACH: 'host unreachable',
  ENETUNREACH: 'network unreachable',
  UND_ERR_CONNECT_TIMEOUT: 'connection timed out',
  UND_ERR_SOCKET: 'the connection was closed',
};

/**
 * Sends requests to one of several endpoints. A connection failure or a 503 moves
 * on to the next endpoint; the request itself is retried there only when it is
 * idempotent or certainly never reached a server, so a write is never applied twice.
 */
export class HttpTransport {
  private current = 0;

  constructor(
    readonly endpoints: readonly string[],
    private readonly fetchFn: FetchFunction,
    private readonly defaultTimeoutMs: number,
    /** Sent as `Authorization: Bearer` with every request. */
    private readonly token?: string,
    /** Sent with every request. */
    private readonly extraHeaders?: Readonly<Record<string, string>>,
  ) {}

  /** The endpoint the next request goes to. */
  get endpoint(): string {
    return this.endpoints[this.current] ?? '';
  }

  /**
   * Send `request` and return the response when its status is 2xx or accepted;
   * throw the typed error of its body otherwise.
   */
  async send(request: HttpRequest): Promise<Response> {
    let lastError: MusterError | null = null;
    for (let attempt = 0; attempt < this.endpoints.length; attempt++) {
      const index = this.current;
      const endpoint = this.endpoints[index] ?? '';
      const timeoutMs = request.timeoutMs ?? this.defaultTimeoutMs;
      const signals = [request.signal, timeoutMs > 0 ? AbortSignal.timeout(Math.ceil(timeoutMs)) : undefined].filter(
        (s): s is AbortSignal => s !== undefined,
      );
      let response: Response;
      try {
        response = await this.fetchFn(endpoint + request.path, {
          method: request.method,
          headers: this.headersOf(request),
          body: request.body as RequestInit['body'],
          signal: signals.length > 1 ? AbortSignal.any(signals) : (signals[0] ?? null),
        });
      } catch (error) {
        if (request.signal?.aborted) throw request.signal.reason;
        lastError = describeNetworkError(endpoint, request, timeoutMs, error);
        this.moveOn(index);
        if (request.idempotent || neverSent(error)) continue;
        throw lastError;
      }
      if (response.ok || request.accept?.includes(response.status)) return response;
      const error = errorFromWire(response.status, await readJsonBody(response), request.context);
      if (response.status !== 503) throw error;
      lastError = error;
      this.moveOn(index);
      if (!request.idempotent) throw error;
    }
    throw lastError ?? new BackendUnavailableError('no endpoint to send the request to');
  }

  private headersOf(request: HttpRequest): Record<string, string> | undefined {
    if (!this.token && !this.extraHeaders) return request.headers;
    return {
      ...this.extraHeaders,
      ...request.headers,
      ...(this.token ? { authorization: `Bearer ${this.token}` } : {}),
    };
  }

  private moveOn(failedIndex: number): void {
    // Concurrent requests may all fail on the same endpoint: move on once.
    if (this.current === failedIndex) this.current = (failedIndex + 1) % this.endpoints.length;
  }
}

/** The body parsed as JSON, or null when it is empty or not JSON. */
export async function readJsonBody(response: Response): Promise<unknown> {
  try {
    const text = await response.text();
    return text.length > 0 ? (JSON.parse(text) as unknown) : null;
  } catch {
    return null;
  }
}

function describeNetworkError(endpoint: string, request: HttpRequest, timeoutMs: number, error: unknown): MusterError {
  if (error instanceof DOMException && error.name === 'TimeoutError') {
    return new BackendUnavailableError(`the muster server at ${endpoint} did not answer within ${timeoutMs} ms`, {
      cause: error,
    });
  }
  const code = networkCodes(error)[0];
  const reason = (code !== undefined ? NETWORK_REASONS[code] : undefined) ?? code ?? deepestMessage(error);
  return new BackendUnavailableError(`cannot reach the muster server at ${endpoint}: ${reason}`, { cause: error });
}

/** The message of the innermost cause: undici's own ("fetch failed") says nothing. */
function deepestMessage(error: unknown): string {
  let current: unknown = error;
  for (let depth = 0; depth < 5; depth++) {
    const cause = (current as { cause?: unknown } | null)?.cause;
    if (!(cause instanceof Error)) break;
    current = cause;
  }
  return current instanceof Error ? current.message : String(current);
}

function neverSent(error: unknown): boolean {
  return networkCodes(error).some((code) => NOT_SENT_CODES.has(code));
}

/** Error codes along the cause chain (undici wraps them in "fetch failed", sometimes in an AggregateError). */
function networkCodes(error: unknown, depth = 0): string[] {
  if (depth > 5 || typeof error !== 'object' || error === null) return [];
  const codes: string[] = [];
  const code = (error as { code?: unknown }).code;
  if (typeof code === 'string') codes.push(code);
  if (error instanceof AggregateError) for (const inner of error.errors) codes.push(...networkCodes(inner, depth + 1));
  codes.push(...networkCodes((error as { cause?: unknown }).cause, depth + 1));
  return codes;
}
