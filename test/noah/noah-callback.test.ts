/**
 * Noah's callback body (what a Noah watch POSTs), built from muster watch events:
 * the seed talk's example field for field, and the other object types.
 */
import { afterEach, beforeEach, expect, test } from 'vitest';
import type { WatchEvent } from '../../src/core/backend.js';
import { noahCallbackBody, noahObjectOf } from '../../src/noah/noah-callback.js';
import { makeApp } from '../server/harness.js';
import type { TestApp } from '../server/harness.js';
import { ID, NoahClient, TIME_, matchShape } from './noah-client.js';

let t: TestApp;
let noah: NoahClient;
beforeEach(async () => {
  t = await makeApp();
  noah = new NoahClient(`http://127.0.0.1:${await t.listen()}`);
});
afterEach(async () => t.close());

/** Every event from revision 1 up to the current one. */
async function history(): Promise<WatchEvent[]> {
  const until = await t.backend.revision();
  const watch = t.backend.watch('/', { prefix: true, fromRevision: 1, prevKv: true });
  const events: WatchEvent[] = [];
  for await (const batch of watch) {
    events.push(...batch.events);
    if (events.length > 0 && events[events.length - 1]!.revision >= until) break;
  }
  watch.close();
  return events;
}

async function bodies(): Promise<Record<string, unknown>[]> {
  const out: Record<string, unknown>[] = [];
  for (const event of await history()) {
    const body = await noahCallbackBody(t.backend, event);
    if (body !== null) out.push(JSON.parse(body) as Record<string, unknown>);
  }
  return out;
}

test("the talk's watch example: PUT 1 then 2 at /ephemerals/chef/notify/localhost, then DELETE", async () => {
  await noah.put('/ephemerals/chef/notify/localhost', '1');
  await noah.put('/ephemerals/chef/notify/localhost', '2');
  await noah.delete('/ephemerals/chef/notify/localhost');
  const [create, update, remove] = await bodies();
  const shape = (data: string, action: string) => ({
    id: ID,
    tags: [],
    links: [],
    path: '/ephemerals//chef/notify/localhost',
    data,
    created_at: TIME_,
    updated_at: TIME_,
    action,
    pubcategory: '//noah/ephemerals/chef/notify/localhost',
  });
  matchShape(create, shape('1', 'create'));
  matchShape(update, shape('2', 'update'));
  matchShape(remove, shape('2', 'delete'));
  expect(update!.id).toBe(create!.id);
  expect(remove!.id).toBe(create!.id);
});

test('hosts, services, applications, configurations: their representation, action, pubcategory, path', async () => {
  await noah.put('/services/redis/h1', '{"status":"up","host_status":"up"}');
  await noah.put('/configurations/redis_url', '{"format":"string","body":"redis://x"}');
  await noah.put('/applications/app', '{"name":"app"}');
  await noah.delete('/hosts/h1');
  const all = await bodies();
  expect(all.map((b) => `${String(b.action)} ${String(b.pubcategory)} ${String(b.path)}`)).toEqual([
    'create //noah/hosts/h1 /hosts/h1',
    'create //noah/services/redis /services/redis',
    'create //noah/configurations/redis_url /configurations/redis_url',
    'create //noah/applications/app /applications/app',
    // One revision: the host's services, then the host.
    'delete //noah/services/redis /services/redis',
    'delete //noah/hosts/h1 /hosts/h1',
  ]);
  matchShape(all[0], {
    id: ID,
    tags: [],
    links: [],
    name: 'h1',
    status: 'up',
    created_at: TIME_,
    updated_at: TIME_,
    services: {},
    action: 'create',
    pubcategory: '//noah/hosts/h1',
    path: '/hosts/h1',
  });
  expect(all[1]).toMatchObject({ name: 'redis', host: 'h1', status: 'up' });
  expect(all[2]).toMatchObject({ name: 'redis_url', format: 'string', body: 'redis://x' });
});

test('keys that are not Noah objects have no Noah body', () => {
  expect(noahObjectOf('/muster/noah/ephemerals/a')).toBeNull();
  expect(noahObjectOf('/config/db')).toBeNull();
  expect(noahObjectOf('/hosts/h1/other')).toBeNull();
  expect(noahObjectOf('/ephemerals/a/b')?.pubcategory).toBe('//noah/ephemerals/a/b');
});
