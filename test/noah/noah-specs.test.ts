/**
 * Noah's own HTTP specs (lusis/Noah spec/noahapp_*_spec.rb), replayed against a real
 * muster server on 127.0.0.1, sent as rack-test sent them. Each `it` of the specs is a
 * test of the same name. Fixtures the specs made through Noah's Ruby models are made
 * here through the same HTTP API. Watches (noahapp_watcher_spec.rb) are muster webhooks with Noah's body.
 */
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import { makeApp } from '../server/harness.js';
import type { TestApp } from '../server/harness.js';
import { ID, NoahClient, TIME_, beInvalid, beMissing, failure, matchShape, returnJson } from './noah-client.js';

let t: TestApp;
let noah: NoahClient;
beforeEach(async () => {
  t = await makeApp();
  noah = new NoahClient(`http://127.0.0.1:${await t.listen()}`);
});
afterEach(async () => t.close());

const ok = (res: { status: number }) => expect(res.status).toBe(200);
type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

async function host(name: string, status = 'up'): Promise<Json> {
  const res = await noah.putJson(`/hosts/${name}`, { status });
  ok(res);
  return res.json();
}
async function service(name: string, hostName: string, status = 'up', hostStatus = 'up'): Promise<Json> {
  const res = await noah.putJson(`/services/${name}/${hostName}`, { status, host_status: hostStatus });
  ok(res);
  return res.json();
}
async function config(name: string, format: string, body: string): Promise<Json> {
  const res = await noah.putJson(`/configurations/${name}`, { format, body });
  ok(res);
  return res.json();
}
async function application(name: string, configs: [string, string, string][] = []): Promise<Json> {
  const res = await noah.putJson(`/applications/${name}`, { name });
  ok(res);
  for (const [c, format, body] of configs)
    ok(await noah.putJson(`/applications/${name}/configurations/${c}`, { format, body }));
  return res.json();
}
async function ephemeral(path: string, data?: string): Promise<Json> {
  const res = await noah.put(`/ephemerals${path}`, data);
  ok(res);
  return res.json();
}

/** spec_helper's :populate_sample_data (watches aside). */
async function populateSampleData(): Promise<void> {
  await host('localhost');
  await service('redis', 'localhost');
  await service('noah', 'localhost');
  await application('noah', [
    ['redis', 'string', 'redis://127.0.0.1:6379/0'],
    ['host', 'string', 'localhost'],
    ['port', 'string', '9292'],
  ]);
  await application('myrailsapp1', [['database.yml', 'yaml', SAMPLE_YAML]]);
  await application('myrestapp1', [['config.json', 'json', SAMPLE_JSON]]);
}

const SAMPLE_YAML = `development:
  database: development_database
  adapter: mysql
  username: dev_user
  password: dev_password
`;
const SAMPLE_JSON = `{
  "id":"hostname",
  "data":"localhost"
}
`;

describe('Noah App Basics (noahapp_spec.rb)', () => {
  test('should show the index page as html', async () => {
    const res = await noah.get('/', { accept: 'text/html' });
    ok(res);
    expect(res.text).toContain('Noah Start Page');
  });
  test('should show the index page as json', async () => {
    const body = returnJson(await noah.get('/', { accept: 'application/json' }));
    expect(Object.keys(body)).toEqual(expect.arrayContaining(['redis_version', 'noah_version', 'resources']));
  });
  test('should test the 404 message', async () => {
    const res = await noah.get('/foo');
    expect(res.status).toBe(404);
    expect(returnJson(res)).toEqual({ result: 'failure', error_message: 'Resource not found' });
    // Byte for byte views/404.erb, leading space included.
    expect(res.text).toBe(' {"result":"failure","error_message":"Resource not found"}');
  });
});

