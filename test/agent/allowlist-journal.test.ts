import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { AllowlistError, loadAllowlist, parseAllowlist, resolveAssignment } from '../../src/agent/allowlist.js';
import { Journal } from '../../src/agent/journal.js';
import type { Assignment } from '../../src/api/agent-protocol.js';

const dirs: string[] = [];
const scratch = () => {
  const dir = mkdtempSync(join(tmpdir(), 'muster-agent-unit-'));
  dirs.push(dir);
  return dir;
};
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

const assignment = (command: string, args: string[] = []): Assignment => ({
  jobId: 'j1',
  command,
  args,
  timeoutMs: 60_000,
  graceMs: 1000,
  state: 'run',
});

describe('allowlist', () => {
  const list = parseAllowlist({
    'chef-client': { argv: ['chef-client'] },
    'run-recipe': { argv: ['chef-client', '-o'], args: '^recipe\\[[a-z0-9_:]+\\]$', timeout: '5m' },
  });

  it('maps a command to its argv, extra arguments only through the pattern', () => {
    expect(resolveAssignment(list, assignment('chef-client'))).toMatchObject({ ok: true, argv: ['chef-client'] });
    expect(resolveAssignment(list, assignment('run-recipe', ['recipe[nginx::default]']))).toMatchObject({
      ok: true,
      argv: ['chef-client', '-o', 'recipe[nginx::default]'],
      timeoutMs: 60_000, // the job's is shorter than the allowlist's 5m
    });
    expect(resolveAssignment(list, assignment('run-recipe', ['recipe[x]; rm -rf /']))).toMatchObject({ ok: false });
    expect(resolveAssignment(list, assignment('chef-client', ['--anything']))).toMatchObject({
      ok: false,
      reason: expect.stringMatching(/takes no extra arguments/),
    });
    expect(resolveAssignment(list, assignment('sh', ['-c', 'id']))).toMatchObject({
      ok: false,
      reason: expect.stringMatching(/not in this node's allowlist/),
    });
  });

  it.each([
    [[], /expected an object/],
    [{ x: { argv: 'chef-client' } }, /"x": argv must be a non-empty list/],
    [{ x: { argv: [] } }, /argv must be a non-empty list/],
    [{ x: { argv: ['a'], shell: true } }, /unknown field "shell"/],
    [{ x: { argv: ['a'], args: '(' } }, /args is not a valid regular expression/],
    [{ x: { argv: ['a'], cwd: 'rel' } }, /cwd must be an absolute path/],
    [{ x: { argv: ['a'], env: { A: 1 } } }, /env\.A must be a string/],
    [{ x: { argv: ['a'], timeout: 'soon' } }, /timeout/],
    [{ x: { argv: ['a'], user: 'no-such-user-here' } }, /no such user/],
    [{ 'a b': { argv: ['a'] } }, /a command name is/],
  ])('refuses %j', (data, message) => {
    expect(() => parseAllowlist(data, 'allow.json')).toThrow(AllowlistError);
    expect(() => parseAllowlist(data, 'allow.json')).toThrow(message);
  });

  it('a file that is not JSON names the file', () => {
    const file = join(scratch(), 'allow.json');
    writeFileSync(file, '{"x": ');
    expect(() => loadAllowlist(file)).toThrow(/allow\.json: not valid JSON/);
    expect(() => loadAllowlist(join(scratch(), 'missing.json'))).toThrow(/cannot read the allowlist/);
  });
});

describe('journal', () => {
  it('keeps unacknowledged reports across a restart, in order, with their seqs', () => {
    const dir = scratch();
    const one = new Journal(dir);
    const a = one.add('j1', { type: 'started', pid: 42 });
    one.add('j1', { type: 'output', stream: 'stdout', data: 'hi\n' });
    one.add('j2', { type: 'rejected', reason: 'no' });
    one.ack(a);
    // A line cut short by a crash is ignored.
    writeFileSync(join(dir, 'journal.jsonl'), readFileSync(join(dir, 'journal.jsonl'), 'utf8') + '{"r":{"jobId"');
    const two = new Journal(dir);
    expect(two.pending.map((p) => [p.jobId, p.report.seq, p.report.type])).toEqual([
      ['j1', 1, 'output'],
      ['j2', 0, 'rejected'],
    ]);
    // Seqs go on from where they were.
    expect(two.add('j1', { type: 'exit', exitCode: 0, signal: null }).report.seq).toBe(2);
    for (const p of [...two.pending]) two.ack(p);
    expect(readFileSync(join(dir, 'journal.jsonl'), 'utf8')).toBe('');
    expect(new Journal(dir).pending).toEqual([]);
  });
});
