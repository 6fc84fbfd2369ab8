/**
 * The dashboard's sign-in. A browser's EventSource cannot send a bearer header,
 * so signing in with a token gives an HttpOnly, SameSite=Strict session cookie
 * instead; every request carrying it is the token's own request, under the same
 * enforcement (access.ts). The token never reaches the page's script after
 * sign-in, nor localStorage. Sessions are held by the server that made them:
 * signing out ends one at once, and a restart signs everyone out.
 */
import { randomBytes } from 'node:crypto';
import type { FastifyRequest } from 'fastify';
import type { Clock } from '../../core/clock.js';

export const SESSION_COOKIE = 'muster_session';
/** Requests that change something and carry only the cookie must carry this header too (CSRF). */
export const CSRF_HEADER = 'x-muster-csrf';

interface Session {
  readonly token: string;
  lastUsedMs: number;
  readonly createdMs: number;
}

export interface UiSessionSettings {
  /** A session unused this long ends. @default 12 h */
  readonly idleMs?: number;
  /** A session ends this long after sign-in, used or not. @default 7 days */
  readonly maxAgeMs?: number;
  /** At most this many at once; the least recently used ends first. @default 10,000 */
  readonly max?: number;
}

export class UiSessions {
  /** In insertion order, refreshed on use: the first is the least recently used. */
  private readonly sessions = new Map<string, Session>();
  private readonly idleMs: number;
  private readonly maxAgeMs: number;
  private readonly max: number;

  constructor(
    private readonly clock: Clock,
    settings: UiSessionSettings = {},
  ) {
    this.idleMs = settings.idleMs ?? 12 * 3_600_000;
    this.maxAgeMs = settings.maxAgeMs ?? 7 * 86_400_000;
    this.max = settings.max ?? 10_000;
  }

  /** Seconds a new session's cookie lives (the browser forgets it then). */
  get cookieMaxAgeSeconds(): number {
    return Math.floor(this.maxAgeMs / 1000);
  }

  /** A new session for a token already proven valid; returns its id (the cookie's value). */
  create(token: string): string {
    const id = randomBytes(32).toString('base64url');
    const now = this.clock.now();
    this.sessions.set(id, { token, lastUsedMs: now, createdMs: now });
    while (this.sessions.size > this.max) {
      const oldest = this.sessions.keys().next().value as string;
      this.sessions.delete(oldest);
    }
    return id;
  }

  /** The token of a live session (and the session counts as used), or undefined. */
  tokenOf(id: string): string | undefined {
    const session = this.sessions.get(id);
    if (!session) return undefined;
    const now = this.clock.now();
    if (now - session.lastUsedMs > this.idleMs || now - session.createdMs > this.maxAgeMs) {
      this.sessions.delete(id);
      return undefined;
    }
    session.lastUsedMs = now;
    this.sessions.delete(id);
    this.sessions.set(id, session);
    return session.token;
  }

  /** End a session (signing out); true when there was one. */
  end(id: string): boolean {
    return this.sessions.delete(id);
  }

  get size(): number {
    return this.sessions.size;
  }
}

/** The session id a request's cookie header carries, if any. */
export function sessionIdOf(request: FastifyRequest): string | undefined {
  const header = request.headers.cookie;
  if (typeof header !== 'string') return undefined;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq < 0) continue;
    if (part.slice(0, eq).trim() === SESSION_COOKIE) {
      const value = part.slice(eq + 1).trim();
      return /^[A-Za-z0-9_-]{16,128}$/.test(value) ? value : undefined;
    }
  }
  return undefined;
}

/** The Set-Cookie value that gives a session (or, with id null, clears it). */
export function sessionCookie(id: string | null, secure: boolean, maxAgeSeconds: number): string {
  const attributes = ['Path=/', 'HttpOnly', 'SameSite=Strict', ...(secure ? ['Secure'] : [])];
  return id === null
    ? `${SESSION_COOKIE}=; Max-Age=0; ${attributes.join('; ')}`
    : `${SESSION_COOKIE}=${id}; Max-Age=${maxAgeSeconds}; ${attributes.join('; ')}`;
}
