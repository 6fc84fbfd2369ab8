// Names are checked in core so that the CLI can check them without the primitives.
export { validateName } from '../core/key-path.js';

/**
 * Where each primitive keeps its keys. Everything lives under `/muster/`, one
 * folder per primitive and one per name, so the security model can grant a
 * cluster access to one election's folder and nothing else.
 */
export const layout = {
  lockWaiters: (name: string) => `/muster/locks/${name}/waiters/`,
  /**
   * Holders with a lock-delay, one key each (`<prefix><token>`), deleted with the
   * holder key on release: one left behind by a holder that is gone means that
   * holder was lost, and the lock waits out its delay.
   */
  lockDelays: (name: string) => `/muster/locks/${name}/delays/`,
  semaphoreWaiters: (name: string) => `/muster/semaphores/${name}/`,
  electionCandidates: (name: string) => `/muster/elections/${name}/candidates/`,
  /** Data the leader publishes for the members (a join token, an address). */
  electionData: (name: string) => `/muster/elections/${name}/data/`,
  barrierWaiters: (name: string) => `/muster/barriers/${name}/waiters/`,
  barrierReady: (name: string) => `/muster/barriers/${name}/ready`,
  onceRunners: (name: string) => `/muster/once/${name}/runners/`,
  onceResult: (name: string) => `/muster/once/${name}/result`,
} as const;
