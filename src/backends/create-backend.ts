import type { Backend } from '../core/backend.js';
import type { Clock } from '../core/clock.js';

/** Which store a server runs on. */
export type BackendConfig =
  | {
      readonly kind: 'sqlite';
      /** A folder for the database file, or ":memory:" for a throwaway in-memory store. */
      readonly dataDir: string;
      /** Revisions of history kept for watch and range-at-revision. @default 100000 */
      readonly retention?: number;
      readonly clock?: Clock;
    }
  | {
      readonly kind: 'etcd';
      readonly endpoints: readonly string[];
      /** Every muster key lives under this etcd prefix. @default "/muster/" */
      readonly prefix?: string;
      readonly tls?: { readonly ca?: string; readonly cert?: string; readonly key?: string };
    };

/** Open the backend a config names. The only place that chooses between SQLite and etcd. */
export async function createBackend(config: BackendConfig): Promise<Backend> {
  if (config.kind === 'sqlite') {
    const { SqliteBackend } = await import('./sqlite/sqlite-backend.js');
    return SqliteBackend.open(config);
  }
  const { EtcdBackend } = await import('./etcd/etcd-backend.js');
  return EtcdBackend.open(config);
}
