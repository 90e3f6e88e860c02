import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { BaseCommand } from '../cli/base-command.js';
import { copyFilterFlags, copyFilterOf } from '../cli/flags.js';
import { Args, Flags } from '../cli/oclif.js';
import { renameDurable, tempNameFor } from '../core/durable.js';
import { DistbackupError, describeError, errnoCode, fileError, UsageError } from '../core/errors.js';
import { normalizeVpath } from '../core/vpath.js';
import { counted } from '../ui/format.js';
import { type NcduSummary, type Sink, writeNcdu } from '../views/ncdu.js';
import { liveDisks, resolveFilter, viewRows } from '../views/rows.js';

export default class Ncdu extends BaseCommand<typeof Ncdu> {
  static override readOnly = true;
  static override summary = "Browse the catalogue in ncdu, or write ncdu's JSON export.";
  static override description =
    `Without -o, runs 'ncdu -f -' when ncdu is installed (else writes the export to stdout when it is not a terminal). File names show the disks holding them, (P n) for a priority other than 1, (M n) for a cap; files with the same content are hard links to ncdu, so their bytes count once.`;
  static override examples = [
    '<%= config.bin %> ncdu',
    '<%= config.bin %> ncdu -o catalogue.json && ncdu -f catalogue.json',
    '<%= config.bin %> ncdu --max-copies 1',
    '<%= config.bin %> ncdu --simulate-loss backup2 --max-copies 0',
  ];
  static override args = {
    vpath: Args.string({ required: false, ignoreStdin: true, description: 'folder to export (default /)' }),
  };
  static override flags = {
    output: Flags.string({ helpValue: 'FILE', char: 'o', summary: 'Write the export to FILE (- for stdout).' }),
    ...copyFilterFlags,
  };

  public async run(): Promise<void> {
    const f = this.flags;
    const db = this.catalog({ readonly: true }).db;
    const filter = resolveFilter(db, copyFilterOf(f));
    const prefix = normalizeVpath(this.args.vpath ?? '/');
    const meta = { progver: this.config.version, timestampS: Math.floor(Date.now() / 1000) };
    const rows = viewRows(db, prefix, filter);
    const names = liveDisks(db);
    const out = f.output;
    if (out !== undefined && out !== '-') {
      // A name of its own beside the output, created new (O_EXCL, not following a link).
      const tmp = tempNameFor(out);
      const onOut = <T>(fn: () => T): T => {
        try {
          return fn();
        } catch (err) {
          throw fileError(out, err, 'cannot write the ncdu export');
        }
      };
      const { O_WRONLY, O_CREAT, O_EXCL, O_NOFOLLOW } = fs.constants;
      let fd = onOut(() => fs.openSync(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0o644));
      let summary: NcduSummary;
      try {
        // A failure of the catalogue's reads comes through as it is (it is not the output's).
        summary = await writeNcdu(rows, prefix, names, (s) => writeAll(fd, s, out), meta);
        onOut(() => fs.fsyncSync(fd));
        const closing = fd;
        fd = -1;
        onOut(() => fs.closeSync(closing));
        // The folder fsynced after the rename: the new export survives a power cut.
        onOut(() => renameDurable(tmp, out));
      } catch (err) {
        if (fd >= 0) {
          try {
            fs.closeSync(fd);
          } catch {}
        }
        fs.rmSync(tmp, { force: true });
        throw err;
      }
      process.stderr.write(
        `wrote ${path.resolve(out)}: ${counted(summary.files, 'file')} in ${counted(summary.folders, 'folder')}\n`,
      );
      return;
    }
    if (out === undefined && hasNcdu()) {
      const child = spawn('ncdu', ['-f', '-'], { stdio: ['pipe', 'inherit', 'inherit'] });
      const exited = once(child, 'exit');
      const sink: Sink = async (s) => {
        if (!child.stdin.write(s)) await once(child.stdin, 'drain');
      };
      child.stdin.on('error', () => {}); // ncdu quit early: the exit code says how it went
      await writeNcdu(rows, prefix, names, sink, meta);
      child.stdin.end();
      const [code] = (await exited) as [number | null];
      if (code !== 0) throw new DistbackupError(`ncdu exited with code ${code}`);
      return;
    }
    if (out === undefined && process.stdout.isTTY) {
      throw new UsageError('ncdu is not installed: write the export with -o FILE and browse it with ncdu -f FILE');
    }
    try {
      await writeNcdu(rows, prefix, names, stdoutSink(), meta);
    } catch (err) {
      // The reader went away (`distbackup ncdu | head`): stop quietly, as find or cat do.
      if (errnoCode(err) === 'EPIPE') return;
      throw err;
    }
  }
}

/** A sink on stdout with backpressure that fails with the stream's error (EPIPE) instead of crashing. */
function stdoutSink(): Sink {
  let failed: Error | undefined;
  process.stdout.on('error', (err) => {
    failed = err;
  });
  return async (s) => {
    if (failed !== undefined) throw failed;
    if (!process.stdout.write(s)) await once(process.stdout, 'drain');
    if (failed !== undefined) throw failed;
  };
}

function hasNcdu(): boolean {
  const r = spawnSync('ncdu', ['-v'], { stdio: 'ignore' });
  return r.error === undefined && r.status === 0;
}

function writeAll(fd: number, s: string, out: string): void {
  const b = Buffer.from(s, 'utf8');
  let off = 0;
  try {
    while (off < b.length) off += fs.writeSync(fd, b, off, b.length - off);
  } catch (err) {
    throw fileError(out, err, 'cannot write the ncdu export');
  }
}
