/**
 * What Noah's API gains on muster: the keyspace shared with muster's own API, TTL'd
 * ephemerals, Basic credentials, a second port, 400s that change nothing; and the
 * seed talk's curl examples and the Chef cookbook's calls, sent as those clients sent them.
 */
import { afterEach, describe, expect, test } from 'vitest';
import { ManualClock } from '../../src/core/clock.js';
import { MusterServer } from '../../src/server/muster-server.js';
import { makeApp } from '../server/harness.js';
import type { TestApp } from '../server/harness.js';
import { ID, NoahClient, TIME_, beMissing, failure, matchShape, returnJson } from './noah-client.js';

let t: TestApp | null = null;
let server: MusterServer | null = null;
afterEach(async () => {
  await t?.close();
  await server?.stop();
  t = null;
  server = null;
});

async function start(options: Parameters<typeof makeApp>[0] = {}): Promise<NoahClient> {
  t = await makeApp(options);
  return new NoahClient(`http://127.0.0.1:${await t.listen()}`);
}
const basic = (token: string) => 'Basic ' + Buffer.from(`x:${token}`).toString('base64');

describe('the seed talk (Cross node orchestration with Chef and Noah)', () => {
  test('Data goes in / data comes out: curl -X PUT -d {"name":"fooapp"} /applications/fooapp', async () => {
    const noah = await start();
    // curl -d labels the body application/x-www-form-urlencoded.
    const put = returnJson(await noah.put('/applications/fooapp', '{"name":"fooapp"}'));
    matchShape(put, { result: 'success', id: ID, action: 'create', name: 'fooapp' });
    matchShape(returnJson(await noah.put('/applications/fooapp', '{"name":"fooapp"}')), {
      result: 'success',
      id: put.id,
      action: 'update',
      name: 'fooapp',
    });
    matchShape(returnJson(await noah.get('/applications/fooapp')), {
      id: put.id,
      tags: [],
      links: [],
      name: 'fooapp',
      created_at: TIME_,
      updated_at: TIME_,
      configurations: {},
    });
  });
  test('Watch example part 1 and "change that data": PUT /ephemerals/chef/notify/localhost -d 1, then -d 2', async () => {
    const noah = await start();
    const first = returnJson(await noah.put('/ephemerals/chef/notify/localhost', '1'));
    matchShape(first, {
      action: 'create',
      result: 'success',
      id: ID,
      path: '/chef/notify/localhost',
      data: '1',
      created_at: TIME_,
      updated_at: TIME_,
    });
    const second = returnJson(await noah.put('/ephemerals/chef/notify/localhost', '2'));
    expect(second).toMatchObject({ action: 'update', id: first.id, data: '2', created_at: first.created_at });
    expect((await noah.get('/ephemerals/chef/notify/localhost')).text).toBe('2');
  });
  test('noah_block paths: GET http://noah:5678/ephemerals/<role> returns the raw data to compare', async () => {
    const noah = await start();
    beMissing(await noah.get('/ephemerals/migration-status'));
    await noah.put('/ephemerals/migration-status', 'complete');
    const res = await noah.get('/ephemerals/migration-status');
    expect(res.status).toBe(200);
    expect(res.text).toBe('complete');
  });
});

describe('the Chef cookbook (lusis-cookbooks/noah), as Net::HTTP sent it', () => {
  test('noah::register, noah_host, noah_service, noah_application, noah_configuration, noah_ephemeral: create then delete', async () => {
    const noah = await start();
    // Every provider parses the answer and logs data["action"] on 200.
    const calls: [string, string, string | undefined, string][] = [
      ['PUT', '/hosts/node1', '{"status":"up"}', 'host'],
      ['PUT', '/ephemerals/chef/node1', undefined, 'create'],
      ['PUT', '/services/noah/node1', '{"status":"up","host_status":"up"}', 'create'],
      ['PUT', '/applications/noah', '{"name":"noah"}', 'create'],
      ['PUT', '/configurations/redis_url', '{"format":"string","body":"redis://localhost:6381/0"}', 'create'],
      ['PUT', '/ephemerals/backends', 'web1,web2', 'create'],
    ];
    for (const [method, path, body, action] of calls) {
      const res = await noah.send(method, path, body);
      expect(res.status, path).toBe(200);
      const parsed = res.json();
      if (action === 'host') expect(parsed.new_record).toBe(true);
      else expect(parsed.action, path).toBe(action);
    }
    const host = returnJson(await noah.get('/hosts/node1'));
    expect(host.services).toEqual({ noah: 'up' });
    // noah_get parses JSON, or returns the raw string.
    expect((await noah.get('/ephemerals/backends')).text).toBe('web1,web2');
    for (const path of [
      '/services/noah/node1',
      '/hosts/node1',
      '/applications/noah',
      '/configurations/redis_url',
      '/ephemerals/chef/node1',
      '/ephemerals/backends',
    ]) {
      const res = await noah.delete(path);
      expect(res.status, path).toBe(200);
    }
    beMissing(await noah.get('/hosts/node1'));
  });
});

