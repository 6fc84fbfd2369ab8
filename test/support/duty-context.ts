import type { Backend } from '../../src/core/backend.js';
import type { Runtime } from '../../src/core/runtime.js';
import type { DutyContext } from '../../src/server/duties/duty-runner.js';

/** A duty's context as the duty runner makes it, leading for good: its fence always holds. */
export function leadingContext(backend: Backend, runtime: Runtime): DutyContext {
  return {
    backend,
    signal: new AbortController().signal,
    fence: { key: '/no/such/key', target: 'version', op: '=', value: 0 },
    serverId: 'test',
    token: 1,
    runtime,
  };
}
