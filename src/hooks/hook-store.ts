/** Webhooks in the keyspace: add, list, show, deliveries, pause, resume, remove. */
import type { Backend, TxnOp } from '../core/backend.js';
import type { Clock } from '../core/clock.js';
import { validateName } from '../core/key-path.js';
import { hookFormatNames } from './formats.js';
import type { HookDef, HookDelivery, HookRequest, HookState, HookView } from './hook-model.js';
import {
  HOOKS_PREFIX,
  HookExistsError,
  HookNotFoundError,
  checkHookRequest,
  decodeJson,
  encodeJson,
  hookKeys,
  toDeliveries,
  toView,
} from './hook-model.js';

const encoder = new TextEncoder();

export class HookStore {
  constructor(
    private readonly backend: Backend,
    private readonly clock: Clock,
  ) {}

  /** Add a hook: changes from now on are delivered. Throws HookExistsError. */
  async add(request: HookRequest, createdBy: string, extra: readonly TxnOp[] = []): Promise<HookView> {
    const checked = checkHookRequest(request, hookFormatNames());
    const def: HookDef = {
      ...checked,
      createdBy,
      createdAt: new Date(this.clock.now()).toISOString(),
      paused: false,
      resumes: 0,
    };
    const head = await this.backend.revision();
    const state = initialState(head + 1);
    const result = await this.backend.txn({
      compare: [{ key: hookKeys.def(def.name), target: 'version', op: '=', value: 0 }],
      success: [
        { type: 'put', key: hookKeys.def(def.name), value: encodeJson(def) },
        { type: 'put', key: hookKeys.state(def.name), value: encodeJson(state) },
        ...(request.secret !== undefined
          ? [{ type: 'put' as const, key: hookKeys.secret(def.name), value: encoder.encode(request.secret) }]
          : []),
        ...extra,
      ],
      failure: [],
    });
    if (!result.succeeded) throw new HookExistsError(def.name);
    return toView(def, state);
  }

  async list(): Promise<HookView[]> {
    const range = await this.backend.range({ key: HOOKS_PREFIX, prefix: true });
    const defs = new Map<string, HookDef>();
    const states = new Map<string, HookState>();
    for (const kv of range.kvs) {
      const rest = kv.key.slice(HOOKS_PREFIX.length);
      const slash = rest.indexOf('/');
      const name = rest.slice(0, slash);
      const part = rest.slice(slash + 1);
      if (part === 'def') defs.set(name, decodeJson<HookDef>(kv.value));
      else if (part === 'state') states.set(name, decodeJson<HookState>(kv.value));
    }
    return [...defs.values()].map((def) => toView(def, states.get(def.name) ?? null));
  }

  async get(name: string): Promise<HookView> {
    const { def, state } = await this.read(name);
    return toView(def, state);
  }

  async deliveries(name: string): Promise<HookDelivery[]> {
    const { state } = await this.read(name);
    return toDeliveries(state);
  }

  async pause(name: string): Promise<HookView> {
    return this.control(name, (def) => ({ ...def, paused: true }));
  }

  /** Resume a hook paused by the API or after failing too long: delivery restarts from its cursor. */
  async resume(name: string): Promise<HookView> {
    return this.control(name, (def) => ({ ...def, paused: false, resumes: def.resumes + 1 }));
  }

  async remove(name: string, extra: readonly TxnOp[] = []): Promise<void> {
    validateName(name, 'hook name');
    const result = await this.backend.txn({
      compare: [{ key: hookKeys.def(name), target: 'version', op: '>', value: 0 }],
      success: [{ type: 'delete', key: `${HOOKS_PREFIX}${name}/`, prefix: true }, ...extra],
      failure: [],
    });
    if (!result.succeeded) throw new HookNotFoundError(name);
  }

  private async read(name: string): Promise<{ def: HookDef; state: HookState | null; modRevision: number }> {
    validateName(name, 'hook name');
    const range = await this.backend.range({ key: `${HOOKS_PREFIX}${name}/`, prefix: true });
    const defKv = range.kvs.find((kv) => kv.key === hookKeys.def(name));
    if (!defKv) throw new HookNotFoundError(name);
    const stateKv = range.kvs.find((kv) => kv.key === hookKeys.state(name));
    return {
      def: decodeJson<HookDef>(defKv.value),
      state: stateKv ? decodeJson<HookState>(stateKv.value) : null,
      modRevision: defKv.modRevision,
    };
  }

  /** Change `def` by compare-and-swap (retried when another change came first). */
  private async control(name: string, change: (def: HookDef) => HookDef): Promise<HookView> {
    for (;;) {
      const { def, state, modRevision } = await this.read(name);
      const next = change(def);
      const result = await this.backend.txn({
        compare: [{ key: hookKeys.def(name), target: 'modRevision', op: '=', value: modRevision }],
        success: [{ type: 'put', key: hookKeys.def(name), value: encodeJson(next) }],
        failure: [],
      });
      if (result.succeeded) return toView(next, state);
    }
  }
}

export function initialState(revision: number): HookState {
  return {
    cursor: { revision, next: 0 },
    status: 'active',
    failures: 0,
    failingSince: null,
    lastError: null,
    resumes: 0,
    missed: null,
    delivered: 0,
    log: [],
  };
}