describe("Noah's objects in muster's keyspace", () => {
  test('an ephemeral is the key /ephemerals/<path>, its metadata under /muster/noah/, written together', async () => {
    const noah = await start();
    const before = await t!.backend.revision();
    await noah.put('/ephemerals/foo/bar', 'hello');
    expect(await t!.backend.revision()).toBe(before + 1);
    const raw = await fetch(`${noah.base}/v1/kv/ephemerals/foo/bar`);
    expect(raw.status).toBe(200);
    expect(await raw.text()).toBe('hello');
    const meta = await t!.backend.get('/muster/noah/ephemerals/foo/bar');
    expect(JSON.parse(Buffer.from(meta!.value).toString())).toMatchObject({ path: '/foo/bar', tags: [], links: [] });
    // A muster write is what Noah's clients read.
    await fetch(`${noah.base}/v1/kv/ephemerals/foo/bar`, { method: 'PUT', body: 'from muster' });
    expect((await noah.get('/ephemerals/foo/bar')).text).toBe('from muster');
  });
  test('hosts, services, applications, configurations, links and tags have their keys', async () => {
    const noah = await start();
    await noah.put('/services/web/h1', '{"status":"up","host_status":"up"}');
    await noah.put('/applications/app/configurations/cfg', '{"format":"string","body":"b"}');
    await noah.put('/hosts/h1/link', '{"link_name":"/myorg"}');
    await noah.put('/hosts/h1/tag', '{"tags":"prod"}');
    const { kvs } = await t!.backend.range({ key: '/', prefix: true });
    const names = kvs.map((kv) => kv.key).filter((k) => !k.startsWith('/muster/'));
    expect(names.sort()).toEqual([
      '/applications/app',
      '/configurations/cfg',
      '/hosts/h1/record',
      '/links/myorg',
      '/services/web/h1',
      '/tags/prod',
    ]);
    const host = JSON.parse(Buffer.from((await t!.backend.get('/hosts/h1/record'))!.value).toString());
    expect(host).toMatchObject({ name: 'h1', status: 'up', tags: ['prod'], links: ['/myorg'] });
  });
  test('an ephemeral with ?ttl=30s vanishes with its lease (virtual clock)', async () => {
    const clock = new ManualClock(Date.parse('2026-01-01T00:00:00Z'));
    const noah = await start({ clock });
    const res = returnJson(await noah.put('/ephemerals/lock/holder?ttl=30s', 'node1'));
    expect(res).toMatchObject({ action: 'create', data: 'node1', path: '/lock/holder', ttl: 30 });
    const kv = await t!.backend.get('/ephemerals/lock/holder');
    expect(kv?.lease).toBe(res.lease);
    expect((await t!.backend.get('/muster/noah/ephemerals/lock/holder'))?.lease).toBe(res.lease);
    clock.advance(29_000);
    expect((await noah.get('/ephemerals/lock/holder')).text).toBe('node1');
    clock.advance(2_000);
    await expect.poll(async () => (await noah.get('/ephemerals/lock/holder')).status).toBe(404);
    expect(await t!.backend.get('/muster/noah/ephemerals/lock/holder')).toBeNull();
  });
  test('a bad ttl is a 400 and writes nothing', async () => {
    const noah = await start();
    const before = await t!.backend.revision();
    for (const ttl of ['soon', '0s', '2d']) {
      const res = await noah.put(`/ephemerals/x?ttl=${ttl}`, 'v');
      expect(res.status, ttl).toBe(400);
      expect(returnJson(res).result).toBe('failure');
    }
    expect(await t!.backend.revision()).toBe(before);
  });
});

