import { describe, expect, it } from 'vitest';
import { TXNS_IN_FLIGHT, inFlightTogether } from '../../src/jobs/job-scheduler.js';

/** A fake txn function: answers after `ms` (item `bad` fails as `how` says), counting what is in flight. */
function fakeTxns(bad: number, how: 'throws' | 'refused') {
  const seen = { inFlight: 0, started: [] as number[], startedAfterFailure: 0, failed: false };
  const txn = async (item: number): Promise<boolean> => {
    seen.started.push(item);
    if (seen.failed) seen.startedAfterFailure++;
    seen.inFlight++;
    try {
      await new Promise((resolve) => setTimeout(resolve, item === bad ? 1 : 20));
      if (item === bad) {
        seen.failed = true;
        if (how === 'throws') throw new Error('the store went away');
        return false;
      }
      return true;
    } finally {
      seen.inFlight--;
    }
  };
  return { seen, txn };
}

const items = Array.from({ length: 5 * TXNS_IN_FLIGHT }, (_, i) => i);

describe('txns in flight together (the scheduler writes)', () => {
  it('all succeed: every item, results in order', async () => {
    const { seen, txn } = fakeTxns(-1, 'refused');
    const results = await inFlightTogether(
      items,
      async (i) => ((await txn(i)) ? i * 2 : -1),
      (r) => r >= 0,
    );
    expect(results).toEqual(items.map((i) => i * 2));
    expect(seen.started.length).toBe(items.length);
  });

  it('after a txn throws: takes no further item and rethrows only once nothing is in flight', async () => {
    const { seen, txn } = fakeTxns(2, 'throws');
    const error = await inFlightTogether(items, txn, Boolean).catch((e: unknown) => e);
    expect((error as Error).message).toBe('the store went away');
    // Nothing still writing behind the caller's back (the duty restarts after this).
    expect(seen.inFlight).toBe(0);
    expect(seen.startedAfterFailure).toBe(0);
    expect(seen.started.length).toBe(TXNS_IN_FLIGHT);
    // Nor later.
    await new Promise((resolve) => setTimeout(resolve, 60));
    expect(seen.started.length).toBe(TXNS_IN_FLIGHT);
  });

  it('after a txn is refused (fence or compare lost): sends no more and answers null once all settled', async () => {
    const { seen, txn } = fakeTxns(2, 'refused');
    const results = await inFlightTogether(items, txn, Boolean);
    expect(results).toBeNull();
    expect(seen.inFlight).toBe(0);
    expect(seen.startedAfterFailure).toBe(0);
    expect(seen.started.length).toBe(TXNS_IN_FLIGHT);
  });
});
