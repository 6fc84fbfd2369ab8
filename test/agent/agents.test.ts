/**
 * Three real `muster agent` processes against a real `muster server`: enrolment,
 * registration, jobs run through the allowlist (output, failure, rejection of a
 * command not allowlisted and of arguments the pattern refuses), abort killing
 * the command's whole process group, an agent killed -9 going down within its
 * session TTL, a node token unable to register as another node, and the agents
 * registering again after the server restarts.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MusterClient } from '../../src/client/muster-client.js';
import type { JobView } from '../../src/client/job-types.js';
import { eventually } from '../conformance/harness.js';
import type { RunningCli, ServerProcess } from '../cli/cli-harness.js';
import { TEST_ADMIN_TOKEN, assertBuilt, muster, spawnMuster, startServerProcess } from '../cli/cli-harness.js';

const dir = mkdtempSync(join(tmpdir(), 'muster-agents-'));
const dataDir = join(dir, 'data');
const pidFile = join(dir, 'bg.pid');
const allowlist = join(dir, 'allowlist.json');
writeFileSync(
  allowlist,
  JSON.stringify({
    hello: { argv: ['echo', 'hello from'], env: { GREETING: 'hi' } },
    fail: { argv: ['sh', '-c', 'echo failing >&2; exit 3'] },
    greet: { argv: ['echo'], args: '^[a-z]+$' },
    // A command that leaves a background child: abort must reach both.
    sleeper: { argv: ['sh', '-c', `sleep 300 & echo $! > "$0.$NODE"; wait`, pidFile] },
  }),
);

let port = 0;
let server: ServerProcess;
let admin: MusterClient;
const agents = new Map<string, RunningCli>();
const NAMES = ['web-1', 'web-2', 'db-1'];

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const p = (s.address() as { port: number }).port;
      s.close(() => resolve(p));
    });
  });
}

function startAgent(name: string, enrolFile: string): RunningCli {
  const attrs = name.startsWith('web') ? ['--attr', 'role=web'] : ['--attr', 'role=db'];
  const cli = spawnMuster(
    [
      'agent',
      '--server',
      `http://127.0.0.1:${port}`,
      '--name',
      name,
      '--tag',
      'test',
      ...attrs,
      '--allowlist',
      allowlist,
      '--enrol-token-file',
      enrolFile,
      '--state-dir',
      join(dir, `state-${name}`),
      '--session-ttl',
      '2',
      '--stop-grace',
      '2',
    ],
    { env: { MUSTER_TOKEN: '', NODE: name } },
  );
  agents.set(name, cli);
  return cli;
}

async function startServer(): Promise<void> {
  server = await startServerProcess(['--data-dir', dataDir], {}, port);
}

async function finished(id: string, timeoutMs = 20_000): Promise<JobView> {
  return eventually(async () => {
    const job = await admin.getJob(id);
    expect(['complete', 'failed', 'aborted', 'timed_out', 'quorum_failed']).toContain(job.state);
    return job;
  }, timeoutMs);
}

beforeAll(async () => {
  assertBuilt();
  port = await freePort();
  await startServer();
  admin = new MusterClient({ endpoints: [server.url], token: TEST_ADMIN_TOKEN });
  const enrol = await admin.createToken({ role: 'enrol', uses: 3 });
  const enrolFile = join(dir, 'enrol.token');
  writeFileSync(enrolFile, enrol.token + '\n');
  for (const name of NAMES) startAgent(name, enrolFile);
  await Promise.all([...agents.values()].map((a) => a.waitFor(/: streaming/, 'stderr')));
}, 60_000);

afterAll(async () => {
  for (const a of agents.values())
    if (a.child.exitCode === null && a.child.signalCode === null) a.child.kill('SIGKILL');
  await server?.cli.stop('SIGTERM');
  try {
    for (const name of NAMES) {
      const pid = Number(readFileSync(`${pidFile}.${name}`, 'utf8'));
      if (pid > 0) process.kill(pid, 'SIGKILL');
    }
  } catch {
    // gone already
  }
  rmSync(dir, { recursive: true, force: true });
});

describe('muster agent, three real agents', () => {
  it('enrol once (node token 0600), register with tags, attrs and facts, and are listed up', async () => {
    for (const name of NAMES) {
      const file = join(dir, `state-${name}`, 'node.token');
      expect(statSync(file).mode & 0o777).toBe(0o600);
    }
    const nodes = await admin.listNodes();
    expect(nodes.map((n) => [n.name, n.status])).toEqual([
      ['db-1', 'up'],
      ['web-1', 'up'],
      ['web-2', 'up'],
    ]);
    const web = nodes.find((n) => n.name === 'web-1')!;
    expect(web.tags).toEqual(['test']);
    expect(web.attrs).toEqual({ role: 'web' });
    expect(web.facts).toMatchObject({ os: process.platform, agentVersion: expect.any(String) });
    expect(web.facts.commands).toEqual(['hello', 'fail', 'greet', 'sleeper']);
    expect((await admin.listNodes('role:web')).map((n) => n.name)).toEqual(['web-1', 'web-2']);
    const listed = await muster(['nodes', 'role:db', '--endpoint', server.url]);
    expect(listed.code).toBe(0);
    expect(listed.stdout).toMatch(/^NAME\s+STATUS\s+LAST SEEN\s+TAGS\s+ATTRS\ndb-1\s+up\s+now\s+test\s+role=db\n$/);
    const bad = await muster(['nodes', 'role:db AND', '--endpoint', server.url]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/position 12/);
  });

  it('a node token cannot register as another node, nor on another token’s lease', async () => {
    const token = readFileSync(join(dir, 'state-web-1', 'node.token'), 'utf8').trim();
    const asWeb1 = new MusterClient({ endpoints: [server.url], token });
    const lease = await asWeb1.grantLease(30);
    await expect(
      asWeb1.registerNode('web-2', { lease: lease.id, tags: [], attrs: {}, facts: {} }),
    ).rejects.toMatchObject({
      code: 'forbidden',
    });
    expect((await admin.getNode('web-2')).tags).toEqual(['test']);
    await asWeb1.revokeLease(lease.id);
  });

  it('runs an allowlisted command on every matching node, output captured; a failing one fails', async () => {
    const job = await admin.startJob({ query: 'tag:test', command: 'hello', timeout: '20s' });
    const done = await finished(job.id);
    expect(done.state).toBe('complete');
    expect(done.nodes.sort()).toEqual(['db-1', 'web-1', 'web-2']);
    const out = await admin.jobOutput(job.id, 'web-2');
    expect(out.chunks.map((c) => c.data).join('')).toBe('hello from\n');
    const failing = await finished((await admin.startJob({ query: 'name:db-1', command: 'fail' })).id);
    expect(failing.state).toBe('failed');
    const node = failing.nodeStates?.find((n) => n.node === 'db-1');
    expect(node).toMatchObject({ state: 'failed', exitCode: 3 });
    expect((await admin.jobOutput(failing.id, 'db-1')).chunks.map((c) => c.data).join('')).toBe('failing\n');
  });

  it('rejects what the allowlist does not allow: an unknown command, arguments the pattern refuses', async () => {
    // The agent reports its allowlist's names (facts.commands): the server does not even ask.
    const unknown = await finished((await admin.startJob({ query: 'name:web-1', command: 'rm-rf' })).id);
    expect(unknown.state).toBe('quorum_failed');
    const refused = await finished(
      (await admin.startJob({ query: 'name:web-1', command: 'greet', args: ['World; rm -rf /'] })).id,
    );
    expect(refused.nodeStates?.[0]).toMatchObject({ state: 'rejected' });
    expect(refused.nodeStates?.[0]?.reason).toMatch(/does not match the allowlist's pattern/);
    const fine = await finished((await admin.startJob({ query: 'name:web-1', command: 'greet', args: ['world'] })).id);
    expect(fine.state).toBe('complete');
    expect((await admin.jobOutput(fine.id, 'web-1')).chunks.map((c) => c.data).join('')).toBe('world\n');
  });

  it('abort stops the command and everything it started (its process group)', async () => {
    const job = await admin.startJob({ query: 'name:web-2', command: 'sleeper', grace: '1s' });
    const bgFile = `${pidFile}.web-2`;
    await eventually(() => expect(existsSync(bgFile) && readFileSync(bgFile, 'utf8').trim() !== '').toBe(true));
    const bg = Number(readFileSync(bgFile, 'utf8'));
    expect(() => process.kill(bg, 0)).not.toThrow();
    await admin.abortJob(job.id);
    const done = await finished(job.id);
    expect(done.state).toBe('aborted');
    await eventually(() => expect(() => process.kill(bg, 0)).toThrow());
  });

  it('an agent killed -9 is down within its session TTL; the others stay up', async () => {
    const victim = agents.get('db-1')!;
    victim.child.kill('SIGKILL');
    await victim.exited;
    const killedAt = Date.now();
    await eventually(async () => expect((await admin.getNode('db-1')).status).toBe('down'), 10_000);
    // TTL 2 s; the store's expiry sweep and this poll add a little.
    expect(Date.now() - killedAt).toBeLessThan(4_500);
    expect((await admin.listNodes('status:up')).map((n) => n.name)).toEqual(['web-1', 'web-2']);
  });

  it('after a server restart the agents register again and run jobs', async () => {
    await server.cli.stop('SIGTERM');
    // Down longer than the session TTL: the leases are gone when it comes back.
    await new Promise((r) => setTimeout(r, 3000));
    await startServer();
    admin = new MusterClient({ endpoints: [server.url], token: TEST_ADMIN_TOKEN });
    await eventually(async () => {
      const up = (await admin.listNodes('status:up')).map((n) => n.name);
      expect(up).toEqual(['web-1', 'web-2']);
    }, 30_000);
    const job = await finished((await admin.startJob({ query: 'role:web', command: 'hello' })).id);
    expect(job.state).toBe('complete');
  }, 60_000);

  it('a bad allowlist stops the agent at start with a message naming the entry and field (exit 2)', async () => {
    const bad = join(dir, 'bad-allowlist.json');
    writeFileSync(bad, JSON.stringify({ deploy: { argv: ['deploy'], shell: 'bash -c' } }));
    const result = await muster(['agent', '--server', server.url, '--allowlist', bad, '--state-dir', join(dir, 'x')]);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/"deploy": unknown field "shell"/);
  });

  it('SIGTERM: the agent stops and its node goes down at once', async () => {
    const agent = agents.get('web-1')!;
    const result = await agent.stop('SIGTERM');
    expect(result.code).toBe(0);
    expect(result.stderr).toMatch(/web-1: stopping/);
    expect(result.stderr).toMatch(/web-1: stopped/);
    expect((await admin.getNode('web-1')).status).toBe('down');
  });
});