describe('Using the Host API (noahapp_host_spec.rb)', () => {
  beforeEach(populateSampleData);
  test('GET all hosts should work', async () => {
    const res = await noah.get('/hosts');
    ok(res);
    const body = returnJson(res);
    matchShape(body.localhost, {
      id: ID,
      tags: [],
      links: [],
      status: 'up',
      created_at: TIME_,
      updated_at: TIME_,
      services: { redis: 'up', noah: 'up' },
    });
  });
  test('GET existing host should work', async () => {
    const res = await noah.get('/hosts/localhost');
    ok(res);
    matchShape(returnJson(res), {
      id: ID,
      tags: [],
      links: [],
      name: 'localhost',
      status: 'up',
      created_at: TIME_,
      updated_at: TIME_,
      services: { redis: 'up', noah: 'up' },
    });
  });
  test('GET named service for host should work', async () => {
    const res = await noah.get('/hosts/localhost/services/noah');
    ok(res);
    matchShape(returnJson(res), {
      id: ID,
      tags: [],
      links: [],
      name: 'noah',
      status: 'up',
      updated_at: TIME_,
      host: 'localhost',
    });
  });
  test('PUT new host should work', async () => {
    const res = await noah.putJson('/hosts/host99.domain.com', { status: 'down' });
    ok(res);
    matchShape(returnJson(res), {
      result: 'success',
      id: ID,
      status: 'down',
      name: 'host99.domain.com',
      new_record: true,
    });
  });
  test('PUT existing host should work', async () => {
    const created = await host('host99.domain.com', 'down');
    const res = await noah.putJson('/hosts/host99.domain.com', { status: 'pending' });
    ok(res);
    const body = returnJson(res);
    expect(body.new_record).toBe(false);
    expect(body.id).toBe(created.id);
    expect(body.status).toBe('pending');
  });
  test('PUT host missing status parameter should not work', async () => {
    beInvalid(await noah.put('/hosts/host100.domain.com', '{}', { 'content-type': 'application/json' }));
    beMissing(await noah.get('/hosts/host100.domain.com'));
  });
  test('PUT host with invalid status parameter should not work', async () => {
    failure(
      await noah.putJson('/hosts/host100.domain.com', { status: 'fscked' }),
      400,
      'Status must be up, down or pending',
    );
    beMissing(await noah.get('/hosts/host100.domain.com'));
  });
  describe('DELETE', () => {
    let h: Json;
    let s: Json;
    beforeEach(async () => {
      h = await host('h');
      s = await service('s', 'h');
    });
    test('existing host should work', async () => {
      const res = await noah.delete('/hosts/h');
      ok(res);
      matchShape(returnJson(res), { result: 'success', id: h.id, name: 'h', service_count: '1' });
      beMissing(await noah.get('/services/s/h'));
    });
    test('valid service from valid host should work', async () => {
      const res = await noah.delete('/hosts/h/services/s');
      ok(res);
      matchShape(returnJson(res), { action: 'delete', result: 'success', id: s.id, host: 'h', service: 's' });
    });
    test('invalid host should not work', async () => {
      beMissing(await noah.delete('/hosts/not_a_valid_hsot'));
    });
  });
});

