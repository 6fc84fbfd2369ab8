/**
 * Webhooks: a change under a prefix is POSTed to a URL, at least once, in revision
 * order per hook. Each hook lives under `/muster/auth/hooks/<name>/` (hidden from
 * non-admins like the tokens): `def` (what the API writes: the definition, and the
 * pause/resume control), `secret` (the HMAC key, never returned), and `state` (what
 * the delivery duty writes: the cursor, failures, and the last 100 attempts).
 */
import Type from 'typebox';
import type { Static } from 'typebox';
import { InvalidArgumentError, MusterError } from '../core/errors.js';
import type { ErrorCode } from '../core/error-catalogue.js';
import { validateName, validatePrefix } from '../core/key-path.js';

export const HOOKS_PREFIX = '/muster/auth/hooks/';

export const hookKeys = {
  def: (name: string) => `${HOOKS_PREFIX}${name}/def`,
  secret: (name: string) => `${HOOKS_PREFIX}${name}/secret`,
  state: (name: string) => `${HOOKS_PREFIX}${name}/state`,
};

export const HOOK_EVENTS = ['put', 'delete'] as const;
export type HookEvent = (typeof HOOK_EVENTS)[number];

/** `POST /v1/hooks`. */
export const HookRequest = Type.Object(
  {
    name: Type.String({ minLength: 1, maxLength: 128 }),
    /** Changes of keys under this prefix are delivered. */
    prefix: Type.String({ minLength: 1, maxLength: 1024 }),
    /** Where to POST: http:// or https://, no credentials. */
    url: Type.String({ minLength: 1, maxLength: 2048 }),
    /** Which events. @default ["put","delete"] */
    events: Type.Optional(
      Type.Array(Type.Union([Type.Literal('put'), Type.Literal('delete')]), { minItems: 1, maxItems: 2 }),
    ),
    /** The body format: "json" (muster's), "noah" (Noah's watch message). @default "json" */
    format: Type.Optional(Type.String({ minLength: 1, maxLength: 32 })),
    /** The HMAC-SHA256 key of `X-Muster-Signature-256`. Never shown again. */
    secret: Type.Optional(Type.String({ minLength: 1, maxLength: 1024 })),
  },
  { additionalProperties: false },
);
export type HookRequest = Static<typeof HookRequest>;

/** What `def` holds. */
export interface HookDef {
  name: string;
  prefix: string;
  url: string;
  events: HookEvent[];
  format: string;
  secretSet: boolean;
  createdBy: string;
  createdAt: string;
  /** Paused by `POST /v1/hooks/<name>/pause`. */
  paused: boolean;
  /** Counts resumes: the duty clears a pause of its own when this moves past the one it has seen. */
  resumes: number;
}

/** Where delivery stands: `revision`'s events from index `next` on are not delivered yet (all before are). */
export interface HookCursor {
  revision: number;
  next: number;
}

/** One delivery attempt, stored compactly: [time ms, HTTP status (0: none), latency ms, attempt, error]. */
export type HookAttempt = [number, number, number, number, string | null];

export type HookStatus = 'active' | 'failing' | 'paused';

/** What `state` holds (written by the delivery duty only). */
export interface HookState {
  cursor: HookCursor;
  /** active; failing after 3 consecutive failures; paused after `hookRetryLimit` of failures. */
  status: HookStatus;
  failures: number;
  /** When the current run of failures began (ms), or null. */
  failingSince: number | null;
  lastError: string | null;
  /** The last resume the duty has acted on (def.resumes). */
  resumes: number;
  /** History the hook could not deliver (compacted past `hookHistoryBound`), the latest gap. */
  missed: { from: number; to: number } | null;
  delivered: number;
  /** The last 100 attempts, oldest first. */
  log: HookAttempt[];
}

