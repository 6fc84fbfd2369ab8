/**
 * Every error code the API answers with, its HTTP status and what it means.
 * docs/errors.md lists the same codes (a test keeps the two equal), and the
 * client and CLI branch on `code`, never on the message.
 */
export interface CatalogueEntry {
  readonly status: number;
  readonly description: string;
}

export const errorCatalogue = {
  invalid_request: {
    status: 400,
    description: 'A parameter, field or header is missing, unknown or of the wrong type; the message names it.',
  },
  invalid_json: { status: 400, description: 'The body is not valid JSON.' },
  invalid_argument: { status: 400, description: 'An argument is out of its allowed range; the message names it.' },
  invalid_key: {
    status: 400,
    description:
      'A key or prefix breaks the path rules (must start with "/", no empty, "." or ".." segment, no control character, at most 1 KiB).',
  },
  invalid_duration: {
    status: 400,
    description:
      'A duration or timeout is not a number of seconds or a duration such as 500ms, 15s, 10m, or is out of range.',
  },
  invalid_ttl: { status: 400, description: 'A lease TTL is not a whole number of seconds from 1 to 86400.' },
  invalid_name: {
    status: 400,
    description: 'A lock, semaphore, election, barrier or once name is not 1-128 letters, digits, ".", "_" or "-".',
  },
  invalid_count: { status: 400, description: 'A barrier count is not a whole number from 1 to 100000.' },
  invalid_limit: { status: 400, description: 'A semaphore limit is not a whole number from 1 to 10000.' },
  invalid_pattern: { status: 400, description: 'A wait pattern is not a valid regular expression or is too long.' },
  invalid_encoding: { status: 400, description: 'A value encoding is neither "utf8" nor "base64".' },
  invalid_revision: {
    status: 400,
    description: 'A revision is not a positive whole number where one is required (such as a compaction revision).',
  },
  too_many_operations: {
    status: 400,
    description: 'A transaction has more operations than the store takes in one transaction (etcd: --max-txn-ops).',
  },
  duplicate_key: {
    status: 400,
    description: 'A transaction branch writes the same key twice (or puts a key its own delete covers).',
  },
  future_revision: { status: 400, description: 'The requested revision has not happened yet.' },
  cancelled: { status: 400, description: 'The caller went away while waiting.' },
  unauthenticated: {
    status: 401,
    description:
      'No token, or a token the server does not accept (unknown, revoked, expired or malformed): the same answer for each.',
  },
  forbidden: {
    status: 403,
    description: "The token's role or policy does not allow this; the message and the `rule` field name the rule.",
  },
  key_not_found: { status: 404, description: 'The key does not exist.' },
  lease_not_found: { status: 404, description: 'The lease does not exist: it expired, was revoked, or never existed.' },
  not_found: { status: 404, description: 'No such route.' },
  token_not_found: { status: 404, description: 'No token has this id (it never existed, or was revoked).' },
  method_not_allowed: { status: 405, description: 'The route does not take this method.' },
  timeout: {
    status: 408,
    description: 'A blocking call (lock, wait, barrier, ...) reached its timeout before its condition was met.',
  },
  revision_conflict: {
    status: 409,
    description:
      'A compare-and-swap failed: the key is not at the expected revision. The body carries currentModRevision.',
  },
  not_holder: {
    status: 409,
    description: 'The lock, slot, leadership or once run named by key and token is no longer held by the caller.',
  },
  limit_mismatch: { status: 409, description: 'Contenders of one semaphore or barrier disagree on its size.' },
  compacted: {
    status: 410,
    description: 'The requested revision is older than the retained history. The body carries oldestRevision.',
  },
  value_too_large: { status: 413, description: 'The value exceeds the configured maximum value size.' },
  body_too_large: { status: 413, description: 'The request body exceeds the maximum body size.' },
  uri_too_long: {
    status: 414,
    description:
      'The request path is too long (a name, key or lease id far over its limit); the message names the limit.',
  },
  limit_exceeded: {
    status: 429,
    description:
      'A per-token limit is reached (requests per second, open watches, blocked calls); `limit` names it; retry later (Retry-After).',
  },
  headers_too_large: { status: 431, description: 'The request line and headers together exceed 16 KiB.' },
  unsupported_media_type: { status: 415, description: 'The body has a content type this route does not take.' },
  unavailable: {
    status: 503,
    description: 'The store cannot be reached right now; retry, possibly on another server.',
  },
  closed: { status: 503, description: 'The server is shutting down.' },
  invalid_config: {
    status: 500,
    description:
      "The server's own configuration is invalid (reported when the server starts; a request should never see it).",
  },
  invalid_prefix: {
    status: 500,
    description: 'The configured etcd key prefix does not start with "/" (reported when the server starts).',
  },
  invalid_snapshot: {
    status: 400,
    description:
      'A snapshot file is corrupt, truncated or not a muster snapshot, or its target folder is in use (muster snapshot restore).',
  },
  snapshot_unsupported: {
    status: 501,
    description: 'The store has no muster snapshot (etcd): back it up with `etcdctl snapshot save FILE`.',
  },
  job_not_found: {
    status: 404,
    description: 'No job has this id (it never existed, or was pruned), or the node has no part in it.',
  },
  job_conflict: {
    status: 409,
    description: "A job report that the node's state does not expect (it was not asked to run yet).",
  },
  trigger_not_found: { status: 404, description: 'No trigger has this name.' },
  invalid_plan: {
    status: 400,
    description: 'A plan file breaks the plan format, or its steps\' "after" make a cycle; the message names the line.',
  },
  invalid_query: {
    status: 400,
    description: 'A node query (docs/queries.md) does not parse; the message names the position of the mistake.',
  },
  node_not_found: { status: 404, description: 'No node is registered under this name.' },
  plan_not_found: { status: 404, description: 'No plan has this id.' },
  group_not_found: { status: 404, description: 'No group has this name (muster group add NAME QUERY makes one).' },
  plan_conflict: {
    status: 409,
    description:
      'The plan is not in a state that allows this (resume a plan that is not paused, abort one that ended).',
  },
  internal: { status: 500, description: 'A bug: the server failed unexpectedly. The message is logged on the server.' },
} as const satisfies Record<string, CatalogueEntry>;

export type ErrorCode = keyof typeof errorCatalogue;

export function isCatalogued(code: string): code is ErrorCode {
  return Object.prototype.hasOwnProperty.call(errorCatalogue, code);
}
