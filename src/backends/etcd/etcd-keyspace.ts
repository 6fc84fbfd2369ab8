import type { IKeyValue } from 'etcd3';
import type { KeyValue, LeaseId } from '../../core/backend.js';
import { LEASE_ID_PATTERN } from '../../core/backend.js';
import { InvalidArgumentError } from '../../core/errors.js';

/**
 * Where muster's keys live inside etcd: muster key `/a/b` is etcd key
 * `<base>/a/b`, where `base` is the configured prefix without its trailing slash
 * (`/muster/` → `/muster`). Every key muster writes starts with `/`, so nothing
 * muster stores can fall outside `<base>/`.
 */
export class EtcdKeyspace {
  readonly base: string;

  constructor(prefix: string) {
    if (prefix !== '' && !prefix.startsWith('/')) {
      throw new InvalidArgumentError(
        `etcd prefix must start with "/", got ${JSON.stringify(prefix)}`,
        'invalid_prefix',
      );
    }
    this.base = prefix.replace(/\/+$/, '');
  }

  /** The etcd key of a muster key. */
  key(key: string): Buffer {
    return Buffer.from(this.base + key, 'utf8');
  }

  /** `key` and `range_end` of an etcd range: one key, or every key starting with `key`. */
  range(key: string, prefix: boolean): { key: Buffer; range_end?: Buffer } {
    const start = this.key(key);
    return prefix ? { key: start, range_end: prefixEnd(start) } : { key: start };
  }

  /** The muster key of an etcd key, or null if it lies outside this keyspace. */
  strip(etcdKey: Buffer): string | null {
    const key = etcdKey.toString('utf8');
    if (!key.startsWith(this.base + '/')) return null;
    return key.slice(this.base.length);
  }

  /** An etcd key no muster key can equal: reads of it only fetch the header revision. */
  probeKey(): Buffer {
    // `<base>` itself: every muster key is `<base>/…`, so this key is never written.
    return this.base === '' ? Buffer.from([0]) : Buffer.from(this.base, 'utf8');
  }

  /** A KeyValue from etcd's, with the prefix removed. */
  keyValue(kv: IKeyValue): KeyValue {
    return {
      key: this.strip(kv.key) ?? kv.key.toString('utf8'),
      value: new Uint8Array(kv.value.buffer, kv.value.byteOffset, kv.value.byteLength),
      createRevision: Number(kv.create_revision),
      modRevision: Number(kv.mod_revision),
      version: Number(kv.version),
      lease: leaseFromEtcd(kv.lease),
    };
  }
}

/** The smallest byte string greater than every string starting with `prefix` (etcd's rule). */
export function prefixEnd(prefix: Buffer): Buffer {
  const end = Buffer.from(prefix);
  for (let i = end.length - 1; i >= 0; i--) {
    if ((end[i] ?? 0xff) < 0xff) {
      end[i] = (end[i] ?? 0) + 1;
      return end.subarray(0, i + 1);
    }
  }
  // All 0xff: etcd reads "\0" as "to the end of the keyspace".
  return Buffer.from([0]);
}

/** etcd's decimal int64 lease id → muster's lowercase hex; "0" means no lease. */
export function leaseFromEtcd(id: string | number | undefined | null): LeaseId | null {
  if (id === undefined || id === null) return null;
  const value = BigInt(id);
  return value === 0n ? null : value.toString(16);
}

/**
 * muster's hex lease id → etcd's decimal string, or null when `id` cannot be a
 * lease id at all (such a lease never existed).
 */
export function leaseToEtcd(id: LeaseId): string | null {
  if (!LEASE_ID_PATTERN.test(id)) return null;
  const value = BigInt('0x' + id);
  return value === 0n || value >= 1n << 63n ? null : value.toString(10);
}