describe('Using the Service API (noahapp_service_spec.rb)', () => {
  let s: Json;
  beforeEach(async () => {
    await populateSampleData();
    s = await service('rspec_sample_service', 'rspec_sample_host');
  });
  test('GET all services should work', async () => {
    const body = returnJson(await noah.get('/services'));
    expect(Object.keys(body).sort()).toEqual(['noah', 'redis', 'rspec_sample_service']);
  });
  test('GET all named services should work', async () => {
    const body = returnJson(await noah.get('/services/rspec_sample_service'));
    matchShape(body, {
      rspec_sample_service: {
        rspec_sample_host: { id: s.id, status: 'up', tags: [], links: [], created_at: TIME_, updated_at: TIME_ },
      },
    });
  });
  test('GET named service for host should work', async () => {
    const body = returnJson(await noah.get('/services/rspec_sample_service/rspec_sample_host'));
    matchShape(body, {
      id: s.id,
      tags: [],
      links: [],
      name: 'rspec_sample_service',
      status: 'up',
      updated_at: TIME_,
      host: 'rspec_sample_host',
    });
  });
  test('GET missing service for host should not work', async () => {
    beMissing(await noah.get('/services/foobar/baz'));
  });
  test('PUT new service on new host should work', async () => {
    const res = await noah.putJson('/services/new_service/new_host', { status: 'up', host_status: 'up' });
    ok(res);
    matchShape(returnJson(res), {
      action: 'create',
      result: 'success',
      id: ID,
      name: 'new_service',
      host: { name: 'new_host', action: 'create', status: 'up' },
    });
  });
  test('PUT new service on existing host should work', async () => {
    await host('non-existant-rspec-host');
    const res = await noah.putJson('/services/non-existant-rspec-service/non-existant-rspec-host', {
      status: 'up',
      host_status: 'up',
    });
    matchShape(returnJson(res), {
      action: 'create',
      result: 'success',
      id: ID,
      name: 'non-existant-rspec-service',
      host: { name: 'non-existant-rspec-host', action: 'update', status: 'up' },
    });
  });
  test('PUT new service with invalid host status should not work', async () => {
    failure(
      await noah.putJson('/services/foobar/rspec_sample_host', { host_status: 'fsck', status: 'up' }),
      400,
      'Status must be up, down or pending',
    );
    beMissing(await noah.get('/services/foobar'));
  });
  test('PUT new service with invalid service status should not work', async () => {
    failure(
      await noah.putJson('/services/foobar/rspec_sample_host', { host_status: 'up', status: 'fsck' }),
      400,
      'Status must be up, down or pending',
    );
  });
  test('PUT new service with missing host_status should not work', async () => {
    beInvalid(await noah.putJson('/services/foobar/rspec_sample_host', { status: 'up' }));
  });
  test('PUT new service with missing status should not work', async () => {
    beInvalid(await noah.putJson('/services/foobar/rspec_sample_host', { host_status: 'up' }));
  });
  test('PUT existing service should work', async () => {
    await service('svc', 'hst', 'pending');
    const res = await noah.putJson('/services/svc/hst', { status: 'up', host_status: 'up' });
    matchShape(returnJson(res), {
      action: 'update',
      result: 'success',
      id: ID,
      name: 'svc',
      host: { name: 'hst', action: 'update', status: 'up' },
    });
    expect(returnJson(await noah.get('/services/svc/hst')).status).toBe('up');
  });
  describe('DELETE', () => {
    let s1: Json;
    beforeEach(async () => {
      s1 = await service('s1', 'h1');
    });
    test('service from existing host should work', async () => {
      matchShape(returnJson(await noah.delete('/services/s1/h1')), {
        action: 'delete',
        result: 'success',
        id: s1.id,
        host: 'h1',
        service: 's1',
      });
    });
    test('all entries for a valid service', async () => {
      for (const h of ['foo', 'bar', 'baz']) await service('my_sample_service', h);
      await service('my_sample_service_two', 'foo', 'down');
      await service('my_sample_service_three', 'bar', 'pending');
      matchShape(returnJson(await noah.delete('/services/my_sample_service')), {
        action: 'delete',
        result: 'success',
        affected_hosts: 3,
        service: 'my_sample_service',
      });
      expect(returnJson(await noah.delete('/services/my_sample_service_two')).affected_hosts).toBe(1);
    });
    test('service for invalid host should not work', async () => {
      ok(await noah.delete('/services/s1/h1'));
      beMissing(await noah.delete('/services/s1/h1'));
    });
    test('invalid service for valid host should not work', async () => {
      await host('valid_host');
      beMissing(await noah.delete('/services/not_really_here/valid_host'));
    });
    test('all entries for an invalid service should not_work', async () => {
      beMissing(await noah.delete('/services/not_really_here'));
    });
  });
});

