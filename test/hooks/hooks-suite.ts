/**
 * Webhooks end to end against a real receiver on 127.0.0.1, on one store;
 * hooks.sqlite.test.ts and hooks.etcd.test.ts run it on each.
 */
import { createHmac } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import type { BackendConfig } from '../../src/backends/create-backend.js';
import { MusterClient } from '../../src/client/muster-client.js';
import { MusterServer } from '../../src/server/muster-server.js';
import type { MusterServerOptions } from '../../src/server/muster-server.js';
import { eventually } from '../conformance/harness.js';
import { Receiver } from './receiver.js';

export type StoreFactory = () => Promise<BackendConfig>;

export function describeHooks(name: string, makeStore: StoreFactory): void {
  describe(`webhooks (${name})`, () => {
    const cleanup: (() => Promise<void> | void)[] = [];
    afterEach(async () => {
      for (const step of cleanup.reverse()) await step();
      cleanup.length = 0;
    });

    async function receiver(): Promise<Receiver> {
      const r = await new Receiver().start();
      cleanup.push(() => r.stop());
      return r;
    }

    async function setup(options: Partial<MusterServerOptions> = {}) {
      const server = await MusterServer.start({
        store: await makeStore(),
        port: 0,
        logger: false,
        auth: 'off',
        dutiesTtl: 3,
        ...options,
      });
      cleanup.push(() => server.stop());
      const client = new MusterClient({ endpoints: server.url });
      return { server, client };
    }

    it('delivers every change under the prefix once, in revision order, with the headers', async () => {
      const r = await receiver();
      const { client } = await setup();
      const hook = await client.addHook({ name: 'ordered', prefix: '/app/', url: r.url });
      expect(hook).toMatchObject({ name: 'ordered', status: 'active', events: ['put', 'delete'], format: 'json' });
      const revisions: number[] = [];
      for (let i = 0; i < 30; i++) revisions.push((await client.put(`/app/k${i % 5}`, `v${i}`)).revision);
      await client.put('/other/x', 'not hooked');
      const del = await client.delete('/app/k0');
      await eventually(() => expect(r.received).toHaveLength(31), 10_000);
      const bodies = r.bodies<{ key: string; value: string | null; revision: number; type: string }>();
      expect(bodies.slice(0, 30).map((b) => b.revision)).toEqual(revisions);
      expect(bodies.slice(0, 30).map((b) => b.value)).toEqual(revisions.map((_, i) => `v${i}`));
      expect(bodies[30]).toMatchObject({ type: 'delete', key: '/app/k0', value: null, revision: del.revision });
      const first = r.received[0]!.headers;
      expect(first['x-muster-delivery']).toBe(`ordered:${revisions[0]}:0`);
      expect(first['x-muster-revision']).toBe(String(revisions[0]));
      expect(first['x-muster-hook']).toBe('ordered');
      expect(first['x-muster-event']).toBe('put');
      expect(first['x-muster-signature-256']).toBeUndefined();
      expect(r.received[30]!.headers['x-muster-event']).toBe('delete');
      await eventually(async () => expect((await client.getHook('ordered')).delivered).toBe(31));
      const log = await client.hookDeliveries('ordered');
      expect(log).toHaveLength(31);
      expect(log[0]).toMatchObject({ status: 200, attempt: 1, error: null });
    });

    it('retries a 500 until the endpoint answers 200, and logs each attempt', async () => {
      const r = await receiver();
      r.script = [500, 500, 503];
      const { client } = await setup();
      await client.addHook({ name: 'retry', prefix: '/r/', url: r.url, events: ['put'] });
      await client.put('/r/a', '1');
      await client.put('/r/b', '2');
      // Backoff is 1 s, 2 s, 4 s windows with jitter: the first arrives within ~7 s.
      await eventually(() => expect(r.received.filter((x) => x.headers['x-muster-event'])).toHaveLength(5), 15_000);
      const ok = r.received.filter((x) => x.body !== '' && JSON.parse(x.body).key);
      // The three failed tries were of /r/a; then /r/a, then /r/b, in order.
      expect(ok.map((x) => JSON.parse(x.body).key)).toEqual(['/r/a', '/r/a', '/r/a', '/r/a', '/r/b']);
      expect(new Set(ok.slice(0, 4).map((x) => x.headers['x-muster-delivery'])).size).toBe(1);
      await eventually(async () => expect((await client.getHook('retry')).delivered).toBe(2));
      const log = await client.hookDeliveries('retry');
      expect(log.map((d) => [d.status, d.attempt])).toEqual([
        [500, 1],
        [500, 2],
        [503, 3],
        [200, 4],
        [200, 1],
      ]);
      expect(log[0]!.error).toContain('500');
      const shown = await client.getHook('retry');
      expect(shown).toMatchObject({ status: 'active', failures: 0, lastError: null });
    }, 30_000);

    it('signs bodies with the secret, and never shows the secret', async () => {
      const r = await receiver();
      const { client } = await setup();
      const added = await client.addHook({ name: 'signed', prefix: '/s/', url: r.url, secret: 'hunter2' });
      expect(added.secretSet).toBe(true);
      expect(JSON.stringify(added)).not.toContain('hunter2');
      await client.put('/s/x', 'payload');
      await eventually(() => expect(r.received).toHaveLength(1), 10_000);
      const { body, headers } = r.received[0]!;
      const expected = `sha256=${createHmac('sha256', 'hunter2').update(body).digest('hex')}`;
      expect(headers['x-muster-signature-256']).toBe(expected);
      expect(headers['x-muster-signature-256']).not.toBe(
        `sha256=${createHmac('sha256', 'other').update(body).digest('hex')}`,
      );
      expect(JSON.stringify(await client.listHooks())).not.toContain('hunter2');
    });

    it('a dead endpoint does not delay another hook', async () => {
      const live = await receiver();
      const dead = await receiver();
      dead.script = Array.from({ length: 50 }, () => 'hang' as const);
      const { client } = await setup({ hookTimeoutMs: 10_000 });
      await client.addHook({ name: 'dead', prefix: '/d/', url: dead.url });
      await client.addHook({ name: 'live', prefix: '/d/', url: live.url });
      const started = performance.now();
      for (let i = 0; i < 10; i++) await client.put(`/d/${i}`, String(i));
      await eventually(() => expect(live.received).toHaveLength(10), 5000);
      expect(performance.now() - started).toBeLessThan(5000);
      expect(dead.received).toHaveLength(0);
      // And the API answers at once meanwhile.
      const t0 = performance.now();
      await client.put('/d/again', 'x');
      expect(performance.now() - t0).toBeLessThan(1000);
    });

    it('pause stops delivery, resume goes on from the cursor; rm removes', async () => {
      const r = await receiver();
      const { client } = await setup();
      await client.addHook({ name: 'p', prefix: '/p/', url: r.url });
      await client.put('/p/1', 'a');
      await eventually(() => expect(r.received).toHaveLength(1), 10_000);
      expect((await client.pauseHook('p')).status).toBe('paused');
      await new Promise((resolve) => setTimeout(resolve, 600));
      await client.put('/p/2', 'b');
      await client.put('/p/3', 'c');
      await new Promise((resolve) => setTimeout(resolve, 800));
      expect(r.received).toHaveLength(1);
      expect((await client.getHook('p')).status).toBe('paused');
      expect((await client.resumeHook('p')).status).toBe('active');
      await eventually(() => expect(r.received).toHaveLength(3), 10_000);
      expect(r.bodies<{ key: string }>().map((b) => b.key)).toEqual(['/p/1', '/p/2', '/p/3']);
      await client.removeHook('p');
      await expect(client.getHook('p')).rejects.toMatchObject({ code: 'hook_not_found' });
      // The duty notices a removal within its sync interval (250 ms).
      await new Promise((resolve) => setTimeout(resolve, 500));
      await client.put('/p/4', 'd');
      await new Promise((resolve) => setTimeout(resolve, 600));
      expect(r.received).toHaveLength(3);
    });

    it('a hook failing past the retry limit is failing, then paused, visibly; resume delivers', async () => {
      const r = await receiver();
      r.script = Array.from({ length: 12 }, () => 500);
      const { client } = await setup({ hookRetryLimit: 6000 });
      await client.addHook({ name: 'f', prefix: '/f/', url: r.url });
      await client.put('/f/1', 'x');
      await eventually(async () => expect((await client.getHook('f')).status).toBe('failing'), 15_000);
      await eventually(async () => expect((await client.getHook('f')).status).toBe('paused'), 15_000);
      const paused = await client.getHook('f');
      expect(paused.failures).toBeGreaterThanOrEqual(3);
      expect(paused.lastError).toContain('500');
      r.script = [];
      await client.resumeHook('f');
      await eventually(() => expect(r.received.some((x) => x.body.includes('/f/1'))).toBe(true), 10_000);
      await eventually(async () => expect((await client.getHook('f')).status).toBe('active'));
    }, 40_000);

    it('refuses bad input with 4xx and changes nothing', async () => {
      const { server, client } = await setup();
      const bad: [object, number, string][] = [
        [{ name: 'a', prefix: '/x/', url: 'ftp://x/' }, 400, 'invalid_url'],
        [{ name: 'a', prefix: '/x/', url: 'http://u:p@x/' }, 400, 'invalid_url'],
        [{ name: 'a', prefix: '/x/', url: 'not a url' }, 400, 'invalid_url'],
        [{ name: 'a', prefix: 'x', url: 'http://x/' }, 400, 'invalid_key'],
        [{ name: 'a b', prefix: '/x/', url: 'http://x/' }, 400, 'invalid_name'],
        [{ name: 'a', prefix: '/x/', url: 'http://x/', events: ['poke'] }, 400, 'invalid_request'],
        [{ name: 'a', prefix: '/x/', url: 'http://x/', format: 'xml' }, 400, 'invalid_request'],
        [{ name: 'a', prefix: '/x/', url: 'http://x/', extra: 1 }, 400, 'invalid_request'],
        [{ prefix: '/x/', url: 'http://x/' }, 400, 'invalid_request'],
      ];
      for (const [body, status, code] of bad) {
        const res = await fetch(`${server.url}/v1/hooks`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify(body),
        });
        expect([JSON.stringify(body), res.status]).toEqual([JSON.stringify(body), status]);
        expect(((await res.json()) as { error: { code: string } }).error.code).toBe(code);
      }
      const malformed = await fetch(`${server.url}/v1/hooks`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: '{"name":',
      });
      expect(malformed.status).toBe(400);
      expect(await client.listHooks()).toEqual([]);
      await client.addHook({ name: 'a', prefix: '/x/', url: 'http://127.0.0.1:1/' });
      await expect(client.addHook({ name: 'a', prefix: '/y/', url: 'http://127.0.0.1:1/' })).rejects.toMatchObject({
        code: 'hook_exists',
      });
      expect((await client.getHook('a')).prefix).toBe('/x/');
      for (const path of ['/v1/hooks/nope', '/v1/hooks/nope/deliveries']) {
        const res = await fetch(`${server.url}${path}`);
        expect(res.status).toBe(404);
      }
      const res = await fetch(`${server.url}/v1/hooks/nope/pause`, { method: 'POST' });
      expect(res.status).toBe(404);
      expect((await fetch(`${server.url}/v1/hooks/nope`, { method: 'DELETE' })).status).toBe(404);
      expect((await fetch(`${server.url}/v1/hooks/bad%20name`)).status).toBe(400);
    });
  });
}
