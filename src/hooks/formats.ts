/**
 * How one watch event becomes a webhook body. 'json' is muster's own; other
 * formats register here (Noah's watches register 'noah' in src/noah/).
 */
import type { Backend, WatchEvent } from '../core/backend.js';
import { encodeValue } from '../api/values.js';

export interface HookPayload {
  readonly contentType: string;
  readonly body: string;
}

/** Turns one event into a body, or null to skip it (not delivered, the cursor moves on). */
export type HookFormatter = (
  event: WatchEvent,
  context: { readonly backend: Backend; readonly hook: string; readonly index: number },
) => Promise<HookPayload | null> | HookPayload | null;

const formatters = new Map<string, HookFormatter>();

export function registerHookFormat(name: string, formatter: HookFormatter): void {
  formatters.set(name, formatter);
}

export function hookFormat(name: string): HookFormatter | undefined {
  return formatters.get(name);
}

export function hookFormatNames(): ReadonlySet<string> {
  return new Set(formatters.keys());
}

/**
 * muster's body: `{"hook","type","key","revision","index","value","encoding"?,
 * "version","createRevision","modRevision","lease"}` (value null on a delete).
 */
export const jsonFormat: HookFormatter = (event, { hook, index }) => {
  const { kv } = event;
  const value = event.type === 'delete' ? { value: null } : encodeValue(kv.value);
  return {
    contentType: 'application/json',
    body: JSON.stringify({
      hook,
      type: event.type,
      key: kv.key,
      revision: event.revision,
      index,
      ...value,
      version: kv.version,
      createRevision: kv.createRevision,
      modRevision: kv.modRevision,
      lease: kv.lease,
    }),
  };
};

registerHookFormat('json', jsonFormat);
