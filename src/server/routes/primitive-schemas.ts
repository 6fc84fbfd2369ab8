/** JSON-schema pieces (TypeBox) shared by the primitives' routes. */
import Type from 'typebox';
import { WireLeaseId } from '../../api/wire.js';

export const nameParams = Type.Object(
  { name: Type.String({ minLength: 1, maxLength: 128 }) },
  { additionalProperties: false },
);

export const leaseIdSchema = WireLeaseId;
export const tokenSchema = Type.Integer({ minimum: 1, maximum: Number.MAX_SAFE_INTEGER });
export const holderKeySchema = Type.String({ minLength: 2, maxLength: 1024, pattern: '^/muster/' });

/** `{key, token}`: what release, resign and complete take to prove they hold something. */
export const heldBody = Type.Object({ key: holderKeySchema, token: tokenSchema }, { additionalProperties: false });
