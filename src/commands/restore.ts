import { Args, Flags } from '@oclif/core';
import prettyBytes from 'pretty-bytes';
import { BaseCommand } from '../cli/base-command.js';
import { ExitCode } from '../core/errors.js';
import { type RestoreDoc, runRestore } from '../restore/restore.js';
import { createProgress } from '../ui/progress.js';

export default class Restore extends BaseCommand<typeof Restore> {
  static override summary = 'Restore files from the connected disk, and say which disk to connect next.';
  static override description =
    'Virtual path /a/b lands at DEST/a/b, with its mode and mtime (owner when run as root), symlinks as symlinks, empty folders kept. Each file is hashed while written. Existing files are never overwritten unless --overwrite. The restore state kept in DEST/.distbackup-restore lets the next disk add only what is still missing. Without a home catalogue (or with --catalogue disk) the catalogue copy on the disk is used. Exit code 4 while files are still missing.';
  static override examples = [
    '<%= config.bin %> restore --to /mnt/restore --disk /media/backup1',
    '<%= config.bin %> restore /photos/2024 --to ~/restored',
    '<%= config.bin %> restore --to /mnt/restore --disk /media/backup2 --catalogue disk',
    '<%= config.bin %> restore --to /mnt/restore --disk /media/backup1 --plan',
  ];
  static override enableJsonFlag = true;
  static override strict = false;
  static override args = {
    vpath: Args.string({ required: false, description: 'virtual paths to restore (default: everything)' }),
  };
  static override flags = {
    to: Flags.string({ summary: 'Folder to restore into (created 0700 if missing).', required: true }),
    disk: Flags.string({ summary: 'Folder of the connected backup disk.' }),
    catalogue: Flags.string({
      summary: "Catalogue to restore from: 'home', or 'disk' (the disk's own copy). Default: home if it exists.",
      options: ['home', 'disk'],
    }),
    overwrite: Flags.boolean({
      summary: 'Replace existing files in DEST (unlinked and recreated, never written through).',
    }),
    plan: Flags.boolean({ summary: 'Print the whole order of disks for what is missing; restore nothing.' }),
  };

  public async run(): Promise<RestoreDoc> {
    const { argv } = await this.parse({
      flags: Restore.flags,
      baseFlags: BaseCommand.baseFlags,
      args: Restore.args,
      strict: false,
      enableJsonFlag: true,
    });
    const vpaths = (argv as string[]).filter((a) => typeof a === 'string');
    const progress = createProgress({ label: 'restore', enabled: this.showProgress && !this.flags.plan });
    let doc: RestoreDoc;
    try {
      doc = runRestore({
        dest: this.flags.to,
        vpaths,
        diskPath: this.flags.disk,
        dataDir: this.dataDir,
        catalogue: (this.flags.catalogue as 'home' | 'disk' | undefined) ?? 'auto',
        overwrite: this.flags.overwrite,
        planOnly: this.flags.plan,
        progress,
      });
    } finally {
      progress.stop();
    }
    const shown = (list: { path: string; error: string }[], what: string): void => {
      for (const p of list.slice(0, 20)) this.logToStderr(`${what}: ${p.path}: ${p.error}`);
      if (list.length > 20) this.logToStderr(`${what}: … and ${list.length - 20} more (see --json)`);
    };
    shown(doc.refused, 'refused');
    shown(doc.existing, 'not overwritten');
    shown(doc.errors, 'error');
    for (const w of doc.warnings) this.logToStderr(`warning: ${w}`);
    if (!this.flags.plan) {
      this.log(
        `restored ${doc.restored} files (${prettyBytes(doc.bytesRestored)}), ${doc.dirs} folders, ${doc.symlinks} symlinks from ${doc.disk ?? '-'} into ${doc.dest} (catalogue: ${doc.catalogue})` +
          (doc.alreadyRestored > 0 ? `; ${doc.alreadyRestored} were already there` : ''),
      );
    }
    if (doc.remaining === 0) this.log('complete: every file is restored');
    else {
      this.log(`${doc.remaining} files (${prettyBytes(doc.remainingBytes)}) still missing`);
      if (this.flags.plan) {
        this.log('disks to connect, in order:');
        for (const [i, s] of doc.plan.entries())
          this.log(`  ${i + 1}. ${s.disk}: ${s.files} files, ${prettyBytes(s.bytes)}`);
      } else if (doc.next !== null) {
        this.log(`connect ${doc.next.disk} next: it adds ${doc.next.files} files (${prettyBytes(doc.next.bytes)})`);
        if (doc.plan.length > 1)
          this.log(
            `after it: ${doc.plan
              .slice(1)
              .map((s) => s.disk)
              .join(', ')}`,
          );
      }
      if (doc.unavailable > 0) {
        this.log(
          `${doc.unavailable} files (${prettyBytes(doc.unavailableBytes)}) are on no other disk: they cannot be restored`,
        );
      }
      this.setExitCode(ExitCode.restoreIncomplete);
    }
    return doc;
  }
}
