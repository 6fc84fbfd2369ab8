/**
 * Noah's API on etcd: two muster servers on one etcd (one also on a --noah-listen
 * port), Noah's clients on either, one keyspace; concurrent writers that touch the
 * same shared records (a link, a tag) lose nothing; a TTL'd ephemeral expires on etcd's clock.
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { MusterServer } from '../../src/server/muster-server.js';
import { uniquePrefix } from '../conformance/harness.js';
import { startEtcd } from '../support/etcd-server.js';
import type { EtcdCluster } from '../support/etcd-server.js';
import { ID, NoahClient, TIME_, beMissing, matchShape, returnJson } from './noah-client.js';

let etcd: EtcdCluster;
let a: MusterServer;
let b: MusterServer;
beforeAll(async () => {
  etcd = await startEtcd();
  const store = { kind: 'etcd' as const, endpoints: etcd.endpoints, prefix: uniquePrefix() };
  a = await MusterServer.start({
    store,
    port: 0,
    noahListen: { host: '127.0.0.1', port: 0 },
    auth: 'off',
    logger: false,
  });
  b = await MusterServer.start({ store, port: 0, auth: 'off', logger: false });
}, 60_000);
afterAll(async () => {
  await a?.stop();
  await b?.stop();
  await etcd?.stop();
});

describe('Noah on etcd, two servers', () => {
  test("the talk's examples across servers: written on the Noah port of one, read on the other", async () => {
    const noahA = new NoahClient(a.noahUrl!);
    const noahB = new NoahClient(b.url);
    const put = returnJson(await noahA.put('/applications/fooapp', '{"name":"fooapp"}'));
    matchShape(put, { result: 'success', id: ID, action: 'create', name: 'fooapp' });
    expect(returnJson(await noahB.put('/applications/fooapp', '{"name":"fooapp"}')).action).toBe('update');
    matchShape(returnJson(await noahB.get('/applications/fooapp')), {
      id: put.id,
      tags: [],
      links: [],
      name: 'fooapp',
      created_at: TIME_,
      updated_at: TIME_,
      configurations: {},
    });
    matchShape(returnJson(await noahA.put('/ephemerals/chef/notify/localhost', '1')), {
      action: 'create',
      result: 'success',
      id: ID,
      path: '/chef/notify/localhost',
      data: '1',
      created_at: TIME_,
      updated_at: TIME_,
    });
    expect((await noahB.get('/ephemerals/chef/notify/localhost')).text).toBe('1');
    const kv = await fetch(`${b.url}/v1/kv/ephemerals/chef/notify/localhost`);
    expect(await kv.text()).toBe('1');
  });

  test('40 services on 2 servers linked and tagged at once: every one is in the link and the tag', async () => {
    const clients = [new NoahClient(a.url), new NoahClient(b.url)];
    await Promise.all(
      Array.from({ length: 40 }, async (_, i) => {
        const noah = clients[i % 2]!;
        expect((await noah.put(`/services/svc/h${i}`, '{"status":"up","host_status":"up"}')).status).toBe(200);
        expect((await noah.put(`/services/svc/h${i}/link`, '{"link_name":"/farm"}')).status).toBe(200);
        expect((await noah.put(`/hosts/h${i}/tag`, '{"tags":["farm"]}')).status).toBe(200);
      }),
    );
    const link = returnJson<{ services: { svc: Record<string, unknown> } }>(await clients[0]!.get('/farm'));
    expect(Object.keys(link.services.svc).length).toBe(40);
    const tag = returnJson<{ farm: { hosts: Record<string, unknown> } }>(await clients[1]!.get('/tags/farm'));
    expect(Object.keys(tag.farm.hosts).length).toBe(40);
    expect(returnJson(await clients[1]!.delete('/services/svc')).affected_hosts).toBe(40);
    const after = returnJson<{ services: Record<string, unknown> }>(await clients[0]!.get('/farm'));
    expect(after.services).toEqual({});
  });

  test("an ephemeral with ?ttl=1s is gone after its lease ends (etcd's clock)", async () => {
    const noah = new NoahClient(a.url);
    expect(returnJson(await noah.put('/ephemerals/short/lived?ttl=1s', 'x')).ttl).toBe(1);
    expect((await new NoahClient(b.url).get('/ephemerals/short/lived')).text).toBe('x');
    await expect
      .poll(async () => (await noah.get('/ephemerals/short/lived')).status, { timeout: 10_000, interval: 250 })
      .toBe(404);
    beMissing(await new NoahClient(b.url).get('/ephemerals/short/lived'));
  });
});
