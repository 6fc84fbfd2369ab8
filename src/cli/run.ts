import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command, CommanderError, Option } from 'commander';
import { registerDel } from './commands/del.js';
import { registerGet } from './commands/get.js';
import { registerLease } from './commands/lease.js';
import { registerLs } from './commands/ls.js';
import { registerPut } from './commands/put.js';
import { registerServer } from './commands/server.js';
import { registerSnapshot } from './commands/snapshot.js';
import { registerEnrol, registerToken } from './commands/token.js';
import { registerAudit } from './commands/audit.js';
import { registerDesired, registerGroup, registerPlan, registerState } from './commands/plans.js';
import { registerPrimitives } from './commands/primitives.js';
import { registerNodes } from './commands/nodes.js';
import { registerAgent } from './commands/agent.js';
import { registerTxn } from './commands/txn.js';
import { registerWatch } from './commands/watch.js';
import { registerBarrier } from './commands/barrier.js';
import { registerElect } from './commands/elect.js';
import { registerLeader } from './commands/leader.js';
import { registerLock } from './commands/lock.js';
import { registerOnce } from './commands/once.js';
import { registerSemaphore } from './commands/semaphore.js';
import { registerSignal } from './commands/signal.js';
import { registerWait } from './commands/wait.js';
import { registerRun } from './commands/run-job.js';
import { registerJob, registerJobs } from './commands/jobs.js';
import { registerTrigger } from './commands/trigger.js';
import { CliContext, DEFAULT_ENDPOINT } from './context.js';
import { describeError, EXIT_CODES_HELP, exitCodeFor } from './exit-codes.js';
import type { CliIo } from './io.js';
import { processIo } from './io.js';

/**
 * Run the `muster` command line on `argv` (without `node` and the script) and
 * resolve to the exit code. Never calls process.exit: bin/muster.js does that.
 */
export async function run(argv: readonly string[], io: CliIo = processIo): Promise<number> {
  const ctx = new CliContext(io);
  // `--version` is the program's only as the first argument: after a command it is that
  // command's own (muster desired set web converged --version v42).
  if (argv[0] === '--version') {
    io.stdout.write(packageVersion() + '\n');
    return 0;
  }
  const program = buildProgram(ctx);
  try {
    await program.parseAsync([...argv], { from: 'user' });
    return ctx.exitCode;
  } catch (error) {
    // Commander has already printed its own message (or the help).
    if (!(error instanceof CommanderError)) io.stderr.write(describeError(error) + '\n');
    return exitCodeFor(error);
  }
}

/** The `muster` program with every subcommand. */
export function buildProgram(ctx: CliContext): Command {
  const program = new Command('muster')
    .description('muster: coordination for fleets of machines (a keyspace with revisions, leases and watches)')
    .version(packageVersion(), '-V', 'print the version (also --version, as the first argument)')
    .addOption(
      new Option(
        '--endpoint <urls>',
        `server URL(s), comma-separated; also MUSTER_ENDPOINT (default ${DEFAULT_ENDPOINT})`,
      ),
    )
    .addOption(
      new Option(
        '--token <token>',
        'the token to send; also MUSTER_TOKEN, the config file, or (for a server on this machine) ./muster-data/admin.token',
      ),
    )
    .addOption(new Option('--ca <file>', 'CA certificate (PEM) to verify an https:// server with; also MUSTER_CA'))
    .addOption(new Option('--cert <file>', 'client certificate (PEM), for a server that requires one; with --key'))
    .addOption(new Option('--key <file>', "the client certificate's private key (PEM)"))
    .option('--json', 'print JSON for scripts instead of text for people')
    .exitOverride()
    .configureOutput({
      writeOut: (text) => ctx.io.stdout.write(text),
      writeErr: (text) => ctx.io.stderr.write(text),
    })
    .showHelpAfterError('(add --help for usage)')
    .addHelpText(
      'after',
      `
Try it:
  $ muster server &                         # embedded store in ./muster-data, on 127.0.0.1:4100
  $ muster put /config/db/host 10.0.0.5
  $ muster get /config/db/host
  $ muster ls /config/
  $ muster watch /config/ --from-revision 1
  $ muster lock db-migrate -- ./migrate.sh          # one node at a time
  $ muster once schema-v42 -- ./migrate.sh          # exactly one node, the others get its exit code
  $ muster wait /ephemerals/db/ready --equals ready --timeout 600s

${EXIT_CODES_HELP}

Every command has --help with an example. Reference: docs/cli.md`,
    );
  registerServer(program, ctx);
  registerSnapshot(program, ctx);
  registerToken(program, ctx);
  registerEnrol(program, ctx);
  registerAudit(program, ctx);
  registerGet(program, ctx);
  registerPut(program, ctx);
  registerDel(program, ctx);
  registerLs(program, ctx);
  registerWatch(program, ctx);
  registerTxn(program, ctx);
  registerLease(program, ctx);
  registerLock(program, ctx);
  registerSemaphore(program, ctx);
  registerOnce(program, ctx);
  registerElect(program, ctx);
  registerLeader(program, ctx);
  registerBarrier(program, ctx);
  registerWait(program, ctx);
  registerSignal(program, ctx);
  registerPrimitives(program, ctx);
  registerRun(program, ctx);
  registerJobs(program, ctx);
  registerJob(program, ctx);
  registerTrigger(program, ctx);
  registerNodes(program, ctx);
  registerAgent(program, ctx, packageVersion);
  registerGroup(program, ctx);
  registerDesired(program, ctx);
  registerState(program, ctx);
  registerPlan(program, ctx);
  return program;
}

/** The version in package.json, found from this file in src/ or dist/src/. */
export function packageVersion(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 5; i++) {
    try {
      const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { name?: string; version?: string };
      if (pkg.name === 'muster' && pkg.version) return pkg.version;
    } catch {
      // Not here: look one folder up.
    }
    dir = dirname(dir);
  }
  return 'unknown';
}
