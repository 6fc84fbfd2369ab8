/** JSON-schema pieces shared by the primitives' routes. */
import { LEASE_ID_PATTERN } from '../../core/backend.js';

export const nameParams = {
  type: 'object',
  required: ['name'],
  additionalProperties: false,
  properties: { name: { type: 'string', minLength: 1, maxLength: 128 } },
} as const;

export const leaseIdSchema = { type: 'string', pattern: LEASE_ID_PATTERN.source } as const;
export const tokenSchema = { type: 'integer', minimum: 1, maximum: Number.MAX_SAFE_INTEGER } as const;
export const holderKeySchema = { type: 'string', minLength: 2, maxLength: 1024, pattern: '^/muster/' } as const;

/** `{key, token}`: what release, resign and complete take to prove they hold something. */
export const heldBody = {
  type: 'object',
  required: ['key', 'token'],
  additionalProperties: false,
  properties: { key: holderKeySchema, token: tokenSchema },
} as const;

export const holderSchema = {
  type: 'object',
  properties: { key: { type: 'string' }, token: { type: 'integer' }, lease: { type: ['string', 'null'] } },
} as const;
