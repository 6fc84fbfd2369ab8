/**
 * The dashboard's one connection to muster: the project's typed client over the
 * public HTTP API, from the page's own origin. Signed in, the browser sends the
 * session cookie (HttpOnly: script never holds the token); the CSRF header marks
 * requests as the dashboard's own.
 */
import { MusterClient } from '../../src/client/muster-client.js';

export const client = new MusterClient({
  endpoints: location.origin,
  headers: { 'x-muster-csrf': '1' },
  requestTimeoutMs: 30_000,
});

/** An error's message for people (the server's errors name the problem). */
export function messageOf(error: unknown): string {
  if (error instanceof Error) return error.message;
  return String(error);
}

/** True for the error a request gets when the session is gone or was never there. */
export function isSignedOut(error: unknown): boolean {
  return (error as { code?: unknown } | null)?.code === 'unauthenticated';
}
