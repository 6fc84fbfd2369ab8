import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { ROOT, assertBuilt } from '../cli/cli-harness.js';
import type { TestApp } from '../server/harness.js';
import { makeApp } from '../server/harness.js';

const run = promisify(execFile);

// A program outside the repository, with muster installed as a dependency
// (node_modules/muster links to this checkout, as `npm install /path/to/muster` would).
describe("the package's public client entry point, muster/client", () => {
  let dir: string;
  let server: TestApp;

  beforeAll(async () => {
    assertBuilt();
    dir = mkdtempSync(join(tmpdir(), 'muster-consumer-'));
    mkdirSync(join(dir, 'node_modules'));
    symlinkSync(ROOT, join(dir, 'node_modules', 'muster'), 'dir');
    writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 'consumer', type: 'module', private: true }));
    server = await makeApp();
    await server.listen();
  });

  afterAll(async () => {
    await server?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test('imports MusterClient and Session by package name and talks to a server', async () => {
    writeFileSync(
      join(dir, 'consumer.mjs'),
      `import { MusterClient, Session, KeyNotFoundError } from 'muster/client';
const client = new MusterClient({ endpoints: process.argv[2] });
const session = await Session.start(client, { ttlSeconds: 10 });
await client.put('/consumer/greeting', 'hello', { lease: session.leaseId });
const text = await client.getText('/consumer/greeting');
await session.close();
let gone = false;
try { await client.get('/consumer/greeting'); } catch (e) { gone = e instanceof KeyNotFoundError; }
console.log(JSON.stringify({ text, gone }));`,
    );
    const { stdout } = await run(process.execPath, ['consumer.mjs', `http://127.0.0.1:${server.port}`], { cwd: dir });
    expect(JSON.parse(stdout)).toEqual({ text: 'hello', gone: true });
  });

  test('its type declarations resolve under NodeNext and type-check a program and the docs example', async () => {
    writeFileSync(
      join(dir, 'consumer.ts'),
      `import { MusterClient, Session } from 'muster/client';
import type { LockHandle, WatchEvent } from 'muster/client';
export async function demo(): Promise<number> {
  const client = new MusterClient({ endpoints: 'http://127.0.0.1:4100' });
  const session: Session = await Session.start(client, { ttlSeconds: 10 });
  const lock: LockHandle = await client.acquireLock('demo', session.leaseId);
  for await (const event of client.watch('/demo/')) { const e: WatchEvent = event; void e; break; }
  return lock.token;
}
// @ts-expect-error the client has no such method: proves the declarations are really read
new MusterClient({ endpoints: 'x' }).noSuchMethod();
`,
    );
    // The worked example of docs/client.md, as a reader would paste it.
    const docs = readFileSync(join(ROOT, 'docs', 'client.md'), 'utf8');
    const example = /## A worked example[\s\S]*?```ts\n([\s\S]*?)```/.exec(docs)?.[1];
    expect(example, 'docs/client.md has a worked example').toBeTruthy();
    writeFileSync(join(dir, 'docs-example.ts'), `${example}\nexport {};\n`);
    writeFileSync(
      join(dir, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: {
          module: 'NodeNext',
          moduleResolution: 'NodeNext',
          target: 'ES2022',
          strict: true,
          noEmit: true,
          skipLibCheck: true,
          types: ['node'],
          typeRoots: [join(ROOT, 'node_modules', '@types')],
        },
        files: ['consumer.ts', 'docs-example.ts'],
      }),
    );
    const tsc = join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
    const result = await run(process.execPath, [tsc, '-p', dir], { cwd: dir }).then(
      () => '',
      (error: { stdout?: string }) => error.stdout ?? String(error),
    );
    expect(result).toBe('');
  });
});