describe('Using the Application API (noahapp_application_spec.rb)', () => {
  let a: Json;
  let c: Json;
  beforeEach(async () => {
    a = await application('rspec_sample_app');
    await application('rspec_sample_app_2');
    c = await config('rspec_config', 'string', 'rspec is great');
    ok(
      await noah.putJson('/applications/rspec_sample_app/configurations/rspec_config', {
        format: 'string',
        body: 'rspec is great',
      }),
    );
  });
  test('GET all applications should work', async () => {
    const body = returnJson(await noah.get('/applications'));
    expect(Object.keys(body).length).toBe(2);
  });
  test('GET named application should work', async () => {
    matchShape(returnJson(await noah.get('/applications/rspec_sample_app')), {
      id: a.id,
      tags: [],
      links: [],
      name: 'rspec_sample_app',
      created_at: TIME_,
      updated_at: TIME_,
      configurations: { rspec_config: { format: 'string', body: 'rspec is great' } },
    });
  });
  test('GET named configuration for application should work as JSON', async () => {
    const res = await noah.get('/applications/rspec_sample_app/configurations/rspec_config', {
      accept: 'application/json',
    });
    matchShape(returnJson(res), {
      id: c.id,
      tags: [],
      links: [],
      name: 'rspec_config',
      format: 'string',
      body: 'rspec is great',
      created_at: TIME_,
      updated_at: TIME_,
    });
  });
  test('GET named configuration for application should work as raw', async () => {
    const res = await noah.get('/applications/rspec_sample_app/configurations/rspec_config', {
      accept: 'application/octet',
    });
    ok(res);
    expect(res.contentType).toBe('text/plain;charset=utf-8');
    expect(res.text).toBe('rspec is great');
  });
  test('GET invalid application should not work', async () => {
    beMissing(await noah.get('/applications/should_not_exist'));
  });
  test('GET invalid configuration for application should not work', async () => {
    beMissing(await noah.get('/applications/should_not_exist/should_not_exist'));
  });
  test('PUT new application should work', async () => {
    matchShape(returnJson(await noah.putJson('/applications/should_now_exist', { name: 'should_now_exist' })), {
      result: 'success',
      id: ID,
      action: 'create',
      name: 'should_now_exist',
    });
  });
  test('PUT new application with new configuration should work', async () => {
    const res = await noah.put(
      '/applications/my_awesome_app/configurations/my_awesome_config',
      '{"body":"awesome_string","format":"string"}',
      {
        'content-type': 'application/json',
      },
    );
    matchShape(returnJson(res), {
      result: 'success',
      id: ID,
      name: 'my_awesome_app',
      action: 'create',
      configuration: { action: 'create', id: ID, item: 'my_awesome_config' },
    });
  });
  test('PUT new application with missing name should not work', async () => {
    beInvalid(await noah.put('/applications/should_not_work', '{"foo":"bar"}', { 'content-type': 'application/json' }));
    beMissing(await noah.get('/applications/should_not_work'));
  });
  test('PUT existing application should work', async () => {
    const first = await application('should_now_exist');
    matchShape(returnJson(await noah.putJson('/applications/should_now_exist', { name: 'should_now_exist' })), {
      result: 'success',
      id: first.id,
      action: 'update',
      name: 'should_now_exist',
    });
  });
  test('PUT existing application with new configuration', async () => {
    await application('should_now_exist');
    const res = await noah.putJson('/applications/should_now_exist/configurations/herp', {
      body: 'derp',
      format: 'string',
    });
    const body = returnJson(res);
    expect(body).toMatchObject({
      result: 'success',
      action: 'update',
      configuration: { action: 'create', item: 'herp' },
    });
  });
  test('PUT existing application with existing configuration', async () => {
    await application('should_now_exist');
    ok(await noah.putJson('/applications/should_now_exist/configurations/herp', { body: 'derp', format: 'string' }));
    const body = returnJson(
      await noah.putJson('/applications/should_now_exist/configurations/herp', { body: 'derp', format: 'string' }),
    );
    expect(body).toMatchObject({
      result: 'success',
      action: 'update',
      configuration: { action: 'update', item: 'herp' },
    });
  });
  test('DELETE existing application should work', async () => {
    const created = await application('should_now_exist');
    matchShape(returnJson(await noah.delete('/applications/should_now_exist')), {
      result: 'success',
      action: 'delete',
      id: created.id,
      name: 'should_now_exist',
    });
  });
  test('DELETE invalid application should not work', async () => {
    beMissing(await noah.delete('/applications/should_not_work'));
  });
});

