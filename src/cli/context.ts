import type { Command } from 'commander';
import { MusterClient } from '../client/muster-client.js';
import type { CliIo } from './io.js';
import { ExitCode } from './exit-codes.js';

/** Where `muster` connects when neither `--endpoint` nor MUSTER_ENDPOINT says. */
export const DEFAULT_ENDPOINT = 'http://127.0.0.1:4100';

interface GlobalOptions {
  endpoint?: string;
  json?: boolean;
}

/** What every command shares: its streams, the global options, the exit code. */
export class CliContext {
  /** Set by a command that fails without throwing (such as a txn whose compare failed). */
  exitCode: number = ExitCode.OK;

  constructor(readonly io: CliIo) {}

  /** A client for `--endpoint`, else MUSTER_ENDPOINT, else the default. */
  client(command: Command): MusterClient {
    const options = command.optsWithGlobals<GlobalOptions>();
    return new MusterClient({ endpoints: options.endpoint ?? this.io.env.MUSTER_ENDPOINT ?? DEFAULT_ENDPOINT });
  }

  /** True when `--json` was given. */
  json(command: Command): boolean {
    return command.optsWithGlobals<GlobalOptions>().json === true;
  }

  /** A line on stdout. */
  print(line: string): void {
    this.io.stdout.write(line + '\n');
  }

  /** A value as one line of JSON on stdout. */
  printJson(value: unknown): void {
    this.io.stdout.write(JSON.stringify(value) + '\n');
  }

  /** A line on stderr. */
  warn(line: string): void {
    this.io.stderr.write(line + '\n');
  }
}
