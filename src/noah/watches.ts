/**
 * Noah's watches (`PUT /watches`, `GET /watches[/:name]`, `DELETE /watches`,
 * `PUT /<type>/<name>/watch`) as muster webhooks with Noah's body format: a
 * pattern `//noah/ephemerals/x` is a hook on the prefix `/ephemerals/x`. The
 * watcher as Noah showed it (`{id,pattern,name,endpoint,created_at,updated_at}`)
 * is kept beside the hook, in `/muster/noah/watchers/<hook name>`.
 */
import { createHash, randomUUID } from 'node:crypto';
import type { Backend } from '../core/backend.js';
import type { Clock } from '../core/clock.js';
import { InvalidArgumentError } from '../core/errors.js';
import { validatePrefix } from '../core/key-path.js';
import { HookExistsError, HookNotFoundError } from '../hooks/hook-model.js';
import { HookStore } from '../hooks/hook-store.js';
import { NoahError } from './store.js';
import './noah-format.js';

export const WATCHERS_PREFIX = '/muster/noah/watchers/';

export interface NoahWatcher {
  id: string;
  pattern: string;
  name: string;
  endpoint: string;
  created_at: string;
  updated_at: string;
}

/** Noah's watch name: Base64 of `pattern|endpoint`, newlines stripped. */
export function watchName(pattern: string, endpoint: string): string {
  return Buffer.from(`${pattern}|${endpoint}`, 'utf8').toString('base64');
}

/** The muster hook behind a Noah watch (hook names are letters, digits and "-"). */
export function hookNameOf(name: string): string {
  return `noah-${createHash('sha256').update(name).digest('hex').slice(0, 40)}`;
}

/** `//noah/ephemerals/x` → `/ephemerals/x`; `//noah` and `//noah/` → `/`. */
export function prefixOfPattern(pattern: string): string {
  if (pattern !== '//noah' && !pattern.startsWith('//noah/')) {
    throw new NoahError(400, 'Pattern must start with //noah/');
  }
  const prefix = pattern.slice('//noah'.length) || '/';
  try {
    return validatePrefix(prefix);
  } catch (error) {
    throw new NoahError(400, `Invalid pattern: ${(error as Error).message}`);
  }
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const stamp = (clock: Clock) =>
  new Date(clock.now())
    .toISOString()
    .replace('T', ' ')
    .replace(/\.\d+Z$/, ' UTC');

export class NoahWatches {
  private readonly hooks: HookStore;

  constructor(
    private readonly backend: Backend,
    private readonly clock: Clock,
  ) {
    this.hooks = new HookStore(backend, clock);
  }

  async list(): Promise<NoahWatcher[]> {
    const range = await this.backend.range({ key: WATCHERS_PREFIX, prefix: true });
    return range.kvs
      .map((kv) => JSON.parse(decoder.decode(kv.value)) as NoahWatcher)
      .sort((a, b) => (a.pattern < b.pattern ? -1 : a.pattern > b.pattern ? 1 : 0));
  }

  async byName(name: string): Promise<NoahWatcher | null> {
    const kv = await this.backend.get(`${WATCHERS_PREFIX}${hookNameOf(name)}`);
    return kv ? (JSON.parse(decoder.decode(kv.value)) as NoahWatcher) : null;
  }

  /** Noah's checks (among watches of the same endpoint), then a hook with Noah's format. */
  async create(pattern: string, endpoint: string, createdBy: string): Promise<NoahWatcher> {
    const prefix = prefixOfPattern(pattern);
    const same = (await this.list()).filter((w) => w.endpoint === endpoint);
    if (same.some((w) => w.pattern === pattern)) throw new NoahError(400, 'Record already exists');
    if (same.some((w) => pattern.startsWith(w.pattern))) throw new NoahError(400, 'Pattern is already provided');
    if (same.some((w) => w.pattern.startsWith(pattern))) throw new NoahError(400, 'Pattern would overwrite existing');
    const name = watchName(pattern, endpoint);
    const hook = hookNameOf(name);
    const now = stamp(this.clock);
    const watcher: NoahWatcher = { id: randomUUID(), pattern, name, endpoint, created_at: now, updated_at: now };
    try {
      await this.hooks.add({ name: hook, prefix, url: endpoint, format: 'noah' }, createdBy, [
        { type: 'put', key: `${WATCHERS_PREFIX}${hook}`, value: encoder.encode(JSON.stringify(watcher)) },
      ]);
    } catch (error) {
      if (error instanceof HookExistsError) throw new NoahError(400, 'Record already exists');
      if (error instanceof InvalidArgumentError && error.code === 'invalid_url') {
        throw new NoahError(400, `Invalid endpoint: ${error.message.replace(/^invalid url:?\s*/, '')}`);
      }
      throw error;
    }
    return watcher;
  }

  /** Remove the watch of this pattern and endpoint; null when there is none. */
  async remove(pattern: string, endpoint: string): Promise<NoahWatcher | null> {
    const name = watchName(pattern, endpoint);
    const watcher = await this.byName(name);
    if (!watcher) return null;
    const hook = hookNameOf(name);
    try {
      await this.hooks.remove(hook, [{ type: 'delete', key: `${WATCHERS_PREFIX}${hook}` }]);
    } catch (error) {
      if (error instanceof HookNotFoundError) return null;
      throw error;
    }
    return watcher;
  }
}
