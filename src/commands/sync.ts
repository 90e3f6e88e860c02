import prettyBytes from 'pretty-bytes';
import { BaseCommand } from '../cli/base-command.js';
import { onInterrupt } from '../cli/interrupt.js';
import { Args, Flags } from '../cli/oclif.js';
import { DistbackupError, ExitCode } from '../core/errors.js';
import { formatCount, parseRate, parseSize } from '../core/units.js';
import { planLines, resultLines } from '../sync/report.js';
import { runSync, SKIPPED_LIST_CAP, type SyncDoc } from '../sync/sync.js';
import { counted } from '../ui/format.js';
import { createProgress } from '../ui/progress.js';
import { runUpdate } from '../update/update.js';

export default class Sync extends BaseCommand<typeof Sync> {
  static override summary = 'Bring a connected disk up to date and raise the pool’s redundancy (the main job).';
  static override description =
    'Reconciles the disk with the catalogue, plans what it should hold so that the minimum number of copies of every file is as high as the pool allows, deletes orphans, copies (evicting only for objects with fewer copies), and writes the catalogue copy, manifest and restore script to the disk. Interrupting it at any moment leaves every named object correct; the next sync goes on. Ctrl-C stops within about a second: the file being copied is dropped, what is complete is kept and recorded, the catalogue copy on the disk is left as last written (the next sync writes it), and the exit code is 130.';
  static override examples = [
    '<%= config.bin %> sync backup3',
    '<%= config.bin %> sync --disk /media/backup3 --bwlimit 50M',
    '<%= config.bin %> sync backup3 --dry-run',
    '<%= config.bin %> sync backup3 --verify readback --profile hdd',
  ];
  static override enableJsonFlag = true;
  static override args = { name: Args.string({ required: false, description: 'name of the disk' }) };
  static override flags = {
    disk: Flags.string({ summary: 'Folder of the disk (its distbackup-disk.json decides which disk it is).' }),
    'dry-run': Flags.boolean({ char: 'n', summary: 'Print the plan; change nothing.' }),
    bwlimit: Flags.string({ summary: 'Cap the copy at this many bytes per second (50M).' }),
    verify: Flags.string({
      summary: 'write: hash while copying (default); readback: also re-read every object after its fsync.',
      options: ['write', 'readback'],
      default: 'write',
    }),
    profile: Flags.string({
      summary: 'hdd: one sequential reader and writer; ssd: parallel copies. Default from the disk’s device.',
      options: ['hdd', 'ssd'],
    }),
    'fsync-batch': Flags.integer({
      summary: 'Files made durable and recorded together (default 4096): their folders are fsynced once per batch.',
      min: 1,
    }),
    limit: Flags.string({ summary: 'Copy at most this many bytes in this run (500G).' }),
    'max-copies': Flags.integer({ summary: 'Cap every object at N copies in this run.', min: 1 }),
    'no-evict': Flags.boolean({ summary: 'Never evict a copy to make room.' }),
    update: Flags.boolean({ summary: 'Run update first.' }),
  };

  public async run(): Promise<SyncDoc> {
    const f = this.flags;
    const cat = this.catalog();
    // Ctrl-C: the file being copied is dropped, what is complete is made durable and recorded
    // (a second Ctrl-C kills the process; every named object on the disk is still correct).
    const interrupt = onInterrupt('what is complete is made durable and recorded');
    let doc: SyncDoc;
    try {
      if (f.update) {
        const r = await runUpdate(cat, {
          progress: createProgress({ label: 'update', enabled: this.showProgress }),
          signal: interrupt.signal,
        });
        if (r.interrupted) {
          process.stderr.write(
            "distbackup: update interrupted: the hashes done so far are kept; nothing was synced; run 'distbackup sync --update' again to go on\n",
          );
          this.exit(ExitCode.interrupted);
        }
        if (r.errors.length > 0)
          this.warn(`update: ${r.errors.length} paths could not be read (see 'distbackup update')`);
      }
      doc = await runSync(cat, {
        name: this.args.name,
        diskPath: f.disk,
        dryRun: f['dry-run'],
        bwlimitBytesPerS: f.bwlimit === undefined ? undefined : parseRate(f.bwlimit),
        verify: f.verify === 'readback' ? 'readback' : 'write',
        profile: f.profile === undefined ? undefined : f.profile === 'ssd' ? 'ssd' : 'hdd',
        fsyncBatchFiles: f['fsync-batch'],
        limitBytes: f.limit === undefined ? undefined : parseSize(f.limit),
        maxCopies: f['max-copies'],
        noEvict: f['no-evict'],
        progress: (totalBytes, totalFiles) =>
          createProgress({ label: 'sync', enabled: this.showProgress, totalBytes, totalFiles }),
        onNote: (line) => {
          if (!this.jsonEnabled() && !f.quiet) process.stderr.write(`${line}\n`);
        },
        signal: interrupt.signal,
        onPlan: (planned) => {
          for (const line of planLines(planned)) this.log(line);
        },
      });
    } catch (err) {
      if (err instanceof DistbackupError && err.code === 'interrupted') {
        process.stderr.write(`distbackup: ${err.message}\n`);
        this.exit(ExitCode.interrupted);
      }
      throw err;
    } finally {
      interrupt.stop();
    }
    if (doc.interrupted) {
      this.logToStderr(
        `sync of disk '${doc.disk}' interrupted: ${counted(doc.copied, 'object')} (${prettyBytes(doc.bytesCopied)}) copied, made durable and recorded, ${doc.deleted} deleted, ${doc.evicted} evicted; ${doc.catalogueWritten ? 'the catalogue copy on the disk is written' : 'the catalogue copy on the disk is left as it was'}; run it again to go on`,
      );
      this.setExitCode(ExitCode.interrupted);
      return doc;
    }
    // Without a progress display (--quiet, --json) the skipped files were not named live: an
    // error is one line on stderr whatever the output mode.
    if (!this.showProgress) {
      for (const s of doc.skipped.slice(0, SKIPPED_LIST_CAP)) this.warn(`skipped ${s.path}: ${s.error}`);
      if (doc.skippedCount > SKIPPED_LIST_CAP) {
        this.warn(`and ${formatCount(doc.skippedCount - SKIPPED_LIST_CAP)} more skipped (all in --json 'skipped')`);
      }
    }
    if (!doc.dryRun) for (const line of resultLines(doc)) this.log(line);
    if (doc.skippedCount > 0) this.setExitCode(1);
    return doc;
  }
}
