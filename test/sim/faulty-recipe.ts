import type { DesiredValue } from '../../src/client/plan-types.js';
import type { RecipeImpl } from '../../src/sim/sim-agent.js';

/**
 * Deliberately wrong chef-client recipes, for tests only: the simulator's
 * checker must catch what they do to a release.
 */

/**
 * Reads the group's desired state instead of what its own node is to be in:
 * while a rolling step holds most nodes back, every node of the group moves to
 * the new state as soon as the step starts. The rolling batch invariant must
 * catch that.
 */
export const ignoresRollout: RecipeImpl = {
  async target(client, group, _node, options) {
    const desired = await client.getDesired(group, options);
    return desired ? { state: desired.state, version: desired.version, params: desired.params } : null;
  },
};

/**
 * Asks once per group and converges to that answer ever after: a node never
 * moves to a new desired state, so the plan's first step times out and its
 * nodes end up up but not in their desired state. The desired state invariant
 * must catch that.
 */
export function staleRecipe(): RecipeImpl {
  const cache = new Map<string, DesiredValue | null>();
  return {
    async target(client, group, node, options) {
      const key = `${group}/${node}`;
      if (!cache.has(key)) cache.set(key, await client.effectiveDesired(group, node, options));
      return cache.get(key) ?? null;
    },
  };
}
