/**
 * The backend conformance suite on a real etcd: one member for the whole suite,
 * and a fresh EtcdBackend under its own etcd prefix for every test, so tests
 * cannot see each other's keys. `advance` is a real sleep: etcd's leases run on
 * etcd's clock.
 *
 * Then what only etcd has: keys under the prefix, etcd's own lease ids, and
 * faults (etcd down, restarted), on a member of their own.
 */
import { Etcd3 } from 'etcd3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';

import { EtcdBackend } from '../src/backends/etcd/index.js';
import { BackendClosedError, BackendUnavailableError } from '../src/core/errors.js';
import { describeBackend } from './conformance/backend-suite.js';
import { WatchRecorder, bytes, eventually, rejection, text, uniquePrefix } from './conformance/harness.js';
import { etcdForFile } from './support/etcd-harness.js';
import { startEtcd } from './support/etcd-server.js';

const etcd = etcdForFile();
const testPrefix = uniquePrefix;

describeBackend('etcd', etcd.harness, { minLeaseTtl: 2, progress: false });

describe('EtcdBackend, what only etcd has', () => {
  let raw: Etcd3;

  beforeEach(() => {
    raw = new Etcd3({ hosts: etcd.cluster().endpoints });
  });

  afterEach(() => {
    raw.close();
  });

  it('stores muster key /a/b as <prefix>/a/b with etcd lease ids in hex, and reads only its own prefix', async () => {
    const prefix = testPrefix();
    const backend = await EtcdBackend.open({ endpoints: etcd.cluster().endpoints, prefix });
    try {
      const lease = await backend.grantLease(30);
      const { revision } = await backend.put('/a/b', bytes('v'), { lease: lease.id });
      await raw.put(prefix.slice(0, -1)).value('the prefix itself, no muster key');
      await raw.put(`${prefix.slice(0, -1)}z/c`).value('a neighbouring prefix');

      const stored = await raw.get(`${prefix}a/b`).exec();
      const kv = stored.kvs[0];
      expect(kv?.value.toString()).toBe('v');
      expect(Number(kv?.mod_revision)).toBe(revision);
      // etcdctl prints lease ids as hex; etcd3 reads them as decimal strings.
      expect(BigInt(kv?.lease ?? '0').toString(16)).toBe(lease.id);
      expect(lease.id).toMatch(/^[0-9a-f]+$/);

      const all = await backend.range({ key: '/', prefix: true });
      expect(all.kvs.map((k) => k.key)).toEqual(['/a/b']);
      expect((await backend.leaseInfo(lease.id)).keys).toEqual(['/a/b']);
      expect(await backend.revision()).toBe(Number((await raw.get('anything').exec()).header.revision));

      await backend.revokeLease(lease.id);
      expect(await raw.get(`${prefix}a/b`).string()).toBeNull();
    } finally {
      await backend.close();
    }
  });

  it('answers BackendUnavailableError within its deadline while etcd is down, and recovers by itself', async () => {
    const own = await startEtcd();
    const backend = await EtcdBackend.open({ endpoints: own.endpoints, prefix: testPrefix(), requestTimeoutMs: 1000 });
    try {
      await backend.put('/k', bytes('before'));
      const recorder = new WatchRecorder(backend.watch('/', { prefix: true }));
      await own.kill(0);

      const started = Date.now();
      await rejection(() => backend.get('/k'), BackendUnavailableError);
      await rejection(() => backend.put('/k', bytes('lost')), BackendUnavailableError);
      await rejection(() => backend.grantLease(5), BackendUnavailableError);
      expect(Date.now() - started).toBeLessThan(3 * 1000 + 1500);
      // The watch keeps trying for one deadline, then reports the loss.
      await recorder.waitForEnd(5000);
      expect(recorder.error).toBeInstanceOf(BackendUnavailableError);
      expect((recorder.error as BackendUnavailableError).retryable).toBe(true);

      await own.restart(0);
      const value = await eventually(async () => text((await backend.get('/k'))?.value ?? bytes('')), 15_000, 100);
      expect(value).toBe('before');
      await backend.put('/k', bytes('after'));
      expect(text((await backend.get('/k'))?.value ?? bytes(''))).toBe('after');
    } finally {
      await backend.close();
      await own.stop();
    }
  });

  it('keeps a watch across a short etcd restart, missing nothing and repeating nothing', async () => {
    const own = await startEtcd();
    const backend = await EtcdBackend.open({ endpoints: own.endpoints, prefix: testPrefix() });
    try {
      const recorder = new WatchRecorder(backend.watch('/w/', { prefix: true }));
      await backend.put('/w/1', bytes('1'));
      await recorder.waitForEvents(1);
      await own.kill(0);
      await own.restart(0);
      const second = await eventually(() => backend.put('/w/2', bytes('2')), 10_000, 100);
      await backend.put('/w/3', bytes('3'));
      const events = await recorder.waitForEvents(3);
      expect(events.map((e) => `${e.kv.key}=${text(e.kv.value)}`)).toEqual(['/w/1=1', '/w/2=2', '/w/3=3']);
      expect(events[1]?.revision).toBe(second.revision);
      expect(recorder.error).toBeUndefined();
      recorder.close();
      await recorder.waitForEnd();
      expect(recorder.events).toHaveLength(3);
    } finally {
      await backend.close();
      await own.stop();
    }
  });

  it('fails open watches and later calls with BackendClosedError once closed', async () => {
    const backend = await EtcdBackend.open({ endpoints: etcd.cluster().endpoints, prefix: testPrefix() });
    const recorder = new WatchRecorder(backend.watch('/', { prefix: true }));
    await backend.close();
    await recorder.waitForEnd();
    expect(recorder.error).toBeInstanceOf(BackendClosedError);
    await rejection(() => backend.get('/k'), BackendClosedError);
    expect(() => backend.watch('/')).toThrow(BackendClosedError);
  });

  it('refuses to open when no etcd answers, with BackendUnavailableError', async () => {
    const closedPort = `http://127.0.0.1:1`;
    await rejection(
      () => EtcdBackend.open({ endpoints: [closedPort], requestTimeoutMs: 500 }),
      BackendUnavailableError,
    );
  });
});