describe('bad input: 400 with Noah failure body, nothing written', () => {
  const cases: [string, string, string | undefined, string | RegExp][] = [
    ['PUT', '/hosts/h1', 'not json', /^Invalid JSON body/],
    ['PUT', '/hosts/h1', '', /^Invalid JSON body/],
    ['PUT', '/hosts/h1', '{"status":"up","extra":1}', 'Missing Parameters'],
    ['PUT', '/hosts/h1', '["up"]', 'Missing Parameters'],
    ['PUT', '/hosts/h1', '{"status":"sideways"}', 'Status must be up, down or pending'],
    ['PUT', '/services/s/h', '{"status":"up"}', 'Missing Parameters'],
    ['PUT', '/applications/a', '{"name":"b"}', 'Missing Parameters'],
    ['PUT', '/configurations/c', '{"format":"string","body":{"x":1}}', 'Body attribute missing'],
    ['PUT', '/ephemerals/noah/x', 'v', 'Path is reserved'],
    ['PUT', '/ephemerals/a/%01/b', 'v', /control character/],
    ['PUT', '/hosts/h1/tag', '{"tags":[]}', 'Missing Parameters'],
    ['PUT', '/hosts/h1/link', '{"link":"x"}', 'Missing Parameters'],
  ];
  for (const [method, path, body, message] of cases) {
    test(`${method} ${path} ${JSON.stringify(body)}`, async () => {
      const noah = await start();
      await noah.put('/hosts/h1', '{"status":"up"}');
      const before = await t!.backend.revision();
      const res = await noah.send(method, path, body);
      expect(res.status).toBe(400);
      const parsed = returnJson<{ result: string; error_message: string }>(res);
      expect(parsed.result).toBe('failure');
      if (typeof message === 'string') expect(parsed.error_message).toBe(message);
      else expect(parsed.error_message).toMatch(message);
      expect(await t!.backend.revision()).toBe(before);
    });
  }
  test('an ephemeral larger than the value limit is refused', async () => {
    const noah = await start({ maxValueBytes: 16 });
    failure(await noah.put('/ephemerals/big', 'x'.repeat(17)), 400, 'Data too large');
    expect(await t!.backend.get('/ephemerals/big')).toBeNull();
  });
  test('a path with no route answers Noah 404 outside /v1, muster 404 under /v1', async () => {
    const noah = await start();
    beMissing(await noah.send('POST', '/hosts/h1', '{}'));
    beMissing(await noah.get('/a/b/c/d'));
    const v1 = await noah.get('/v1/nothing/here');
    expect(v1.status).toBe(404);
    expect(v1.json()).toMatchObject({ error: { code: 'not_found' } });
  });
});

describe('links and tags work as their names say (Noah shipped them broken)', () => {
  test('PUT /<type>/<name>/link, then GET /<link>[/<type>[/<item>]]', async () => {
    const noah = await start();
    await noah.put('/services/web/h1', '{"status":"up","host_status":"up"}');
    await noah.put('/services/web/h2', '{"status":"down","host_status":"up"}');
    await noah.put('/ephemerals/a/b', 'x');
    const host = returnJson(await noah.put('/hosts/h1/link', '{"link_name":"/myorg"}'));
    expect(host.links).toEqual(['/myorg']);
    // Noah's PUT /services/:svc/link raised NameError: here it links each host's instance.
    const linked = await noah.put('/services/web/link', '{"link_name":"myorg"}');
    expect(linked.status).toBe(200);
    expect(returnJson(linked).web).toBeDefined();
    const link = returnJson(await noah.get('/myorg'));
    matchShape(link, {
      id: ID,
      name: '/myorg',
      hosts: { h1: { id: ID, status: 'up', tags: [], services: { web: 'up' } } },
      services: { web: { h1: { id: ID, status: 'up', tags: [] }, h2: { id: ID, status: 'down', tags: [] } } },
      applications: {},
      configurations: {},
      ephemerals: {},
      created_at: TIME_,
      updated_at: TIME_,
    });
    expect(returnJson(await noah.get('/myorg/hosts/h1'))).toMatchObject({ name: 'h1', status: 'up' });
    expect(Object.keys(returnJson(await noah.get('/myorg/services')))).toEqual(['web']);
    beMissing(await noah.get('/myorg/hosts/nope'));
    beMissing(await noah.get('/otherorg'));
  });
  test('deleting a tagged object drops it from its tag (Noah issue #20 answered 500)', async () => {
    const noah = await start();
    await noah.put('/ephemerals/mytag/thing', 'x');
    await noah.put('/hosts/h1', '{"status":"up"}');
    await noah.put('/ephemerals/mytag/thing/tag', '{"tags":"mytag"}');
    await noah.put('/hosts/h1/tag', '{"tags":["mytag"]}');
    const tagged = returnJson<Record<string, Record<string, unknown>>>(await noah.get('/tags/mytag'));
    expect(Object.keys(tagged.mytag!.ephemerals as object)).toEqual(['/mytag/thing']);
    expect(await noah.delete('/ephemerals/mytag/thing')).toMatchObject({ status: 200 });
    const after = returnJson<Record<string, Record<string, unknown>>>(await noah.get('/tags/mytag'));
    expect(after.mytag!.ephemerals).toBeUndefined();
    expect(Object.keys(after.mytag!.hosts as object)).toEqual(['h1']);
  });
});

