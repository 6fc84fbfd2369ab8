import type { Duty } from './duty-runner.js';

/** Where the server running the duties says so, and when it last did. */
export const DUTIES_LEADER_KEY = '/muster/duties/leader';

/**
 * Record which server runs the duties, and when it last ran them, in
 * `/muster/duties/leader` (`{server, token, at}`), through a write fenced by the
 * leadership: a deposed leader's late write is refused. Operators read it to see
 * who leads; a stale `at` means the duties are stuck.
 */
export function heartbeatDuty(options: { intervalMs?: number } = {}): Duty {
  return {
    name: 'heartbeat',
    intervalMs: options.intervalMs ?? 5_000,
    async run({ backend, fence, serverId, token, runtime }) {
      const value = JSON.stringify({ server: serverId, token, at: new Date(runtime.clock.now()).toISOString() });
      await backend.txn({
        compare: [fence],
        success: [{ type: 'put', key: DUTIES_LEADER_KEY, value: new TextEncoder().encode(value) }],
        failure: [],
      });
    },
  };
}
