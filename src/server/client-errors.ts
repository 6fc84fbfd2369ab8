import { STATUS_CODES } from 'node:http';
import type { ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { ErrorCode } from '../core/error-catalogue.js';
import { errorCatalogue } from '../core/error-catalogue.js';

/** What Node's HTTP parser found wrong, as the catalogue says it. */
function classify(error: Error & { code?: string }): { code: ErrorCode; message: string } {
  switch (error.code) {
    case 'HPE_HEADER_OVERFLOW':
      return { code: 'headers_too_large', message: 'the request line and headers exceed 16 KiB' };
    case 'HPE_INVALID_METHOD':
      return { code: 'invalid_request', message: 'malformed HTTP request: unknown method' };
    default:
      return { code: 'invalid_request', message: `malformed HTTP request (${error.code ?? error.message})` };
  }
}

/**
 * Answer what Node's HTTP parser refuses (garbage, an unknown method, headers too
 * large) with the catalogue's error body instead of Fastify's or Node's own, then
 * close the connection. When a request on the same connection is still being
 * answered (garbage after a request, or after a watch that streams), it gets its
 * whole answer first: the error follows it, never replaces it.
 */
export function answerClientError(error: Error & { code?: string }, socket: Socket): void {
  if (error.code === 'ECONNRESET' || !socket.writable) {
    socket.destroy();
    return;
  }
  const { code, message } = classify(error);
  const status = errorCatalogue[code].status;
  const body = JSON.stringify({ error: { code, message } });
  const raw =
    `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? 'Bad Request'}\r\n` +
    `content-type: application/json; charset=utf-8\r\ncontent-length: ${Buffer.byteLength(body)}\r\n` +
    `connection: close\r\n\r\n${body}`;
  const inFlight = (socket as Socket & { _httpMessage?: ServerResponse | null })._httpMessage;
  if (inFlight && !inFlight.writableFinished && !inFlight.req.complete && !inFlight.headersSent) {
    // The error is in this request's own body (bad chunking, say): it will never
    // be whole, so this is its answer.
    socket.end(raw);
    return;
  }
  if (inFlight && !inFlight.writableFinished) {
    inFlight.once('finish', () => (socket.writable ? socket.end(raw) : socket.destroy()));
    inFlight.once('close', () => socket.destroy());
    return;
  }
  socket.end(raw);
}
