import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MusterClient } from '../../src/client/muster-client.js';
import type { JobView } from '../../src/client/job-types.js';
import { MusterServer } from '../../src/server/muster-server.js';
import { assertBuilt } from '../cli/cli-harness.js';
import type { RunningCli } from '../cli/cli-harness.js';
import { eventually } from '../conformance/harness.js';
import { spawnAgent } from '../support/agent-process.js';

/**
 * Three real `muster agent` processes on this machine, enrolled with one
 * enrolment token, running real commands for jobs: output captured, a command
 * not allowlisted and arguments the pattern refuses rejected, a failing command,
 * concurrency 1 serialising, abort reaching the command's whole process group,
 * an agent killed mid-job (unreachable; failed when it comes back at once), a
 * server restarted mid-job, quorum, output
 * streamed while the command still runs.
 */
describe('muster agent: three real agents', { timeout: 90_000 }, () => {
  let server: MusterServer;
  let admin: MusterClient;
  let dir: string;
  let dataDir: string;
  let adminToken: string;
  const agents = new Map<string, RunningCli>();

  const startServer = async (port = 0) => {
    server = await MusterServer.start({
      store: { kind: 'sqlite', dataDir },
      port,
      logger: false,
      auth: { adminToken, adminTokenFile: null },
      jobTickMs: 100,
    });
    admin = new MusterClient({ endpoints: server.url, token: adminToken });
  };

  const startAgent = (name: string, url = server.url) => {
    const cli = spawnAgent({
      server: url,
      name,
      dir,
      attrs: { role: 'web' },
      tags: [name === 'web-1' ? 'canary' : 'main'],
      grace: '2s',
    });
    agents.set(name, cli);
    return cli;
  };

  const run = async (command: string, args: string[] = [], extra: Record<string, unknown> = {}): Promise<JobView> => {
    const job = await admin.startJob({ query: 'role:web', command, args, ...extra });
    let view: JobView | undefined;
    await eventually(
      async () => {
        view = await admin.getJob(job.id);
        expect(['complete', 'failed', 'quorum_failed', 'aborted', 'timed_out']).toContain(view.state);
      },
      20_000,
      100,
    );
    return view as JobView;
  };

  beforeAll(async () => {
    assertBuilt();
    dir = mkdtempSync(join(tmpdir(), 'muster-agents-'));
    dataDir = join(dir, 'data');
    adminToken = 'mst_00000000a9e1_' + 'Q'.repeat(43);
    writeFileSync(
      join(dir, 'allowlist.json'),
      JSON.stringify({
        hello: { argv: ['sh', '-c', 'echo "hello from $MUSTER_NODE"; echo second line'] },
        greet: { argv: ['echo', 'hi'], args: '^[a-z]+$' },
        fail: { argv: ['sh', '-c', 'echo broken >&2; exit 3'] },
        nap: { argv: ['sh', '-c', 'echo start $(date +%s%N); sleep 0.4; echo end $(date +%s%N)'] },
        drip: {
          argv: ['sh', '-c', `echo first; while [ ! -f ${dir}/go-$MUSTER_JOB_ID ]; do sleep 0.05; done; echo second`],
        },
        long: {
          argv: ['sh', '-c', `sleep 60 & echo $! > ${dir}/child-$MUSTER_NODE; echo $$ > ${dir}/pid-$MUSTER_NODE; wait`],
        },
      }),
    );
    await startServer();
    const { token } = await admin.createToken({ role: 'enrol', uses: 3 });
    writeFileSync(join(dir, 'enrol.token'), token);
    for (const name of ['web-1', 'web-2', 'web-3']) startAgent(name);
    await eventually(async () => {
      const nodes = await admin.listNodes('role:web');
      expect(nodes.map((n) => `${n.name}:${n.status}`)).toEqual(['web-1:up', 'web-2:up', 'web-3:up']);
    }, 30_000);
  }, 60_000);

  afterAll(async () => {
    for (const cli of agents.values()) cli.child.kill('SIGKILL');
    await server?.stop();
  });

  it('enrolled once each (the token is spent), with facts detected and their own node tokens', async () => {
    const node = await admin.getNode('web-2');
    expect(node.facts).toMatchObject({ os: 'linux', commands: ['hello', 'greet', 'fail', 'nap', 'drip', 'long'] });
    expect(typeof node.facts.cpus).toBe('number');
    expect(readFileSync(join(dir, 'state-web-2', 'node.token'), 'utf8')).toMatch(/^mst_/);
    // Three uses, three agents: the enrolment token is gone.
    expect((await admin.listTokens()).some((t) => t.role === 'enrol')).toBe(false);
    // A node token cannot see another node's job.
    const web2 = new MusterClient({
      endpoints: server.url,
      token: readFileSync(join(dir, 'state-web-2', 'node.token'), 'utf8').trim(),
    });
    const job = await admin.startJob({ query: 'name:web-1', command: 'hello' });
    await expect(web2.getJob(job.id)).rejects.toMatchObject({ code: 'job_not_found' });
    expect((await web2.listNodes()).map((n) => n.name)).toEqual(['web-2']);
  });

  it('runs a command on every node and keeps its output per node', async () => {
    const job = await run('hello');
    expect(job.state).toBe('complete');
    expect(job.counts.succeeded).toBe(3);
    const out = await admin.jobOutput(job.id, 'web-3');
    expect(out.chunks.map((c) => c.data).join('')).toBe('hello from web-3\nsecond line\n');
  });

  it('streams output live: the first line of a running command arrives before it exits', async () => {
    const job = await admin.startJob({ query: 'role:web', command: 'drip' });
    const firsts = new Set<string>();
    const seconds = new Set<string>();
    let ended = false;
    for await (const event of admin.jobEvents(job.id, { signal: AbortSignal.timeout(60_000) })) {
      if (event.type === 'node') expect(event.node.state === 'succeeded' && firsts.size < 3).toBe(false);
      if (event.type === 'output' && event.chunk.data.includes('first')) {
        firsts.add(event.chunk.node);
        // Every node is still running (it waits for this file): what arrived was streamed, not kept until the end.
        if (firsts.size === 3) writeFileSync(join(dir, `go-${job.id}`), '');
      }
      if (event.type === 'output' && event.chunk.data.includes('second')) seconds.add(event.chunk.node);
      if (event.type === 'end') ended = true;
    }
    expect(ended).toBe(true);
    expect([...firsts].sort()).toEqual(['web-1', 'web-2', 'web-3']);
    expect([...seconds].sort()).toEqual(['web-1', 'web-2', 'web-3']);
    expect((await admin.getJob(job.id)).state).toBe('complete');
  });

  it('rejects what the allowlist does not allow, and arguments its pattern refuses', async () => {
    const notListed = await run('rm', ['-rf', '/']);
    expect(notListed.state).toBe('quorum_failed');
    const refused = await run('greet', ['BAD!']);
    expect(refused.state).toBe('failed');
    expect(refused.nodeStates?.every((n) => n.state === 'rejected' && /does not match/.test(n.reason ?? ''))).toBe(
      true,
    );
    const allowed = await run('greet', ['world']);
    expect(allowed.state).toBe('complete');
    expect((await admin.jobOutput(allowed.id, 'web-1')).chunks.map((c) => c.data).join('')).toBe('hi world\n');
  });

  it('a failing command fails its node with its exit code; the failure threshold stops the rollout', async () => {
    const job = await run('fail', [], { concurrency: 1, failureThreshold: 0 });
    expect(job.state).toBe('failed');
    const states = (job.nodeStates ?? []).map((n) => n.state).sort();
    // The first node failed; the other two were never started (aborted before they ran).
    expect(states).toEqual(['aborted', 'aborted', 'failed']);
    expect(job.nodeStates!.filter((n) => n.state === 'aborted').every((n) => n.startedAt === undefined)).toBe(true);
    const failed = job.nodeStates!.find((n) => n.state === 'failed')!;
    expect(failed.exitCode).toBe(3);
    expect((await admin.jobOutput(job.id, failed.node)).chunks[0]).toMatchObject({
      stream: 'stderr',
      data: 'broken\n',
    });
  });

  it('concurrency 1 runs one node at a time', async () => {
    const job = await run('nap', [], { concurrency: 1 });
    expect(job.state).toBe('complete');
    const spans = await Promise.all(
      ['web-1', 'web-2', 'web-3'].map(async (node) => {
        const text = (await admin.jobOutput(job.id, node)).chunks.map((c) => c.data).join('');
        const [, start, end] = /start (\d+)\nend (\d+)/.exec(text) ?? [];
        return [Number(start), Number(end)] as const;
      }),
    );
    spans.sort((a, b) => a[0] - b[0]);
    for (let i = 1; i < spans.length; i++) expect(spans[i]![0]).toBeGreaterThanOrEqual(spans[i - 1]![1]);
  });

  it('abort stops the command and everything it started (its process group) on every node', async () => {
    const job = await admin.startJob({ query: 'role:web', command: 'long', grace: '1s' });
    await eventually(async () => expect((await admin.getJob(job.id)).counts.running).toBe(3), 15_000);
    await eventually(() => expect(readFileSync(join(dir, 'child-web-1'), 'utf8')).toMatch(/\d+/));
    const child = Number(readFileSync(join(dir, 'child-web-1'), 'utf8'));
    expect(() => process.kill(child, 0)).not.toThrow();
    await admin.abortJob(job.id);
    await eventually(async () => expect((await admin.getJob(job.id)).state).toBe('aborted'), 15_000);
    await eventually(() => expect(() => process.kill(child, 0)).toThrow(), 5_000);
  });

  it('an agent killed mid-job makes its node unreachable within a session TTL', async () => {
    const job = await admin.startJob({ query: 'role:web', command: 'long', grace: '1s', failureThreshold: 3 });
    await eventually(async () => expect((await admin.getJob(job.id)).counts.running).toBe(3), 15_000);
    agents.get('web-3')!.child.kill('SIGKILL');
    await eventually(
      async () => {
        const view = await admin.getJob(job.id);
        expect(view.nodeStates?.find((n) => n.node === 'web-3')?.state).toBe('unreachable');
      },
      15_000,
      200,
    );
    await admin.abortJob(job.id);
    await eventually(async () => expect((await admin.getJob(job.id)).state).toBe('aborted'), 15_000);
    // With web-3 down, a job that needs every matched node misses its quorum.
    const quorum = await run('hello', [], { quorum: '100%' });
    expect(quorum.state).toBe('quorum_failed');
    // The agent comes back (its node token is in its state folder: no enrolment needed).
    startAgent('web-3');
    await eventually(async () => expect((await admin.getNode('web-3')).status).toBe('up'), 20_000);
  });

  it('an agent killed mid-job and started again at once reports the command it lost as failed: the job fails', async () => {
    const job = await admin.startJob({ query: 'name:web-2', command: 'long', grace: '1s' });
    await eventually(async () => expect((await admin.getJob(job.id)).counts.running).toBe(1), 15_000);
    const killed = agents.get('web-2')!;
    killed.child.kill('SIGKILL');
    await killed.exited;
    // The command was left behind; its agent's journal says it never ended.
    for (const file of ['child-web-2', 'pid-web-2']) {
      try {
        process.kill(Number(readFileSync(join(dir, file), 'utf8')), 'SIGKILL');
      } catch {
        // Already gone.
      }
    }
    startAgent('web-2');
    const view = await eventually(
      async () => {
        const current = await admin.getJob(job.id);
        expect(current.state, JSON.stringify(current.nodeStates)).toBe('failed');
        return current;
      },
      20_000,
      200,
    );
    const node = view.nodeStates?.find((n) => n.node === 'web-2');
    expect(node?.state).toBe('failed');
    expect(node?.exitCode).toBeNull();
    await eventually(async () => expect((await admin.getNode('web-2')).status).toBe('up'), 20_000);
  });

  it('a server restarted mid-job: the agents reconnect and report what finished meanwhile', async () => {
    const job = await admin.startJob({ query: 'role:web', command: 'nap' });
    await eventually(async () => expect((await admin.getJob(job.id)).counts.running).toBeGreaterThan(0), 15_000, 20);
    const port = Number(new URL(server.url).port);
    await server.stop();
    await new Promise((r) => setTimeout(r, 800));
    await startServer(port);
    await eventually(async () => expect((await admin.getJob(job.id)).state).toBe('complete'), 30_000, 200);
  });

  it('SIGTERM stops an agent gracefully: its node goes down, the process exits 0', async () => {
    const cli = agents.get('web-2')!;
    cli.child.kill('SIGTERM');
    const exit = await cli.exited;
    expect(exit.code).toBe(0);
    expect(cli.stderr).toMatch(/state STOPPED/);
    await eventually(async () => expect((await admin.getNode('web-2')).status).toBe('down'), 10_000);
  });
});

describe('the allowlist', () => {
  it('anchors every args pattern: an argument must match it whole', async () => {
    const { parseAllowlist, resolveCommand } = await import('../../src/agent/allowlist.js');
    const list = parseAllowlist({ greet: { argv: ['echo'], args: '[a-z]+' }, bare: { argv: ['true'] } });
    expect(resolveCommand(list, 'greet', ['world'])).toMatchObject({ ok: true, argv: ['echo', 'world'] });
    expect(resolveCommand(list, 'greet', ['$(rm -rf /)x'])).toMatchObject({ ok: false });
    expect(resolveCommand(list, 'bare', ['x'])).toMatchObject({ ok: false, reason: /takes no extra arguments/ });
    expect(resolveCommand(list, 'rm', [])).toMatchObject({ ok: false, reason: /not in this node's allowlist/ });
    expect(() => parseAllowlist({ x: { argv: 'sh -c "boom"' } })).toThrow(/argv is a non-empty list of strings/);
    expect(() => parseAllowlist({ x: { argv: ['a'], shell: true } })).toThrow(/unknown field "shell"/);
    expect(() => parseAllowlist({ x: { argv: ['a'], args: '(' } })).toThrow(/not a valid regular expression/);
  });
});
