import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MusterServer } from '../../src/server/muster-server.js';
import { eventually } from '../conformance/harness.js';
import { Receiver } from '../hooks/receiver.js';
import { assertBuilt, muster as runMuster } from './cli-harness.js';

/** `muster hook …` through the real binary, delivering to a real receiver. */
describe('muster hook (CLI)', () => {
  let server: MusterServer;
  let receiver: Receiver;
  const muster = (args: string[]) => runMuster(args, { env: { MUSTER_ENDPOINT: server.url } });

  beforeAll(async () => {
    assertBuilt();
    receiver = await new Receiver().start();
    server = await MusterServer.start({
      store: { kind: 'sqlite', dataDir: ':memory:' },
      port: 0,
      logger: false,
      auth: 'off',
    });
  });
  afterAll(async () => {
    await server.stop();
    await receiver.stop();
  });

  it('add, list, show, deliveries, pause, resume, rm', async () => {
    const add = await muster([
      'hook',
      'add',
      'ci',
      '--prefix',
      '/deploy/',
      '--url',
      receiver.url,
      '--secret',
      's',
      '--events',
      'put',
    ]);
    expect(add.code, add.stderr).toBe(0);
    expect(add.stdout).toContain('hook ci: put under /deploy/');
    expect((await muster(['put', '/deploy/app', 'v1'])).code).toBe(0);
    await eventually(() => expect(receiver.received).toHaveLength(1), 10_000);
    const list = await muster(['hook', 'list']);
    expect(list.stdout).toMatch(/ci\s+\/deploy\/\s+\S+\s+active/);
    const show = await muster(['hook', 'show', 'ci', '--json']);
    expect(JSON.parse(show.stdout)).toMatchObject({ name: 'ci', status: 'active', secretSet: true, delivered: 1 });
    expect(show.stdout).not.toContain('"s"');
    const deliveries = await muster(['hook', 'deliveries', 'ci', '--json']);
    expect(JSON.parse(deliveries.stdout).deliveries[0]).toMatchObject({ status: 200, attempt: 1 });
    expect((await muster(['hook', 'pause', 'ci'])).stdout).toContain('hook ci: paused');
    expect((await muster(['hook', 'resume', 'ci'])).stdout).toContain('hook ci: active');
    expect((await muster(['hook', 'rm', 'ci'])).stdout).toContain('hook ci removed');
    const gone = await muster(['hook', 'show', 'ci']);
    expect(gone.code).not.toBe(0);
    expect(gone.stderr).toContain('no webhook is named "ci"');
  }, 120_000);

  it('refuses a bad URL, and --help teaches with examples', async () => {
    const bad = await muster(['hook', 'add', 'x', '--prefix', '/a/', '--url', 'ftp://nope/']);
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toContain('http');
    const help = await muster(['hook', '--help']);
    expect(help.stdout).toContain('muster hook add ci --prefix /deploy/');
    const addHelp = await muster(['hook', 'add', '--help']);
    expect(addHelp.stdout).toContain('X-Muster-Delivery');
  }, 60_000);
});