describe('auth: Basic credentials whose password is a muster token', () => {
  test('accepted, wrong token, no token, and the token policy', async () => {
    await start({ auth: true });
    const base = `http://127.0.0.1:${t!.port}`;
    const operator = (await t!.tokens!.create({ role: 'operator' })).token;
    const reader = (await t!.tokens!.create({ role: 'reader' })).token;
    const anonymous = new NoahClient(base);
    const res = await anonymous.put('/ephemerals/x', '1');
    expect(res.status).toBe(401);
    expect(returnJson(res).result).toBe('failure');
    expect(await t!.backend.get('/ephemerals/x')).toBeNull();
    // The public start page and the 404 need no token.
    expect((await anonymous.get('/', { accept: 'text/html' })).status).toBe(200);
    expect((await new NoahClient(base, basic('not-a-token')).put('/ephemerals/x', '1')).status).toBe(401);
    const op = new NoahClient(base, basic(operator));
    expect(returnJson(await op.put('/ephemerals/x', '1')).action).toBe('create');
    const read = new NoahClient(base, basic(reader));
    expect((await read.get('/ephemerals/x')).text).toBe('1');
    const refused = await read.put('/ephemerals/x', '2');
    expect(refused.status).toBe(403);
    expect(returnJson(refused).result).toBe('failure');
    expect((await op.get('/ephemerals/x')).text).toBe('1');
    // Bearer works too, as on every route.
    expect((await anonymous.get('/ephemerals/x', { authorization: `Bearer ${reader}` })).status).toBe(200);
    // Basic is only for Noah's routes.
    const v1 = await fetch(`${base}/v1/kv/ephemerals/x`, { headers: { authorization: basic(operator) } });
    expect(v1.status).toBe(401);
  });
});

describe('auth: policies on Noah routes', () => {
  test("a custom policy writing /ephemerals/chef/ only; a TTL lease is the caller's", async () => {
    await start({ auth: true });
    const base = `http://127.0.0.1:${t!.port}`;
    const { token } = await t!.tokens!.create({
      role: 'custom',
      policy: { rules: [{ prefix: '/ephemerals/chef/', access: 'write' }] },
    });
    const chef = new NoahClient(base, basic(token));
    const put = returnJson(await chef.put('/ephemerals/chef/node1?ttl=60s', 'up'));
    expect(put.action).toBe('create');
    // The lease is the token's, as one it granted itself.
    const lease = await fetch(`${base}/v1/leases/${String(put.lease)}`, {
      headers: { authorization: `Bearer ${token}` },
    });
    expect(lease.status).toBe(200);
    expect((await chef.put('/ephemerals/other/node1', 'up')).status).toBe(403);
    // Tagging writes under /tags/ too, which this policy does not allow.
    expect((await chef.put('/ephemerals/chef/node1/tag', '{"tags":"web"}')).status).toBe(403);
    expect((await chef.put('/hosts/node1', '{"status":"up"}')).status).toBe(403);
    expect(await t!.backend.get('/hosts/node1/record')).toBeNull();
    expect(await t!.backend.get('/tags/web')).toBeNull();
  });
});

