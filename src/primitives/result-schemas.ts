/**
 * What the primitives answer, written once as JSON schemas (TypeBox) with the
 * types derived from them: the primitives return these types, their routes
 * serialize with these schemas (and the OpenAPI document shows them), and the
 * client reads its answers as these types.
 */
import Type from 'typebox';
import type { Static } from 'typebox';

const token = (description: string) => Type.Integer({ description });
const leaseOrNull = Type.Union([Type.String(), Type.Null()]);

/** Who holds a lock or a semaphore slot. */
export const Holder = Type.Object({
  key: Type.String(),
  token: token('The holder key’s createRevision'),
  lease: leaseOrNull,
});
export type Holder = Static<typeof Holder>;

/** A held lock: `key` and `token` prove it. */
export const LockHandle = Type.Object({
  name: Type.String(),
  key: Type.String({ description: 'The holder key, `/muster/locks/<name>/waiters/<lease>`' }),
  token: token(
    'The fencing token: the holder key’s createRevision, strictly increasing from one holder to the next. ' +
      'Guard writes with it (a txn comparing it) so a holder that lost the lock can never overwrite a newer ' +
      'holder’s work.',
  ),
  lease: Type.String(),
});
export type LockHandle = Static<typeof LockHandle>;

export const LockStatus = Type.Object({
  name: Type.String(),
  holder: Type.Union([Holder, Type.Null()]),
  waiting: Type.Integer({ description: 'Waiters behind the holder' }),
});
export type LockStatus = Static<typeof LockStatus>;

/** A held semaphore slot. */
export const SemaphoreHandle = Type.Object({
  name: Type.String(),
  key: Type.String(),
  token: token('The slot key’s createRevision'),
  lease: Type.String(),
  limit: Type.Integer(),
});
export type SemaphoreHandle = Static<typeof SemaphoreHandle>;

export const SemaphoreStatus = Type.Object({
  name: Type.String(),
  limit: Type.Union([Type.Integer(), Type.Null()], { description: 'Null when nobody holds or waits' }),
  holders: Type.Array(Holder),
  waiting: Type.Integer(),
});
export type SemaphoreStatus = Static<typeof SemaphoreStatus>;

/** A won election. */
export const Leadership = Type.Object({
  election: Type.String(),
  key: Type.String({ description: 'The candidate key, `/muster/elections/<name>/candidates/<lease>`' }),
  token: token('The candidate key’s createRevision: strictly increasing from leader to leader'),
  lease: Type.String(),
});
export type Leadership = Static<typeof Leadership>;

export const BarrierStatus = Type.Object({
  name: Type.String(),
  count: Type.Union([Type.Integer(), Type.Null()], {
    description: 'The count the participants asked for, or null when nobody is there',
  }),
  arrived: Type.Integer(),
  ready: Type.Boolean({
    description: 'True once the barrier has tripped (until it is reset, or the last participant leaves)',
  }),
});
export type BarrierStatus = Static<typeof BarrierStatus>;

/** What a once's runner recorded. */
export const OnceResult = Type.Object({
  exitCode: Type.Integer(),
  output: Type.String({ description: 'The tail of the command’s output (stdout and stderr interleaved)' }),
  runner: Type.String({ description: 'Who ran it (a hostname or any label the runner gave)' }),
  token: Type.Integer(),
  startedAt: Type.String(),
  finishedAt: Type.String(),
});
export type OnceResult = Static<typeof OnceResult>;

/** `role: runner`: run the command now, then complete; `role: done`: it ran, here is the result. */
export const OnceTurn = Type.Union([
  Type.Object({ role: Type.Enum(['runner']), key: Type.String(), token: Type.Integer(), startedAt: Type.String() }),
  Type.Object({ role: Type.Enum(['done']), result: OnceResult }),
]);
export type OnceTurn = Static<typeof OnceTurn>;

export const OnceStatus = Type.Object({
  name: Type.String(),
  state: Type.Enum(['idle', 'running', 'done']),
  result: Type.Union([OnceResult, Type.Null()]),
  runner: Type.Union([Type.Object({ key: Type.String(), token: Type.Integer() }), Type.Null()]),
  waiting: Type.Integer(),
});
export type OnceStatus = Static<typeof OnceStatus>;
