import type { Backend } from '../core/backend.js';
import type { EtcdBackendOptions } from './etcd/etcd-backend.js';
import type { SqliteBackendOptions } from './sqlite/sqlite-backend.js';

/** Which store a server runs on, with that store's own options. */
export type BackendConfig =
  ({ readonly kind: 'sqlite' } & SqliteBackendOptions) | ({ readonly kind: 'etcd' } & EtcdBackendOptions);

/**
 * Open the backend a config names. The only place that chooses between SQLite
 * and etcd; each store's modules load only when it is chosen.
 */
export async function createBackend(config: BackendConfig): Promise<Backend> {
  if (config.kind === 'sqlite') {
    const { SqliteBackend } = await import('./sqlite/sqlite-backend.js');
    return SqliteBackend.open(config);
  }
  const { EtcdBackend } = await import('./etcd/etcd-backend.js');
  return EtcdBackend.open(config);
}