export const HookView = Type.Object({
  name: Type.String(),
  prefix: Type.String(),
  url: Type.String(),
  events: Type.Array(Type.String()),
  format: Type.String(),
  secretSet: Type.Boolean(),
  createdBy: Type.String(),
  createdAt: Type.String(),
  /** active, failing, paused (by the API or after failing too long). */
  status: Type.String(),
  /** Revisions below this (and this one's events before `next`) are delivered. */
  cursor: Type.Object({ revision: Type.Integer(), next: Type.Integer() }),
  failures: Type.Integer(),
  lastError: Type.Union([Type.String(), Type.Null()]),
  missed: Type.Union([Type.Object({ from: Type.Integer(), to: Type.Integer() }), Type.Null()]),
  delivered: Type.Integer(),
});
export type HookView = Static<typeof HookView>;

export const HookDelivery = Type.Object({
  at: Type.String(),
  status: Type.Integer(),
  latencyMs: Type.Integer(),
  attempt: Type.Integer(),
  error: Type.Union([Type.String(), Type.Null()]),
});
export type HookDelivery = Static<typeof HookDelivery>;

export const LOG_SIZE = 100;
/** Consecutive failures after which a hook is `failing`. */
export const FAILING_AFTER = 3;

export class HookExistsError extends MusterError {
  readonly code: ErrorCode = 'hook_exists';
  constructor(readonly hookName: string) {
    super(`a webhook named ${JSON.stringify(hookName)} exists already`);
  }
}

export class HookNotFoundError extends MusterError {
  readonly code: ErrorCode = 'hook_not_found';
  constructor(readonly hookName: string) {
    super(`no webhook is named ${JSON.stringify(hookName)}`);
  }
}

/** An absolute http(s) URL without credentials, or InvalidArgumentError (invalid_url). */
export function validateHookUrl(url: string): string {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new InvalidArgumentError(
      `invalid url ${JSON.stringify(url.slice(0, 200))}: not an absolute URL`,
      'invalid_url',
    );
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
    throw new InvalidArgumentError(
      `invalid url: only http:// and https:// are delivered to, not ${parsed.protocol}`,
      'invalid_url',
    );
  }
  if (parsed.username !== '' || parsed.password !== '') {
    throw new InvalidArgumentError(
      'invalid url: no credentials in the URL (use --secret to sign deliveries)',
      'invalid_url',
    );
  }
  return url;
}

export function checkHookRequest(
  request: HookRequest,
  formats: ReadonlySet<string>,
): Omit<HookDef, 'createdBy' | 'createdAt' | 'paused' | 'resumes'> {
  const format = request.format ?? 'json';
  if (!formats.has(format)) {
    throw new InvalidArgumentError(
      `invalid format ${JSON.stringify(format)}: one of ${[...formats].join(', ')}`,
      'invalid_request',
    );
  }
  return {
    name: validateName(request.name, 'hook name'),
    prefix: validatePrefix(request.prefix),
    url: validateHookUrl(request.url),
    events: [...new Set((request.events ?? ['put', 'delete']) as HookEvent[])],
    format,
    secretSet: request.secret !== undefined,
  };
}

export function toView(def: HookDef, state: HookState | null): HookView {
  return {
    name: def.name,
    prefix: def.prefix,
    url: def.url,
    events: def.events,
    format: def.format,
    secretSet: def.secretSet,
    createdBy: def.createdBy,
    createdAt: def.createdAt,
    status: def.paused
      ? 'paused'
      : state && state.status === 'paused' && def.resumes > state.resumes
        ? 'active'
        : (state?.status ?? 'active'),
    cursor: state?.cursor ?? { revision: 0, next: 0 },
    failures: state?.failures ?? 0,
    lastError: state?.lastError ?? null,
    missed: state?.missed ?? null,
    delivered: state?.delivered ?? 0,
  };
}

export function toDeliveries(state: HookState | null): HookDelivery[] {
  return (state?.log ?? []).map(([t, status, latencyMs, attempt, error]) => ({
    at: new Date(t).toISOString(),
    status,
    latencyMs,
    attempt,
    error,
  }));
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();
export const encodeJson = (value: unknown): Uint8Array => encoder.encode(JSON.stringify(value));
export const decodeJson = <T>(bytes: Uint8Array): T => JSON.parse(decoder.decode(bytes)) as T;