describe('Using the Configuration API (noahapp_configuration_spec.rb)', () => {
  let redis: Json;
  beforeEach(async () => {
    redis = await config('redis_url', 'string', 'redis://127.0.0.1:6379/0');
    await config('json_config', 'json', SAMPLE_JSON);
    await config('yaml_config', 'yaml', SAMPLE_YAML);
    await application('rspec_application');
  });
  test('GET all configurations should work', async () => {
    const body = returnJson(await noah.get('/configurations'));
    expect(Object.keys(body).sort()).toEqual(['json_config', 'redis_url', 'yaml_config']);
    for (const c of Object.values(body)) {
      matchShape(c, {
        id: ID,
        tags: [],
        links: [],
        format: expect.any(String),
        body: expect.any(String),
        created_at: TIME_,
        updated_at: TIME_,
      });
    }
  });
  for (const [name, url] of [
    ['all configurations in short form with no trailing slash', '/configurations?short=true'],
    ['all configurations in short form with trailing slash', '/configurations/?short=true'],
  ] as const) {
    test(`GET ${name}`, async () => {
      const body = returnJson<Record<string, Json>>(await noah.get(url));
      expect(Object.keys(body).length).toBe(3);
      for (const [k, v] of Object.entries(body)) {
        expect(Object.keys(v).sort()).toEqual(['created_at', 'format', 'location', 'updated_at']);
        expect(v.location).toMatch(new RegExp(`^http://.*/configurations/${k.replace('.', '\\.')}$`));
      }
    });
  }
  test('GET named configuration should work as JSON', async () => {
    matchShape(returnJson(await noah.get('/configurations/redis_url', { accept: 'application/json' })), {
      id: redis.id,
      tags: [],
      links: [],
      name: 'redis_url',
      format: 'string',
      body: 'redis://127.0.0.1:6379/0',
      created_at: TIME_,
      updated_at: TIME_,
    });
  });
  test('GET named configuration should work with mime-type', async () => {
    // rack-test sends no Accept header (fetch would send */*: give an explicit non-JSON one).
    const res = await noah.get('/configurations/yaml_config', { accept: 'text/x-yaml' });
    ok(res);
    expect(res.contentType).toBe('text/x-yaml;charset=utf-8');
    expect(res.text).toBe(SAMPLE_YAML);
  });
  test('GET invalid configuration should not work', async () => {
    beMissing(await noah.get('/configurations/badconfig'));
  });
  test('GET invalid configuration data should not work', async () => {
    beMissing(await noah.get('/configurations/badconfig/data'));
  });
  test('PUT new configuration should work', async () => {
    matchShape(
      returnJson(await noah.putJson('/configurations/newconfig', { format: 'string', body: 'sample_config_entry' })),
      {
        result: 'success',
        id: ID,
        action: 'create',
        item: 'newconfig',
      },
    );
  });
  test('PUT existing configuration should work', async () => {
    await config('newconfig', 'string', 'sample_config_entry');
    expect(
      returnJson(await noah.putJson('/configurations/newconfig', { format: 'string', body: 'sample_config_entry' })),
    ).toMatchObject({
      result: 'success',
      action: 'update',
      item: 'newconfig',
    });
  });
  test('PUT new configuration with missing format should not work', async () => {
    beInvalid(await noah.putJson('/configurations/someconfig', { body: 'a string' }));
  });
  test('PUT new configuration with missing body should not work', async () => {
    beInvalid(await noah.putJson('/configurations/someconfig', { body: 'a string' }));
    beInvalid(await noah.putJson('/configurations/someconfig', { format: 'string' }));
    beMissing(await noah.get('/configurations/someconfig'));
  });
  test('DELETE existing configuration should work', async () => {
    await application('delete_test_app');
    ok(await noah.putJson('/applications/delete_test_app/configurations/asdf', { format: 'string', body: 'asdf' }));
    const c = returnJson(await noah.get('/configurations/asdf', { accept: 'application/json' }));
    matchShape(returnJson(await noah.delete('/configurations/asdf')), {
      result: 'success',
      id: c.id,
      action: 'delete',
      affected_applications: ['delete_test_app'],
      item: 'asdf',
    });
    expect(returnJson(await noah.get('/applications/delete_test_app')).configurations).toEqual({});
  });
  test('DELETE invalid configuration should not work', async () => {
    beMissing(await noah.delete('/configurations/somethingthatshouldnotexist'));
  });
});

