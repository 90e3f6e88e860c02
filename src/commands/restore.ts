import prettyBytes from 'pretty-bytes';
import { BaseCommand } from '../cli/base-command.js';
import { onInterrupt } from '../cli/interrupt.js';
import { Args, Flags } from '../cli/oclif.js';
import { ExitCode } from '../core/errors.js';
import { type DryRunEntry, type RestoreDoc, runRestore } from '../restore/restore.js';
import { counted, formatCount } from '../ui/format.js';
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
    "<%= config.bin %> restore --to ~/restored --disk /media/backup1 --filter '/photos/2024-*' --filter '*.pdf'",
    '<%= config.bin %> restore --to ~/restored --disk /media/backup1 --existing /mnt/old-copy -n',
    '<%= config.bin %> restore --to /media/backup1/restored --disk /media/backup1 --link',
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
    filter: Flags.string({
      summary:
        'Restore only paths matching this glob (picomatch); a matching folder brings its subtree. Without a slash it matches a name at any depth (*.jpg), with one the whole virtual path (/photos/2024-0[1-6]). Repeatable.',
      multiple: true,
    }),
    existing: Flags.string({
      summary:
        'Skip a file when this folder already holds it at the same relative path (same size and mtime to the second, then the same SHA-256). Repeatable.',
      multiple: true,
    }),
    link: Flags.boolean({
      summary:
        "Hard-link each file to the disk's object instead of copying it (DEST must be on the disk's filesystem). Linked files keep the object's read-only mode and mtime: never edit them in place.",
    }),
    'dry-run': Flags.boolean({ char: 'n', summary: 'Print what would be restored; write nothing.' }),
    profile: Flags.string({
      summary:
        'hdd: small files written on one thread, one stream of reads; ssd: on two. Default from the disk’s device.',
      options: ['hdd', 'ssd'],
    }),
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
    const f = this.flags;
    const dryRun = f['dry-run'];
    const progress = createProgress({ label: 'restore', enabled: this.showProgress && !f.plan && !dryRun });
    const interrupt = onInterrupt('recording what is restored');
    const json = this.jsonEnabled();
    let doc: RestoreDoc;
    try {
      doc = await runRestore({
        dest: f.to,
        vpaths,
        diskPath: f.disk,
        dataDir: this.dataDir,
        catalogue: (f.catalogue as 'home' | 'disk' | undefined) ?? 'auto',
        overwrite: f.overwrite,
        planOnly: f.plan,
        filters: f.filter,
        existing: f.existing,
        link: f.link,
        dryRun,
        profile: f.profile === undefined ? undefined : f.profile === 'ssd' ? 'ssd' : 'hdd',
        onDryRun: json ? undefined : (e) => this.log(dryRunLine(e)),
        signal: interrupt.signal,
        progress,
      });
    } finally {
      interrupt.stop();
      progress.stop();
    }
    if (doc.interrupted) {
      this.logToStderr(
        `restore interrupted: ${formatCount(doc.restored)} of ${counted(doc.planned.files, 'file')} (${prettyBytes(doc.bytesRestored)} of ${prettyBytes(doc.planned.bytes)}) restored into ${doc.dest} and recorded; run the same command again to go on`,
      );
      // 128 + SIGINT, as a shell reports a command ended by Ctrl-C (SPEC §3 names no code for it).
      this.setExitCode(130);
      return doc;
    }
    const shown = (list: { path: string; error: string }[], what: string): void => {
      for (const p of list.slice(0, 20)) this.logToStderr(`${what}: ${p.path}: ${p.error}`);
      if (list.length > 20) this.logToStderr(`${what}: … and ${list.length - 20} more (see --json)`);
    };
    shown(doc.refused, 'refused');
    shown(doc.existing, 'not overwritten');
    shown(doc.errors, 'error');
    for (const w of doc.warnings) this.logToStderr(`warning: ${w}`);
    if (dryRun) {
      const w = doc.wouldRestore;
      this.log(
        `dry run: would restore ${counted(w.files, 'file')} (${prettyBytes(w.bytes)}), ${counted(w.dirs, 'folder')}, ${counted(w.symlinks, 'symlink')} from ${doc.disk ?? '-'} into ${doc.dest}` +
          (doc.foundElsewhere > 0 ? `; ${counted(doc.foundElsewhere, 'file')} found in --existing folders` : '') +
          '; nothing was written',
      );
    } else if (!this.flags.plan) {
      this.log(
        `restored ${counted(doc.restored, 'file')} (${prettyBytes(doc.bytesRestored)}), ${counted(doc.dirs, 'folder')}, ${counted(doc.symlinks, 'symlink')} from ${doc.disk ?? '-'} into ${doc.dest} (catalogue: ${doc.catalogue})` +
          (doc.alreadyRestored > 0 ? `; ${doc.alreadyRestored} were already there` : '') +
          (doc.linked > 0 ? `; ${doc.linked} hard-linked to the disk's objects` : '') +
          (doc.foundElsewhere > 0 ? `; ${doc.foundElsewhere} found in --existing folders` : ''),
      );
    }
    // Links, folders and refused paths are not counted in `remaining` (files only), but a run
    // that could not put them in place has not restored everything either (exit 4).
    const notPlaced = doc.refused.length + doc.existing.length + doc.errors.length;
    if (doc.remaining === 0 && notPlaced === 0) this.log('complete: every file is restored');
    else if (doc.remaining === 0) {
      this.log(`every file is restored, but ${counted(notPlaced, 'entry', 'entries')} listed above could not be`);
      this.setExitCode(ExitCode.restoreIncomplete);
    } else {
      this.log(`${counted(doc.remaining, 'file')} (${prettyBytes(doc.remainingBytes)}) still missing`);
      if (this.flags.plan || dryRun) {
        this.log('disks to connect, in order:');
        for (const [i, s] of doc.plan.entries())
          this.log(`  ${i + 1}. ${s.disk}: ${counted(s.files, 'file')}, ${prettyBytes(s.bytes)}`);
      } else if (doc.next !== null) {
        this.log(
          doc.next.disk === doc.disk
            ? `${doc.disk} still holds ${counted(doc.next.files, 'file')} (${prettyBytes(doc.next.bytes)}) that failed here: fix what is said above, then run it again with this disk`
            : `connect ${doc.next.disk} next: it adds ${counted(doc.next.files, 'file')} (${prettyBytes(doc.next.bytes)})`,
        );
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
          `${counted(doc.unavailable, 'file')} (${prettyBytes(doc.unavailableBytes)}) are on no other disk: they cannot be restored`,
        );
      }
      this.setExitCode(ExitCode.restoreIncomplete);
    }
    return doc;
  }
}

const ACTION_TEXT: Record<DryRunEntry['action'], string> = {
  restore: 'would restore',
  link: 'would link',
  overwrite: 'would overwrite',
  exists: 'exists, kept',
  'found-elsewhere': 'found in --existing',
};

function dryRunLine(e: DryRunEntry): string {
  const what = e.kind === 'file' ? ` (${prettyBytes(e.sizeBytes)})` : e.kind === 'folder' ? '/' : ' (symlink)';
  return `${ACTION_TEXT[e.action]}: ${e.path}${what}`;
}
