import { Args, Flags } from '@oclif/core';
import prettyBytes from 'pretty-bytes';
import { BaseCommand } from '../cli/base-command.js';
import { ExitCode, UsageError } from '../core/errors.js';
import { parseDuration } from '../core/units.js';
import { createProgress } from '../ui/progress.js';
import { runVerify, type VerifyDoc } from '../verify/verify.js';

export default class Verify extends BaseCommand<typeof Verify> {
  static override summary = 'Re-read the objects of a disk and check their hashes, least recently verified first.';
  static override description =
    'Objects are read in on-disk order. Repeated partial runs (--percent, --max-time, --older-than) cover every object in turn. A bad object is read a second time; if it is still bad it is moved to distbackup-objects/.quarantine/ (never deleted) and stops counting as a copy, like a missing one; the next sync of any disk with room copies it again. Exit code 3 when anything was bad or missing.';
  static override examples = [
    '<%= config.bin %> verify backup1',
    '<%= config.bin %> verify --disk /media/backup1 --percent 10',
    '<%= config.bin %> verify backup1 --older-than 30d --max-time 2h',
  ];
  static override enableJsonFlag = true;
  static override args = { name: Args.string({ required: false, description: 'name of the disk' }) };
  static override flags = {
    disk: Flags.string({ summary: 'Folder of the disk (its distbackup-disk.json decides which disk it is).' }),
    'older-than': Flags.string({ summary: 'Only objects not verified for this long (e.g. 30d).' }),
    'max-time': Flags.string({ summary: 'Stop after this long (e.g. 2h); the next run goes on from there.' }),
    percent: Flags.string({ summary: 'Check this share of the disk (e.g. 10), least recently verified first.' }),
  };

  public async run(): Promise<VerifyDoc> {
    let percent: number | undefined;
    if (this.flags.percent !== undefined) {
      percent = Number(this.flags.percent.replace(/%$/, ''));
      if (!Number.isFinite(percent) || percent <= 0 || percent > 100) {
        throw new UsageError(`invalid --percent '${this.flags.percent}': expected a number above 0, at most 100`);
      }
    }
    const progress = createProgress({ label: 'verify', enabled: this.showProgress });
    let doc: VerifyDoc;
    try {
      doc = runVerify(this.catalog(), {
        name: this.args.name,
        diskPath: this.flags.disk,
        olderThanMs: this.flags['older-than'] === undefined ? undefined : parseDuration(this.flags['older-than']),
        maxTimeMs: this.flags['max-time'] === undefined ? undefined : parseDuration(this.flags['max-time']),
        percent,
        progress,
      });
    } finally {
      progress.stop();
    }
    for (const b of doc.badDetails) this.logToStderr(`bad: ${b.hash}: ${b.problem}`);
    for (const m of doc.missing) this.logToStderr(`missing: ${m}`);
    this.log(
      `verified ${doc.checked} objects (${prettyBytes(doc.bytesChecked)}) on ${doc.disk}: ${doc.bad.length} bad, ${doc.missing.length} missing` +
        (doc.okOnSecondRead.length > 0 ? `, ${doc.okOnSecondRead.length} ok on second read` : '') +
        (doc.remaining > 0 ? `; ${doc.remaining} not reached this time (stopped by ${doc.stoppedBy})` : ''),
    );
    if (doc.bad.length > 0 || doc.missing.length > 0) {
      this.log(
        `${doc.bad.length + doc.missing.length} copies no longer count; run 'distbackup sync' with any disk that has room to copy them again`,
      );
      this.setExitCode(ExitCode.verifyBad);
    }
    return doc;
  }
}