describe('Using the Ephemeral API (noahapp_ephemeral_spec.rb)', () => {
  beforeEach(async () => {
    await ephemeral('/foo/bar/baz', 'value1');
    await ephemeral('/baz/bar');
  });
  test('GET all ephemerals should return 404', async () => {
    beMissing(await noah.get('/ephemerals'));
  });
  test('GET named path with data should work', async () => {
    const res = await noah.get('/ephemerals/foo/bar/baz');
    ok(res);
    expect(res.text).toBe('value1');
    expect(res.contentType).toBe('application/octet-stream');
  });
  test('GET named path without data should work', async () => {
    const res = await noah.get('/ephemerals/baz/bar');
    ok(res);
    expect(res.text).toBe('');
  });
  test('GET invalid path should not work', async () => {
    beMissing(await noah.get('/e/ssss/dddd'));
  });
  test('PUT new ephemeral with data should work', async () => {
    matchShape(returnJson(await noah.put('/ephemerals/whiz/bang/', 'value3')), {
      action: 'create',
      result: 'success',
      id: ID,
      path: '/whiz/bang/',
      data: 'value3',
      created_at: TIME_,
      updated_at: TIME_,
    });
  });
  test('PUT new ephemeral without data should work', async () => {
    matchShape(returnJson(await noah.put('/ephemerals/bang/whiz')), {
      action: 'create',
      result: 'success',
      id: ID,
      path: '/bang/whiz',
      data: null,
      created_at: TIME_,
      updated_at: TIME_,
    });
  });
  test('PUT existing ephemeral with data should work', async () => {
    await ephemeral('/new/ephemeral', 'old_value');
    expect((await noah.get('/ephemerals/new/ephemeral')).text).toBe('old_value');
    expect(returnJson(await noah.put('/ephemerals/new/ephemeral', 'new_value')).action).toBe('update');
    expect((await noah.get('/ephemerals/new/ephemeral')).text).toBe('new_value');
  });
  test('PUT existing ephemeral without data should work', async () => {
    await ephemeral('/a/random/key');
    expect((await noah.get('/ephemerals/a/random/key')).text).toBe('');
    ok(await noah.put('/ephemerals/a/random/key', 'a new value'));
    expect((await noah.get('/ephemerals/a/random/key')).text).toBe('a new value');
  });
  const PROTECTED = ['applications', 'configurations', 'hosts', 'services', 'watches', 'ark', 'noah'];
  test('PUT ephemeral with reserved word in subpath should work', async () => {
    for (const word of PROTECTED) ok(await noah.put(`/ephemerals/a/valid/path/with/${word}`));
  });
  test('PUT ephemeral with reserved word as path should not work', async () => {
    for (const word of PROTECTED) {
      failure(await noah.put(`/ephemerals/${word}/other/stuff`), 400, 'Path is reserved');
      expect(await t.backend.get(`/ephemerals/${word}/other/stuff`)).toBeNull();
    }
  });
  test('DELETE existing path should work', async () => {
    const e = await ephemeral('/slart/i/bart/fast', 'someddata');
    matchShape(returnJson(await noah.delete('/ephemerals/slart/i/bart/fast')), {
      result: 'success',
      id: e.id,
      action: 'delete',
      path: '/slart/i/bart/fast',
    });
    beMissing(await noah.get('/ephemerals/slart/i/bart/fast'));
  });
  test('DELETE invalid path should not work', async () => {
    beMissing(await noah.delete('/ephemerals/fork/spoon/knife'));
  });
});

