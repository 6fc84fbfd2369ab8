import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { ServerProcess } from './cli-harness.js';
import { assertBuilt, muster as runMuster, spawnMuster, startServerProcess, TEST_ADMIN_TOKEN } from './cli-harness.js';

/** The primitives through the real `muster` binary against a real server process. */
describe('muster primitives (real processes)', () => {
  let dir: string;
  let server: ServerProcess;
  const extra: ServerProcess[] = [];
  const muster = (args: string[], env: Record<string, string> = {}) =>
    runMuster(args, { env: { MUSTER_ENDPOINT: server.url, ...env } });
  const spawn = (args: string[], url = server.url) => spawnMuster(args, { env: { MUSTER_ENDPOINT: url } });
  /** Until the server has `count` blocking calls waiting (its muster_blocked_requests gauge). */
  const blockedCalls = async (count: number) => {
    for (let i = 0; i < 200; i++) {
      const metrics = await (
        await fetch(`${server.url}/metrics`, { headers: { authorization: `Bearer ${TEST_ADMIN_TOKEN}` } })
      ).text();
      if (new RegExp(`^muster_blocked_requests ${count}$`, 'm').test(metrics)) return;
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
    throw new Error(`the server never had ${count} blocked calls`);
  };

  beforeAll(async () => {
    assertBuilt();
    dir = mkdtempSync(join(tmpdir(), 'muster-prim-cli-'));
    server = await startServerProcess(['--data-dir', join(dir, 'data')]);
  });
  afterEach(async () => {
    for (const s of extra.splice(0)) if (s.cli.child.exitCode === null) await s.cli.stop('SIGKILL');
  });
  afterAll(async () => {
    await server.cli.stop('SIGTERM');
    rmSync(dir, { recursive: true, force: true });
  });

  it('lock: two holders never overlap, and each gets a larger fencing token', async () => {
    const log = join(dir, 'lock.log');
    writeFileSync(log, '');
    const script = `echo "start $MUSTER_LOCK_TOKEN" >> ${log}; sleep 0.4; echo "end $MUSTER_LOCK_TOKEN" >> ${log}`;
    const runs = await Promise.all([1, 2, 3].map(() => muster(['lock', 'serial', '--', 'sh', '-c', script])));
    expect(runs.map((r) => r.code)).toEqual([0, 0, 0]);
    const lines = readFileSync(log, 'utf8').trim().split('\n');
    expect(lines).toHaveLength(6);
    const tokens: number[] = [];
    for (let i = 0; i < lines.length; i += 2) {
      const [start, end] = [lines[i], lines[i + 1]];
      expect(start?.startsWith('start ')).toBe(true);
      expect(end).toBe(start?.replace('start', 'end'));
      tokens.push(Number(start?.split(' ')[1]));
    }
    expect([...tokens].sort((a, b) => a - b)).toEqual(tokens);
    expect(new Set(tokens).size).toBe(3);
  });

  it("lock: exits with the command's code", async () => {
    expect((await muster(['lock', 'code', '--', 'sh', '-c', 'exit 9'])).code).toBe(9);
  });

  it('lock: the command is stopped when the server is gone past the TTL, and muster exits 5', async () => {
    const own = await startServerProcess(['--data-dir', ':memory:']);
    extra.push(own);
    const holder = spawn(
      [
        'lock',
        'doomed',
        '--ttl',
        '2s',
        '--grace',
        '2s',
        '--',
        'sh',
        '-c',
        'trap "echo got-term; exit 143" TERM; echo started; while true; do sleep 0.1; done',
      ],
      own.url,
    );
    await holder.waitFor(/started/);
    const killedAt = Date.now();
    await own.cli.stop('SIGKILL');
    const result = await holder.exited;
    expect(result.stdout).toContain('got-term');
    expect(result.code).toBe(5);
    expect(result.stderr).toMatch(/lost/);
    expect(Date.now() - killedAt).toBeLessThan(8000);
  });

  it('lock: without a command, prints the token and holds until interrupted', async () => {
    const holder = spawn(['lock', 'held']);
    const match = await holder.waitFor(/token (\d+)/);
    const waiting = await muster(['lock', 'held', '--timeout', '500ms', '--', 'true']);
    expect(waiting.code).toBe(3);
    await holder.stop('SIGINT');
    expect((await muster(['lock', 'held', '--timeout', '5s', '--', 'true'])).code).toBe(0);
    expect(Number(match[1])).toBeGreaterThan(0);
  });

  it('lock --lock-delay: after a holder with a delay died without releasing, the next one waits the delay', async () => {
    const holder = spawn([
      'lock',
      'delayed',
      '--ttl',
      '1s',
      '--lock-delay',
      '3s',
      '--',
      'sh',
      '-c',
      'echo started; sleep 4',
    ]);
    await holder.waitFor(/started/);
    const next = spawn(['lock', 'delayed', '--', 'sh', '-c', 'echo got-it']);
    await new Promise((resolve) => setTimeout(resolve, 300));
    const killedAt = Date.now();
    await holder.stop('SIGKILL');
    await next.waitFor(/got-it/);
    // The session expires about 1 s after the kill, then 3 s of delay.
    expect(Date.now() - killedAt).toBeGreaterThanOrEqual(3500);
    expect((await next.exited).code).toBe(0);
    expect((await muster(['lock', 'delayed', '--lock-delay', 'soon', '--', 'true'])).code).toBe(2);
  });

  it('once: five processes run the command once and all exit with its code', async () => {
    const log = join(dir, 'once.log');
    writeFileSync(log, '');
    const runs = await Promise.all(
      [1, 2, 3, 4, 5].map(() =>
        muster([
          'once',
          'schema-v42',
          '--show-output',
          '--',
          'sh',
          '-c',
          `echo ran >> ${log}; sleep 0.3; echo migrated; exit 7`,
        ]),
      ),
    );
    expect(runs.map((r) => r.code)).toEqual([7, 7, 7, 7, 7]);
    expect(readFileSync(log, 'utf8').trim().split('\n')).toEqual(['ran']);
    expect(runs.every((r) => r.stdout.includes('migrated'))).toBe(true);
    const late = await muster(['once', 'schema-v42', '--', 'sh', '-c', `echo ran >> ${log}`]);
    expect(late.code).toBe(7);
    expect((await muster(['once', 'schema-v42', '--reset'])).code).toBe(0);
    expect((await muster(['once', 'schema-v42', '--', 'true'])).code).toBe(0);
  });

  it('wait: times out with exit 3, and returns the value once signalled', async () => {
    const timedOut = await muster(['wait', '/ephemerals/db/ready', '--equals', 'ready', '--timeout', '300ms']);
    expect(timedOut.code).toBe(3);
    expect(timedOut.stderr).toMatch(/timed out/);
    const waiter = spawn(['wait', '/ephemerals/db/ready', '--equals', 'ready', '--timeout', '20s']);
    await blockedCalls(1);
    expect(waiter.child.exitCode).toBeNull();
    expect((await muster(['signal', '/ephemerals/db/ready', 'ready'])).code).toBe(0);
    const done = await waiter.exited;
    expect(done.code).toBe(0);
    expect(done.stdout.trim()).toBe('ready');
  });

  it('elect and leader: the first leads, the next takes over when it exits', async () => {
    const first = spawn(['elect', 'k8s-master', '--value', '10.0.0.1']);
    await first.waitFor(/leading election/);
    const second = spawn([
      'elect',
      'k8s-master',
      '--value',
      '10.0.0.2',
      '--',
      'sh',
      '-c',
      'echo "token $MUSTER_ELECTION_TOKEN"; sleep 0.2',
    ]);
    expect((await muster(['leader', 'k8s-master'])).stdout.trim()).toBe('10.0.0.1');
    await first.stop('SIGINT');
    const result = await second.exited;
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/token \d+/);
    const none = await muster(['leader', 'k8s-master']);
    expect(none.code).toBe(1);
  });

  it('barrier: three participants all return once the third arrives', async () => {
    const a = spawn(['barrier', 'hadoop-up', '--count', '3', '--timeout', '20s']);
    const b = spawn(['barrier', 'hadoop-up', '--count', '3', '--timeout', '20s']);
    await blockedCalls(2);
    expect(a.child.exitCode).toBeNull();
    expect(b.child.exitCode).toBeNull();
    const c = await muster(['barrier', 'hadoop-up', '--count', '3']);
    expect(c.code).toBe(0);
    expect((await a.exited).code).toBe(0);
    expect((await b.exited).code).toBe(0);
    expect((await muster(['barrier', 'hadoop-up', '--count', '5', '--timeout', '300ms'])).code).not.toBe(0);
  });

  it('semaphore: contenders that disagree on the limit get an error', async () => {
    const holder = spawn(['semaphore', 'web-restart', '--limit', '2']);
    await holder.waitFor(/holding a slot/);
    const other = await muster(['semaphore', 'web-restart', '--limit', '3', '--', 'true']);
    expect(other.code).toBe(1);
    expect(other.stderr).toMatch(/limit/);
    expect((await muster(['semaphore', 'web-restart', '--limit', '2', '--', 'true'])).code).toBe(0);
    await holder.stop('SIGINT');
  });

  it('every primitive command has --help with an example, and bad names are usage errors', async () => {
    for (const command of ['lock', 'semaphore', 'once', 'elect', 'leader', 'barrier', 'wait', 'signal']) {
      const help = await muster([command, '--help']);
      expect(help.code).toBe(0);
      expect(help.stdout).toMatch(/Examples?:\n\s+\$ muster /);
    }
    expect((await muster(['lock', 'bad/name', '--', 'true'])).code).toBe(2);
  });
});
