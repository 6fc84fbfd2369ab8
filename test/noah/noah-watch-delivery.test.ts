/**
 * A Noah watch delivers Noah's message to a real receiver: the talk's example
 * (`PUT /watches {"pattern":"//noah/ephemerals/chef/notify/localhost",...}`, then
 * `PUT /ephemerals/chef/notify/localhost -d 1`), and per-object watches.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { MusterServer } from '../../src/server/muster-server.js';
import { eventually } from '../conformance/harness.js';
import { Receiver } from '../hooks/receiver.js';
import { ID, NoahClient, TIME_, matchShape } from './noah-client.js';

describe('Noah watches deliver (webhooks with Noah’s body)', () => {
  let server: MusterServer;
  let receiver: Receiver;
  let noah: NoahClient;
  beforeEach(async () => {
    receiver = await new Receiver().start();
    server = await MusterServer.start({
      store: { kind: 'sqlite', dataDir: ':memory:' },
      port: 0,
      logger: false,
      auth: 'off',
    });
    noah = new NoahClient(server.url);
  });
  afterEach(async () => {
    await server.stop();
    await receiver.stop();
  });

  it('the talk’s ephemeral watch: create, update, delete, in order', async () => {
    const watch = await noah.send(
      'PUT',
      '/watches',
      JSON.stringify({ pattern: '//noah/ephemerals/chef/notify/localhost', endpoint: receiver.url }),
    );
    expect(watch.status).toBe(200);
    expect(watch.json()).toMatchObject({ action: 'create', result: 'success' });
    expect((await noah.put('/ephemerals/chef/notify/localhost', '1')).status).toBe(200);
    expect((await noah.put('/ephemerals/chef/notify/localhost', '2')).status).toBe(200);
    expect((await noah.put('/ephemerals/chef/other', 'x')).status).toBe(200);
    expect((await noah.delete('/ephemerals/chef/notify/localhost')).status).toBe(200);
    await eventually(() => expect(receiver.received).toHaveLength(3), 10_000);
    const [created, updated, deleted] = receiver.bodies();
    matchShape(updated, {
      id: ID,
      tags: [],
      links: [],
      path: '/ephemerals//chef/notify/localhost',
      data: '2',
      created_at: TIME_,
      updated_at: TIME_,
      action: 'update',
      pubcategory: '//noah/ephemerals/chef/notify/localhost',
    });
    expect(created).toMatchObject({ action: 'create', data: '1' });
    expect(deleted).toMatchObject({ action: 'delete', data: '2' });
    expect(receiver.received[0]!.headers['x-muster-hook']).toMatch(/^noah-[0-9a-f]{40}$/);
  });

  it('a per-object watch (PUT /hosts/<name>/watch) delivers the host’s changes', async () => {
    expect((await noah.send('PUT', '/hosts/h1', JSON.stringify({ status: 'up' }))).status).toBe(200);
    const res = await noah.send('PUT', '/hosts/h1/watch', JSON.stringify({ endpoint: receiver.url }));
    expect(res.status).toBe(200);
    expect(Buffer.from(res.json<string>(), 'base64').toString()).toBe(`//noah/hosts/h1|${receiver.url}`);
    expect((await noah.send('PUT', '/hosts/h1', JSON.stringify({ status: 'down' }))).status).toBe(200);
    await eventually(() => expect(receiver.received.length).toBeGreaterThanOrEqual(1), 10_000);
    expect(receiver.bodies()[0]).toMatchObject({
      name: 'h1',
      status: 'down',
      action: 'update',
      pubcategory: '//noah/hosts/h1',
    });
    const missing = await noah.send('PUT', '/hosts/nope/watch', JSON.stringify({ endpoint: receiver.url }));
    expect(missing.status).toBe(404);
    const bad = await noah.send(
      'PUT',
      '/watches',
      JSON.stringify({ pattern: '/ephemerals/x', endpoint: receiver.url }),
    );
    expect(bad.status).toBe(400);
    expect(bad.json()).toEqual({ result: 'failure', error_message: 'Pattern must start with //noah/' });
    const badEndpoint = await noah.send(
      'PUT',
      '/watches',
      JSON.stringify({ pattern: '//noah/x', endpoint: 'dummy://x' }),
    );
    expect(badEndpoint.status).toBe(400);
  });
});