describe('Using the Tag API (noahapp_tag_spec.rb)', () => {
  const multi = { tags: ['production', 'databases', 'in-service'] };
  const single = { tags: 'out-of-service' };
  const urls: Record<string, string> = {
    host: '/hosts/tagged_host/tag',
    service: '/services/tagged_service/tagged_host/tag',
    application: '/applications/tagged_application/tag',
    configuration: '/configurations/tagged_configuration/tag',
    ephemeral: '/ephemerals/tagged/ephemeral/tag',
  };
  beforeEach(async () => {
    await host('tagged_host');
    await service('tagged_service', 'tagged_host', 'down');
    await application('tagged_application');
    await config('tagged_configuration', 'string', 'some_string');
    await ephemeral('/tagged/ephemeral');
  });
  for (const primitive of Object.keys(urls)) {
    test(`PUT multiple tags to ${primitive} should work`, async () => {
      const body = returnJson(await noah.put(urls[primitive]!, JSON.stringify(multi)));
      expect((body.tags as string[]).sort()).toEqual([...multi.tags].sort());
    });
  }
  for (const primitive of Object.keys(urls)) {
    test(`PUT single tag to ${primitive} should work`, async () => {
      const body = returnJson(await noah.put(urls[primitive]!, JSON.stringify(single)));
      expect(body.tags).toEqual([single.tags]);
    });
  }
  // Noah's DELETE never untagged (the examples passed because nothing was tagged first):
  // here the objects are tagged first, so the examples test what their names say.
  for (const primitive of Object.keys(urls)) {
    test(`DELETE multiple tags from ${primitive} should work`, async () => {
      ok(await noah.put(urls[primitive]!, JSON.stringify(multi)));
      const body = returnJson(await noah.delete(urls[primitive]!, JSON.stringify(multi)));
      expect(body.tags).toEqual([]);
      const tags = returnJson<Record<string, Json>>(await noah.get('/tags'));
      for (const tag of multi.tags) expect(Object.keys(tags[tag]!)).toEqual(['id', 'created_at', 'updated_at']);
    });
  }
  for (const primitive of Object.keys(urls)) {
    test(`DELETE single tag from ${primitive} should work`, async () => {
      ok(await noah.put(urls[primitive]!, JSON.stringify(single)));
      const body = returnJson(await noah.delete(urls[primitive]!, JSON.stringify(single)));
      expect(body.tags).toEqual([]);
    });
  }
});

