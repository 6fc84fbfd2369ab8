import { readFile } from 'node:fs/promises';
import type { Command } from 'commander';
import type { WireTxnOpResult, WireTxnRequest } from '../../api/wire.js';
import { fromWireKeyValue } from '../../api/values.js';
import type { CliContext } from '../context.js';
import { ExitCode, UsageError } from '../exit-codes.js';
import { displayValue } from '../format.js';
import { readAll } from '../io.js';

/** `muster txn [FILE]`: run a transaction given as JSON in a file or on stdin. */
export function registerTxn(program: Command, ctx: CliContext): void {
  program
    .command('txn')
    .description('run an atomic transaction given as JSON (from FILE, or stdin)')
    .argument('[file]', 'a JSON file; stdin when absent or "-"')
    .addHelpText(
      'after',
      `
The JSON is the body of POST /v1/txn: if every "compare" holds, the "success" ops
run, else the "failure" ops, all at one revision. Compare targets: value, version,
createRevision, modRevision, lease; ops =, !=, <, >. Op types: put, delete, get.
Exit 0 when the compares held, 1 when the failure branch ran.

Example:
  $ muster txn <<'EOF'
  {"compare": [{"key": "/config/db/host", "target": "modRevision", "op": "=", "value": 3}],
   "success": [{"type": "put", "key": "/config/db/host", "value": "10.0.0.6"}],
   "failure": [{"type": "get", "key": "/config/db/host"}]}
  EOF`,
    )
    .action(async (file: string | undefined, _options: unknown, command: Command) => {
      const source = file === undefined || file === '-' ? 'stdin' : file;
      let text: string;
      if (source === 'stdin') {
        if (ctx.io.stdin.isTTY) throw new UsageError('no FILE given: pass a JSON file or pipe the JSON on stdin');
        text = (await readAll(ctx.io.stdin)).toString('utf8');
      } else {
        try {
          text = await readFile(source, 'utf8');
        } catch (error) {
          throw new UsageError(`cannot read ${source}: ${error instanceof Error ? error.message : String(error)}`);
        }
      }
      const request = parseTxnJson(text, source);
      const result = await ctx.client(command).txnWire(request);
      if (ctx.json(command)) {
        ctx.printJson(result);
      } else {
        ctx.print(
          `${result.succeeded ? 'SUCCEEDED' : 'FAILED (the failure branch ran)'} at revision ${result.revision}`,
        );
        for (const opResult of result.results) for (const line of describeResult(opResult)) ctx.print(line);
      }
      if (!result.succeeded) ctx.exitCode = ExitCode.FAILED;
    });
}

function parseTxnJson(text: string, source: string): WireTxnRequest {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new UsageError(`${source} is not valid JSON: ${error instanceof Error ? error.message : String(error)}`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new UsageError(`${source}: expected a JSON object with "compare", "success" and "failure" lists`);
  }
  for (const field of Object.keys(value)) {
    if (field !== 'compare' && field !== 'success' && field !== 'failure') {
      throw new UsageError(`${source}: unknown field ${JSON.stringify(field)} (expected compare, success, failure)`);
    }
    if (!Array.isArray((value as Record<string, unknown>)[field])) {
      throw new UsageError(`${source}: "${field}" must be a list`);
    }
  }
  // The server checks each compare and op and names what is wrong.
  return value as WireTxnRequest;
}

function describeResult(result: WireTxnOpResult): string[] {
  switch (result.type) {
    case 'put':
      return [`put (revision ${result.revision})`];
    case 'delete':
      return [`delete: ${result.deleted} deleted`];
    case 'get':
      return [
        `get: ${result.count} key${result.count === 1 ? '' : 's'}`,
        ...result.kvs.map((wire) => {
          const kv = fromWireKeyValue(wire);
          return `  ${kv.key} = ${displayValue(kv.value, 80)} (modRevision ${kv.modRevision}, version ${kv.version})`;
        }),
      ];
  }
}
