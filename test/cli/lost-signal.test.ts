import { describe, expect, it } from 'vitest';
import type { MusterClient } from '../../src/client/muster-client.js';
import type { Session } from '../../src/client/session.js';
import type { WatchEvent } from '../../src/core/backend.js';
import { CompactedError } from '../../src/core/errors.js';
import { LostError } from '../../src/cli/exit-codes.js';
import { lostSignal } from '../../src/cli/supervise.js';

/** A session that stays alive, and a client whose watch of the held key does what `events` does. */
function fakes(events: (signal: AbortSignal) => AsyncIterable<WatchEvent>): { client: MusterClient; session: Session } {
  const session = { lost: new AbortController().signal, lostReason: null } as unknown as Session;
  const client = {
    watch: (_key: string, options: { signal: AbortSignal }) => events(options.signal),
  } as unknown as MusterClient;
  return { client, session };
}

async function settle(): Promise<void> {
  for (let i = 0; i < 5; i++) await new Promise((resolve) => setImmediate(resolve));
}

describe('lostSignal: anything that cannot tell whether a lock is held counts it as lost', () => {
  it('a watch that fails (its resume point compacted) makes the hold lost, naming why', async () => {
    const { client, session } = fakes(async function* () {
      await Promise.resolve();
      throw new CompactedError(5, 9);
      yield* [];
    });
    const lost = lostSignal(client, session, '/muster/locks/x/waiters/1', 4, 'lock x');
    await settle();
    expect(lost.signal.aborted).toBe(true);
    expect(lost.signal.reason).toBeInstanceOf(LostError);
    expect(String((lost.signal.reason as Error).message)).toMatch(/cannot tell whether it is still held.*compacted/i);
    lost.dispose();
  });

  it('a watch that ends by itself makes the hold lost', async () => {
    const { client, session } = fakes(async function* () {
      await Promise.resolve();
      yield* [];
    });
    const lost = lostSignal(client, session, '/muster/locks/x/waiters/1', 4, 'lock x');
    await settle();
    expect(lost.signal.aborted).toBe(true);
    lost.dispose();
  });

  it('disposing (the hold ended normally) is not a loss', async () => {
    const { client, session } = fakes(async function* (signal) {
      await new Promise((resolve) => signal.addEventListener('abort', resolve, { once: true }));
      throw signal.reason;
      yield* [];
    });
    const lost = lostSignal(client, session, '/muster/locks/x/waiters/1', 4, 'lock x');
    await settle();
    lost.dispose();
    await settle();
    expect(lost.signal.aborted).toBe(false);
  });
});
