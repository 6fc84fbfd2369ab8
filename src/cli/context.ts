import type { Command } from 'commander';
import { MusterClient } from '../client/muster-client.js';
import type { CliIo } from './io.js';
import { readFileSync } from 'node:fs';
import { ExitCode, UsageError } from './exit-codes.js';
import { resolveClientSettings } from './client-config.js';

export { DEFAULT_ENDPOINT } from './client-config.js';

interface GlobalOptions {
  endpoint?: string;
  token?: string;
  ca?: string;
  cert?: string;
  key?: string;
  json?: boolean;
}

/** What every command shares: its streams, the global options, the exit code. */
export class CliContext {
  /** Set by a command that fails without throwing (such as a txn whose compare failed). */
  exitCode: number = ExitCode.OK;

  constructor(readonly io: CliIo) {}

  /** A client for the endpoint and token the flags, environment or config file name (client-config.ts). */
  client(command: Command): MusterClient {
    const options = command.optsWithGlobals<GlobalOptions>();
    const settings = resolveClientSettings(options, this.io.env);
    const read = (file: string, what: string) => {
      try {
        return readFileSync(file, 'utf8');
      } catch (error) {
        throw new UsageError(`cannot read the ${what} ${file}: ${(error as Error).message}`);
      }
    };
    const tls =
      settings.ca || settings.cert || settings.key
        ? {
            ...(settings.ca ? { ca: read(settings.ca, 'CA certificate') } : {}),
            ...(settings.cert ? { cert: read(settings.cert, 'client certificate') } : {}),
            ...(settings.key ? { key: read(settings.key, 'client key') } : {}),
          }
        : undefined;
    return new MusterClient({
      endpoints: settings.endpoint,
      ...(settings.token !== undefined ? { token: settings.token } : {}),
      ...(tls ? { tls } : {}),
    });
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
