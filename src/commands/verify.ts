import * as path from 'node:path';
import prettyBytes from 'pretty-bytes';
import { BaseCommand } from '../cli/base-command.js';
import { onInterrupt } from '../cli/interrupt.js';
import { Args, Flags } from '../cli/oclif.js';
import { ExitCode, UsageError } from '../core/errors.js';
import { parseDuration } from '../core/units.js';
import { counted } from '../ui/format.js';
import { createProgress } from '../ui/progress.js';
import { runVerify, type VerifyDoc } from '../verify/verify.js';

export default class Verify extends BaseCommand<typeof Verify> {
  static override summary = 'Re-read the objects of a disk and check their hashes, least recently verified first.';
  static override description =
    `Objects are read in on-disk order: one at a time with the hdd profile, two at once (each hashed on its own thread) with the ssd profile. Repeated partial runs (--percent, --max-time, --older-than) cover every object in turn, and what a run checked is committed every few seconds, so an interrupted or killed run goes on where it stopped. A bad object is read a second time; if it is still bad it is moved to distbackup-objects/.quarantine/ (never deleted) and stops counting as a copy, like a missing one; the next sync of any disk with room copies it again.

--errors FILE writes one tab-separated line per bad or missing object (disk, object path on the disk, size, a file with that content, what was wrong) after a header line. --dry-run reads and checks but records and moves nothing.

Exit codes: 0 all good; 3 something was bad or missing; 130 interrupted (what was checked is kept).`;
  static override examples = [
    '<%= config.bin %> verify backup1',
    '<%= config.bin %> verify --disk /media/backup1 --percent 10',
    '<%= config.bin %> verify backup1 --older-than 30d --max-time 2h --errors verify-errors.tsv',
    '<%= config.bin %> verify backup1 --dry-run --profile ssd',
  ];
  static override enableJsonFlag = true;
  static override args = { name: Args.string({ required: false, description: 'name of the disk' }) };
  static override flags = {
    disk: Flags.string({ summary: 'Folder of the disk (its distbackup-disk.json decides which disk it is).' }),
    'older-than': Flags.string({ summary: 'Only objects not verified for this long (e.g. 30d).' }),
    'max-time': Flags.string({ summary: 'Stop after this long (e.g. 2h); the next run goes on from there.' }),
    percent: Flags.string({ summary: 'Check this share of the disk (e.g. 10), least recently verified first.' }),
    errors: Flags.string({
      summary: 'Write the bad and missing objects to FILE (tab-separated, with a header line).',
      helpValue: 'FILE',
    }),
    'dry-run': Flags.boolean({ char: 'n', summary: 'Read and check; record nothing, move nothing.' }),
    profile: Flags.string({
      summary: 'hdd: one sequential stream; ssd: two objects at once. Default from the disk’s device.',
      options: ['hdd', 'ssd'],
    }),
    'commit-every': Flags.integer({
      summary: 'Objects per catalogue commit (default 4096; a commit also every 2 s).',
      min: 1,
      hidden: true,
    }),
  };

  public async run(): Promise<VerifyDoc> {
    const f = this.flags;
    let percent: number | undefined;
    if (f.percent !== undefined) {
      percent = Number(f.percent.replace(/%$/, ''));
      if (!Number.isFinite(percent) || percent <= 0 || percent > 100) {
        throw new UsageError(`invalid --percent '${f.percent}': expected a number above 0, at most 100`);
      }
    }
    const dryRun = f['dry-run'];
    // A dry run records nothing: the catalogue is opened read-only, or, when its schema is
    // older than this distbackup's, upgraded in a private copy in memory (the file is unchanged).
    const cat = this.catalog(dryRun ? { readonly: true, upgradeInMemory: true } : {});
    if (cat.upgradedFrom !== undefined) {
      this.warn(
        `dry run: ${cat.file} has schema ${cat.upgradedFrom}; checked against a copy upgraded in memory, the file is unchanged (the next command that writes upgrades it)`,
      );
    }
    const progress = createProgress({ label: 'verify', enabled: this.showProgress });
    const interrupt = onInterrupt('recording what was checked');
    let doc: VerifyDoc;
    try {
      doc = await runVerify(cat, {
        name: this.args.name,
        diskPath: f.disk,
        olderThanMs: f['older-than'] === undefined ? undefined : parseDuration(f['older-than']),
        maxTimeMs: f['max-time'] === undefined ? undefined : parseDuration(f['max-time']),
        percent,
        profile: f.profile === undefined ? undefined : f.profile === 'ssd' ? 'ssd' : 'hdd',
        dryRun,
        errorsFile: f.errors === undefined ? undefined : path.resolve(f.errors),
        commitObjects: f['commit-every'],
        signal: interrupt.signal,
        progress,
      });
    } finally {
      interrupt.stop();
      progress.stop();
    }
    for (const m of doc.missing) this.logToStderr(`missing: ${m}`);
    const found = `${doc.bad.length} bad, ${doc.missing.length} missing`;
    const second =
      (doc.okOnSecondRead.length > 0 ? `, ${doc.okOnSecondRead.length} ok on second read` : '') +
      (doc.unreadable.length > 0 ? `, ${doc.unreadable.length} could not be checked (still counted)` : '');
    const checked = `${counted(doc.checked, 'object')} (${prettyBytes(doc.bytesChecked)}) on ${doc.disk}`;
    if (doc.stoppedBy === 'interrupted') {
      this.logToStderr(
        `verify interrupted: ${checked} checked${dryRun ? '' : ' and recorded'}: ${found}${second}; ${counted(doc.remaining, 'copy', 'copies')} left, run it again to go on`,
      );
    } else {
      this.log(
        `${dryRun ? 'dry run: checked' : 'verified'} ${checked} (${doc.profile} profile): ${found}${second}` +
          (doc.remaining > 0 ? `; ${doc.remaining} not reached this time (stopped by ${doc.stoppedBy})` : ''),
      );
    }
    if (doc.errorsFile !== null) this.logToStderr(`errors file: ${doc.errorsFile}`);
    const gone = doc.bad.length + doc.missing.length;
    if (gone > 0) {
      this.log(
        dryRun
          ? `dry run: nothing was recorded or moved; without --dry-run ${counted(gone, 'copy', 'copies')} would stop counting`
          : `${counted(gone, 'copy', 'copies')} no longer ${gone === 1 ? 'counts' : 'count'}; run 'distbackup sync' with any disk that has room to copy them again`,
      );
      this.setExitCode(ExitCode.verifyBad);
    }
    if (doc.stoppedBy === 'unreadable') {
      const last = doc.unreadable[doc.unreadable.length - 1];
      this.logToStderr(
        `verify stopped: copies in a row could not be checked (last: ${last?.problem ?? '?'}); nothing was judged of them`,
      );
    }
    // Copies that could not be checked are an error (1), unless some were bad or missing (3).
    if (gone === 0 && doc.unreadable.length > 0) this.setExitCode(ExitCode.error);
    // Bad or missing copies found before a Ctrl-C say so (3), as SPEC asks of any run that found them.
    if (doc.stoppedBy === 'interrupted' && gone === 0) this.setExitCode(ExitCode.interrupted);
    return doc;
  }
}
