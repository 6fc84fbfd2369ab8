import { KeyNotFoundError } from '../../src/core/errors.js';
import type { LockImpl } from '../../src/sim/sim-node.js';

/**
 * A deliberately broken lock, for tests only: it checks whether the lock key
 * exists and then writes it, in two requests instead of one transaction, so two
 * nodes that check between each other's steps both "hold" it. The simulator's
 * checker must report that.
 */
export const faultyLock: LockImpl = {
  async acquire(client, name, lease, options) {
    const key = `/sim-faulty-locks/${name}`;
    for (;;) {
      options.signal.throwIfAborted();
      const current = await client.get(key, { signal: options.signal }).catch((error: unknown) => {
        if (error instanceof KeyNotFoundError) return null;
        throw error;
      });
      if (current === null) {
        // The bug: another node may have written the key since the get.
        const put = await client.put(key, String(lease), { lease, signal: options.signal });
        return { key, token: put.revision };
      }
      await client.waitForChange(key, current.modRevision, options.timeoutMs, { signal: options.signal });
    }
  },
  async release(client, _name, held, options) {
    await client.delete(held.key, { signal: options.signal });
  },
};
