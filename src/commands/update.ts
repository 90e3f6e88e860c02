import prettyBytes from 'pretty-bytes';
import { BaseCommand } from '../cli/base-command.js';
import { onInterrupt } from '../cli/interrupt.js';
import { Flags } from '../cli/oclif.js';
import { ExitCode } from '../core/errors.js';
import { counted, formatCount } from '../ui/format.js';
import type { Progress } from '../ui/progress.js';
import { runUpdate, type UpdateResult } from '../update/update.js';

export default class Update extends BaseCommand<typeof Update> {
  static override summary = 'Scan every source and hash new or changed files.';
  static override description =
    `A file is read again when its size, mtime, inode or ctime changed; a renamed or hard-linked file reuses its hash. Hashing runs in worker threads; the catalogue is committed every 10,000 rows or 2 seconds, so an interrupted run keeps its work and the next one hashes only the rest.

With -n/--dry-run, update scans and prints what would change (new, changed, removed, and the files and bytes it would read) without reading any file's content and without writing the catalogue, which it opens read-only.

A source whose folder is missing or empty while the catalogue holds files under it is refused (exit 2) and nothing is changed: an unmounted disk is never read as "everything deleted". A folder that cannot be read keeps its catalogued files.

Exit codes: 0 done; 1 done, but some paths could not be read (listed, and in --json "errors"); 2 refused (a source is missing, or another distbackup process holds the catalogue).`;
  static override examples = [
    '<%= config.bin %> update',
    '<%= config.bin %> update --jobs 4',
    '<%= config.bin %> update -n',
    '<%= config.bin %> update --json --quiet',
  ];
  static override enableJsonFlag = true;
  static override flags = {
    jobs: Flags.integer({ char: 'j', summary: 'Hash threads (default: one per core).', min: 1, max: 256 }),
    'dry-run': Flags.boolean({
      char: 'n',
      summary: 'Say what would change without hashing or writing anything (the catalogue is opened read-only).',
    }),
    'commit-every': Flags.integer({
      summary: 'Rows per catalogue transaction (default 10000).',
      min: 1,
      hidden: true,
    }),
  };

  public async run(): Promise<UpdateResult> {
    const dryRun = this.flags['dry-run'];
    // A catalogue of an older schema is upgraded in a private copy: a dry run writes nothing.
    const cat = this.catalog(dryRun ? { mode: 'read-only', upgradeInMemory: true } : {});
    // The progress display (cli-progress, 18 modules) is loaded only when it is shown.
    const progress: Progress | undefined = this.showProgress
      ? (await import('../ui/progress.js')).createProgress({ label: 'update', enabled: true })
      : undefined;
    const interrupt = onInterrupt('committing the hashes done so far');
    let doc: UpdateResult;
    try {
      doc = await runUpdate(cat, {
        ...(progress === undefined ? {} : { progress }),
        signal: interrupt.signal,
        dryRun,
        ...(this.flags.jobs === undefined ? {} : { jobs: this.flags.jobs }),
        ...(this.flags['commit-every'] === undefined ? {} : { commitRows: this.flags['commit-every'] }),
      });
    } finally {
      interrupt.stop();
    }
    if (doc.interrupted) {
      // The document (--json) says so too; 128 + SIGINT, as shells report a Ctrl-C.
      this.logToStderr(
        `update interrupted: the hashes done so far are kept (${formatCount(doc.scanned)} scanned, ${prettyBytes(doc.bytesHashed)} hashed); run 'distbackup update' again to finish`,
      );
      this.setExitCode(ExitCode.interrupted);
      return doc;
    }
    if (!this.jsonEnabled()) {
      if (!this.showProgress) for (const w of doc.warnings) process.stderr.write(`distbackup: warning: ${w}\n`);
      for (const e of doc.errors) process.stderr.write(`distbackup: ${e.path}: ${e.error}\n`);
    }
    const work = dryRun
      ? `would read ${counted(doc.toHash, 'file')}, ${prettyBytes(doc.bytesToHash)} (dry run: nothing read or written, ${(doc.elapsedMs / 1000).toFixed(1)} s)`
      : `${prettyBytes(doc.bytesHashed)} hashed in ${(doc.elapsedMs / 1000).toFixed(1)} s`;
    this.log(
      `${formatCount(doc.scanned)} scanned: ${formatCount(doc.new)} new, ${formatCount(doc.changed)} changed, ${formatCount(doc.removed)} removed, ${formatCount(doc.unchanged)} unchanged; ${work}` +
        (doc.skipped.length > 0 ? `; ${counted(doc.skipped.length, 'special file')} skipped` : '') +
        (doc.errors.length > 0 ? `; ${counted(doc.errors.length, 'error')} (listed above)` : ''),
    );
    if (doc.errors.length > 0) this.setExitCode(1);
    return doc;
  }
}