describe('--noah-listen: a second address, the same store', () => {
  test('MusterServer serves the Noah routes on both ports and stops both', async () => {
    server = await MusterServer.start({
      store: { kind: 'sqlite', dataDir: ':memory:' },
      port: 0,
      noahListen: { host: '127.0.0.1', port: 0 },
      auth: 'off',
      logger: false,
    });
    const main = new NoahClient(server.url);
    expect(server.noahUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    const second = new NoahClient(server.noahUrl!);
    expect(returnJson(await second.put('/ephemerals/chef/notify/localhost', '1')).action).toBe('create');
    expect((await main.get('/ephemerals/chef/notify/localhost')).text).toBe('1');
    expect((await fetch(`${server.url}/v1/kv/ephemerals/chef/notify/localhost`)).status).toBe(200);
    // muster's own API stays on its own port.
    beMissing(await second.get('/v1/kv/ephemerals/chef/notify/localhost'));
    const noahUrl = server.noahUrl!;
    await server.stop();
    server = null;
    await expect(fetch(`${noahUrl}/hosts`)).rejects.toThrow();
  });
});

describe('hostile input on Noah routes', () => {
  test('600 random requests: never a 5xx, always Noah JSON on a 4xx, and a 4xx changes nothing', async () => {
    const noah = await start();
    let seed = 20_111;
    const random = () => {
      seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31;
      return seed / 2 ** 31;
    };
    const pick = <T>(list: readonly T[]): T => list[Math.floor(random() * list.length)]!;
    const names = ['h1', 'web', 'app', 'cfg', 'x', '%2E%2E', '%01', 'a%2Fb', '.', 'v1', 'watch', 'tag', 'link', ''];
    const paths = [
      () => `/hosts/${pick(names)}`,
      () => `/hosts/${pick(names)}/services/${pick(names)}`,
      () => `/hosts/${pick(names)}/${pick(['tag', 'link', 'watch'])}`,
      () => `/services/${pick(names)}/${pick(names)}`,
      () => `/services/${pick(names)}/${pick(names)}/${pick(['tag', 'link'])}`,
      () => `/services/${pick(names)}`,
      () => `/applications/${pick(names)}`,
      () => `/applications/${pick(names)}/configurations/${pick(names)}`,
      () => `/configurations/${pick(names)}${pick(['', '/tag', '/link', '?short=true'])}`,
      // A TTL long enough not to expire mid-run: an expiry is a revision no request made.
      () => `/ephemerals/${pick(names)}/${pick(names)}${pick(['', '/tag', '?ttl=1h', '?ttl=-1', '?ttl=x'])}`,
      () => `/tags/${pick(names)}`,
      () => `/${pick(names)}/${pick(['hosts', 'services', 'nope'])}/${pick(names)}`,
    ];
    const bodies = [
      undefined,
      '',
      'raw',
      '{',
      'null',
      '[]',
      '"up"',
      '{"status":"up"}',
      '{"status":"sideways"}',
      '{"status":"up","host_status":"up"}',
      '{"status":1,"host_status":null}',
      '{"name":"app"}',
      '{"name":{"a":1}}',
      '{"format":"string","body":"b"}',
      '{"format":[],"body":"b"}',
      '{"tags":["a","b"]}',
      '{"tags":[1]}',
      '{"tags":"a/b"}',
      '{"link_name":"/org"}',
      '{"link_name":"a/b"}',
      '{"link_name":""}',
      '{"__proto__":{"x":1}}',
    ];
    const statuses = new Map<number, number>();
    for (let i = 0; i < 600; i++) {
      const method = pick(['GET', 'PUT', 'PUT', 'DELETE', 'POST']);
      const path = pick(paths)();
      const body = method === 'GET' ? undefined : pick(bodies);
      const before = await t!.backend.revision();
      const res = await noah.send(method, path, body);
      statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
      const what = `${method} ${path} ${JSON.stringify(body)}: ${res.status} ${res.text.slice(0, 200)}`;
      expect(res.status, what).toBeLessThan(500);
      if (res.status >= 400) {
        const parsed = JSON.parse(res.text) as Record<string, unknown>;
        if (/^\/v\d+(\/|$)/.test(new URL(noah.base + path).pathname)) continue;
        expect(parsed.result, what).toBe('failure');
        expect(typeof parsed.error_message, what).toBe('string');
        expect(await t!.backend.revision(), what).toBe(before);
      }
    }
    // The run reached both answers.
    expect(statuses.get(200)).toBeGreaterThan(5);
    expect((statuses.get(400) ?? 0) + (statuses.get(404) ?? 0)).toBeGreaterThan(100);
  });
});
