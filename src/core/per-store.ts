import type { Backend } from './backend.js';

/**
 * One value per store, made the first time it is asked for and dropped with the
 * store: what a server's parts share about one backend (caches of what was read
 * or written), without a global that outlives it.
 *
 * ```ts
 * const recent = perStore(() => new Map<string, StoredNode>());
 * recent(backend).get(key);
 * ```
 */
export function perStore<V>(make: () => V): (backend: Backend) => V {
  const values = new WeakMap<Backend, V>();
  return (backend) => {
    let value = values.get(backend);
    if (value === undefined) {
      value = make();
      values.set(backend, value);
    }
    return value;
  };
}
