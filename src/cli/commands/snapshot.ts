import { createWriteStream } from 'node:fs';
import { rename, rm } from 'node:fs/promises';
import { finished } from 'node:stream/promises';
import type { Command } from 'commander';
import type { CliContext } from '../context.js';
import { UsageError } from '../exit-codes.js';
import { SnapshotUnsupportedError } from '../../core/errors.js';

interface RestoreFlags {
  dataDir: string;
  force?: boolean;
}

/** `muster snapshot save FILE` and `muster snapshot restore FILE --data-dir DIR`. */
export function registerSnapshot(program: Command, ctx: CliContext): void {
  const snapshot = program.command('snapshot').description('back up and restore the embedded store');
  snapshot
    .command('save')
    .description('save a consistent snapshot of a running server (embedded store) to FILE, or - for stdout')
    .argument('<file>', 'the file to write (written as FILE.partial, then renamed)')
    .action(async (file: string, _flags: object, command: Command) => {
      let stream;
      try {
        stream = await ctx.client(command).snapshot();
      } catch (error) {
        if (error instanceof SnapshotUnsupportedError) {
          throw new UsageError(`${error.message} (muster snapshot works on the embedded store only)`);
        }
        throw error;
      }
      if (file === '-') {
        for await (const chunk of stream.chunks) ctx.io.stdout.write(chunk);
        return;
      }
      const partial = `${file}.partial`;
      const out = createWriteStream(partial);
      let written = 0;
      try {
        for await (const chunk of stream.chunks) {
          written += chunk.byteLength;
          if (!out.write(chunk)) await new Promise<void>((resolve) => out.once('drain', () => resolve()));
        }
        out.end();
        await finished(out);
        if (written !== stream.size) {
          throw new UsageError(`the snapshot stream ended after ${written} of ${stream.size} bytes`);
        }
        await rename(partial, file);
      } catch (error) {
        out.destroy();
        await rm(partial, { force: true });
        throw error;
      }
      ctx.io.stderr.write(`saved snapshot at revision ${stream.revision} (${written} bytes) to ${file}\n`);
      if (ctx.json(command)) ctx.printJson({ revision: stream.revision, size: written, file });
    });
  snapshot
    .command('restore')
    .description('restore a snapshot offline into a data folder (the server must be stopped)')
    .argument('<file>', 'a file written by muster snapshot save')
    .requiredOption('--data-dir <dir>', 'the data folder to restore into')
    .option('--force', 'replace the store already in --data-dir (default: refuse a non-empty folder)')
    .action(async (file: string, flags: RestoreFlags, command: Command) => {
      // Loaded here so that other commands do not load SQLite.
      const { restoreSnapshot } = await import('../../backends/sqlite/snapshot-file.js');
      const revision = await restoreSnapshot({ file, dataDir: flags.dataDir, force: flags.force === true });
      if (ctx.json(command)) ctx.printJson({ revision, dataDir: flags.dataDir });
      else ctx.print(`restored revision ${revision} into ${flags.dataDir}`);
    });
}
