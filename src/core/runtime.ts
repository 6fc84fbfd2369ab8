import type { Clock } from './clock.js';
import { ManualClock, systemClock } from './clock.js';

/**
 * Time and randomness, passed end to end (store, primitives, duties, server,
 * client retries), so that a whole server can run on a virtual clock with
 * reproducible randomness: tests drive it, and the simulator runs a fleet on it.
 */
export interface Runtime {
  readonly clock: Clock;
  /** A number in [0, 1), as Math.random gives. */
  readonly random: () => number;
}

/** The real clock and Math.random. */
export const systemRuntime: Runtime = { clock: systemClock, random: Math.random };

/**
 * A small, fast, seedable generator (mulberry32): the same seed gives the same
 * sequence, so a failing run can be replayed.
 */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A runtime on a ManualClock and a seeded generator, for tests and the simulator. */
export function virtualRuntime(seed = 1, start?: number): Runtime & { readonly clock: ManualClock } {
  return { clock: new ManualClock(start), random: seededRandom(seed) };
}
