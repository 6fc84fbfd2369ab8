/**
 * Groups (named node queries), each group's desired state, and what each node
 * reports it is. All in the keyspace, so every server and every watcher sees the
 * same: a node that joins or comes back reads its group's desired state and
 * converges to it without a plan's help.
 */
import type { Backend, Compare, TxnOp } from '../core/backend.js';
import type { ErrorCode } from '../core/error-catalogue.js';
import { MusterError } from '../core/errors.js';
import type { Clock } from '../core/clock.js';
import type { NodeDirectory } from '../jobs/node-directory.js';
import type { ActualState, Desired, DesiredValue, Group, GroupStatus, Rollout } from './plan-model.js';
import { GROUPS_PREFIX, decodeJson, effectiveDesired, encodeJson, planKeys } from './plan-model.js';
import { FencedOutError, holds } from '../server/duties/duty-runner.js';

export class GroupNotFoundError extends MusterError {
  readonly code: ErrorCode = 'group_not_found';
  constructor(readonly group: string) {
    super(`no group is named ${JSON.stringify(group)} (muster group add ${group} QUERY makes one)`);
  }
}

export class FleetState {
  constructor(
    private readonly backend: Backend,
    private readonly clock: Clock,
    private readonly directory: NodeDirectory,
  ) {}

  private iso(): string {
    return new Date(this.clock.now()).toISOString();
  }

  /** Make or change a group; the query is checked by matching it once. */
  async putGroup(name: string, query: string): Promise<Group> {
    await this.directory.match(query);
    const existing = await this.getGroup(name);
    const group: Group = { name, query, createdAt: existing?.createdAt ?? this.iso() };
    await this.backend.put(planKeys.group(name), encodeJson(group));
    return group;
  }

  async getGroup(name: string): Promise<Group | null> {
    const kv = await this.backend.get(planKeys.group(name));
    return kv ? decodeJson<Group>(kv.value) : null;
  }

  async requireGroup(name: string): Promise<Group> {
    const group = await this.getGroup(name);
    if (!group) throw new GroupNotFoundError(name);
    return group;
  }

  async listGroups(): Promise<Group[]> {
    const range = await this.backend.range({ key: GROUPS_PREFIX, prefix: true });
    return range.kvs.map((kv) => decodeJson<Group>(kv.value));
  }

  /** Remove a group (its desired state with it); false when there was none. */
  async removeGroup(name: string): Promise<boolean> {
    const result = await this.backend.txn({
      compare: [],
      success: [
        { type: 'delete', key: planKeys.group(name) },
        { type: 'delete', key: planKeys.desired(name) },
      ],
      failure: [],
    });
    const first = result.results[0];
    return first?.type === 'delete' && first.deleted > 0;
  }

  async getDesired(group: string): Promise<Desired | null> {
    const kv = await this.backend.get(planKeys.desired(group));
    return kv ? decodeJson<Desired>(kv.value) : null;
  }

  /**
   * Set a group's desired state, keeping the one before it as `previous`; with
   * `fence`, only while the caller (a plan's duty) still leads.
   */
  async setDesired(
    group: string,
    value: DesiredValue,
    setBy: string,
    fence?: Compare,
    rollout?: Rollout,
  ): Promise<Desired> {
    await this.requireGroup(group);
    for (;;) {
      const kv = await this.backend.get(planKeys.desired(group));
      const current = kv ? decodeJson<Desired>(kv.value) : null;
      const next: Desired = {
        group,
        ...value,
        setAt: this.iso(),
        setBy,
        previous: current ? { state: current.state, version: current.version, params: current.params } : null,
        ...(rollout ? { rollout } : {}),
      };
      const result = await this.backend.txn({
        compare: [
          { key: planKeys.desired(group), target: 'modRevision', op: '=', value: kv?.modRevision ?? 0 },
          ...(fence ? [fence] : []),
        ],
        success: [{ type: 'put', key: planKeys.desired(group), value: encodeJson(next) }],
        failure: [],
      });
      if (result.succeeded) return next;
      if (fence && !(await holds(this.backend, fence))) throw new FencedOutError('setting a desired state');
    }
  }

  /**
   * Change the rollout of a plan's step on the group's desired state: add
   * released nodes, or end it (`nodes` null: every node is to be in it now).
   * Nothing when the desired state is no longer the plan's.
   */
  async updateRollout(group: string, plan: string, nodes: readonly string[] | null, fence: Compare): Promise<void> {
    for (;;) {
      const kv = await this.backend.get(planKeys.desired(group));
      const current = kv ? decodeJson<Desired>(kv.value) : null;
      if (!kv || !current?.rollout || current.rollout.plan !== plan) return;
      const next: Desired = {
        ...current,
        rollout:
          nodes === null
            ? null
            : { ...current.rollout, released: [...new Set([...current.rollout.released, ...nodes])] },
      };
      const result = await this.backend.txn({
        compare: [{ key: planKeys.desired(group), target: 'modRevision', op: '=', value: kv.modRevision }, fence],
        success: [{ type: 'put', key: planKeys.desired(group), value: encodeJson(next) }],
        failure: [],
      });
      if (result.succeeded) return;
      if (!(await holds(this.backend, fence))) throw new FencedOutError('releasing nodes');
    }
  }

  /** Put back what a plan replaced: `value` null removes the desired state. */
  async restoreDesired(group: string, value: DesiredValue | null, setBy: string, fence: Compare): Promise<void> {
    if (value !== null) {
      await this.setDesired(group, value, setBy, fence);
      return;
    }
    const op: TxnOp = { type: 'delete', key: planKeys.desired(group) };
    await this.backend.txn({ compare: [fence], success: [op], failure: [] });
  }

  /** A node reports what it is (`muster state report`). */
  async report(group: string, node: string, state: string, version: string | null): Promise<ActualState> {
    const actual: ActualState = { node, group, state, version, at: this.iso() };
    await this.backend.put(planKeys.actual(node, group), encodeJson(actual));
    return actual;
  }

  async actual(group: string, node: string): Promise<ActualState | null> {
    const kv = await this.backend.get(planKeys.actual(node, group));
    return kv ? decodeJson<ActualState>(kv.value) : null;
  }

  /** Desired against actual, node by node, for the group's nodes now. */
  async status(groupName: string): Promise<GroupStatus> {
    const group = await this.requireGroup(groupName);
    const desired = await this.getDesired(groupName);
    const nodes = (await this.directory.match(group.query)).sort((a, b) => a.name.localeCompare(b.name));
    const rows = await Promise.all(
      nodes.map(async (n) => {
        const actual = await this.actual(groupName, n.name);
        return {
          node: n.name,
          up: n.up,
          state: actual?.state ?? null,
          version: actual?.version ?? null,
          at: actual?.at ?? null,
          converged: converged(actual, effectiveDesired(desired, n.name)),
        };
      }),
    );
    return { group: groupName, query: group.query, desired, nodes: rows };
  }
}

/** A node's report matches the desired state (its version too, when the desired state has one). */
export function converged(
  actual: Pick<ActualState, 'state' | 'version'> | null,
  desired: Pick<DesiredValue, 'state' | 'version'> | null,
  until?: string | null,
): boolean {
  if (!actual || !desired) return false;
  const state = until ?? desired.state;
  return actual.state === state && (desired.version === null || actual.version === desired.version);
}