describe('Using the Watcher API (noahapp_watcher_spec.rb)', () => {
  const endpoint = 'http://localhost:4567/webhook';
  /** Noah::Watcher.create, through the HTTP API. */
  async function watcher(pattern: string, to: string): Promise<Json> {
    const res = await noah.putJson('/watches', { pattern, endpoint: to });
    ok(res);
    return res.json();
  }
  beforeEach(async () => {
    await application('fooapp');
    ok(await noah.putJson('/applications/fooapp/watch', { endpoint }));
    await config('fooconfig', 'string', 'x');
    ok(await noah.putJson('/configurations/fooconfig/watch', { endpoint }));
    await host('localhost');
    ok(await noah.putJson('/hosts/localhost/watch', { endpoint }));
    await service('localhostservice', 'localhost');
    ok(await noah.putJson('/services/localhostservice/watch', { endpoint }));
  });
  test('GET all watches should work', async () => {
    const res = await noah.get('/watches');
    ok(res);
    const response = returnJson<Json[]>(res);
    expect(Array.isArray(response)).toBe(true);
    expect(response).toHaveLength(4);
  });
  test('GET named watch should work', async () => {
    const w = await watcher('//noah/application/myapp', 'http://localhost/watchersebhook');
    const res = await noah.get(`/watches/${encodeURIComponent(w.name as string)}`);
    ok(res);
    const response = returnJson(res);
    expect(response.pattern).toBe(w.pattern);
    expect(response.endpoint).toBe(w.endpoint);
  });
  test('GET invalid watch should not work', async () => {
    beMissing(await noah.get('/watches/asdfasdfasdfasdfasdfsdf'));
  });
  test('PUT new watch should work', async () => {
    const data = { pattern: '//noah/application', endpoint: 'http://myendpoint/watchersebhook' };
    const res = await noah.putJson('/watches', data);
    ok(res);
    matchShape(returnJson(res), {
      action: 'create',
      result: 'success',
      id: ID,
      pattern: data.pattern,
      name: Buffer.from(`${data.pattern}|${data.endpoint}`).toString('base64'),
      endpoint: data.endpoint,
      created_at: TIME_,
      updated_at: TIME_,
    });
    const all = returnJson<Json[]>(await noah.get('/watches'));
    expect(all.filter((w) => w.pattern === data.pattern && w.endpoint === data.endpoint)).toHaveLength(1);
  });
  test('PUT new watch without pattern should not work', async () => {
    beInvalid(await noah.putJson('/watches', { endpoint: 'http://myendpoint/watchersebhook' }));
  });
  test('PUT new watch without endpoint should not work', async () => {
    beInvalid(await noah.putJson('/watches', { pattern: '//noah/application' }));
  });
  test('PUT new watch that supercedes existing should not work', async () => {
    await watcher('//noah/application/foo', 'http://myendpoint/watchersebhook');
    const res = await noah.putJson('/watches', {
      endpoint: 'http://myendpoint/watchersebhook',
      pattern: '//noah/application',
    });
    expect(res.status).not.toBe(200);
    expect(returnJson(res).error_message).toBe('Pattern would overwrite existing');
  });
  test('PUT new watch that subsets an existing should not work', async () => {
    await watcher('//noah/application', 'http://myendpoint/watchersebhook');
    const res = await noah.putJson('/watches', {
      endpoint: 'http://myendpoint/watchersebhook',
      pattern: '//noah/application/foo',
    });
    expect(res.status).not.toBe(200);
    expect(returnJson(res).error_message).toBe('Pattern is already provided');
  });
  test('DELETE an existing watch should work', async () => {
    const data = { endpoint: 'http://myendpoint/watchersebhookd', pattern: '//noah/application/d' };
    await watcher(data.pattern, data.endpoint);
    const res = await noah.delete('/watches', JSON.stringify(data));
    ok(res);
    const response = returnJson(res);
    expect(response.pattern).toBe(data.pattern);
    expect(response.endpoint).toBe(data.endpoint);
    expect(response.name).not.toBe('null');
    const all = returnJson<Json[]>(await noah.get('/watches'));
    expect(all.filter((w) => w.pattern === data.pattern)).toHaveLength(0);
  });
  test('DELETE an invalid watch should not work', async () => {
    beMissing(
      await noah.delete('/watches', JSON.stringify({ endpoint: 'missing', pattern: '//noah/application/dag' })),
    );
  });
  test('DELETE without pattern should not work', async () => {
    beInvalid(await noah.delete('/watches', JSON.stringify({ endpoint: 'invalid' })));
  });
  test('DELETE without endpoint should not work', async () => {
    beInvalid(await noah.delete('/watches', JSON.stringify({ pattern: '//noah/invalid' })));
  });
});
