import { HookDeliverer } from '../../hooks/hook-deliverer.js';
import type { HookDeliveryOptions } from '../../hooks/hook-deliverer.js';
import type { Duty } from './duty-runner.js';

/**
 * Webhook delivery (src/hooks/hook-deliverer.ts) as a duty: one run lasts as long
 * as the leadership (each hook has its own loop inside it) and starts again after
 * a failure.
 */
export function hookDeliveryDuty(options: HookDeliveryOptions & { restartMs?: number } = {}): Duty {
  return {
    name: 'hooks',
    intervalMs: options.restartMs ?? 1000,
    async run(context) {
      await new HookDeliverer(context, options).run();
    },
  };
}
