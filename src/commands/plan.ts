import { BaseCommand } from '../cli/base-command.js';
import { Args, Flags } from '../cli/oclif.js';
import { parseSize } from '../core/units.js';
import { planLines } from '../sync/report.js';
import { runSync, type SyncDoc } from '../sync/sync.js';

export default class Plan extends BaseCommand<typeof Plan> {
  static override readOnly = true;
  static override summary = 'Show what a sync of a connected disk would do (= sync --dry-run).';
  static override description =
    'Deletions, evictions and copies with their bytes, and the redundancy histogram before and after. Nothing on the disk or in the catalogue changes.';
  static override examples = ['<%= config.bin %> plan backup3', '<%= config.bin %> plan --disk /media/backup3 --json'];
  static override enableJsonFlag = true;
  static override args = { name: Args.string({ required: false, ignoreStdin: true, description: 'name of the disk' }) };
  static override flags = {
    disk: Flags.string({ summary: 'Folder of the disk (its distbackup-disk.json decides which disk it is).' }),
    limit: Flags.string({ summary: 'Copy at most this many bytes (500G).' }),
    'max-copies': Flags.integer({ summary: 'Cap every object at N copies.', min: 1 }),
    'no-evict': Flags.boolean({ summary: 'Never evict a copy to make room.' }),
  };

  public async run(): Promise<SyncDoc> {
    const f = this.flags;
    const doc = await runSync(this.catalog(), {
      name: this.args.name,
      diskPath: f.disk,
      dryRun: true,
      limitBytes: f.limit === undefined ? undefined : parseSize(f.limit),
      maxCopies: f['max-copies'],
      noEvict: f['no-evict'],
      onNote: (line) => {
        if (!this.jsonEnabled() && !f.quiet) process.stderr.write(`${line}\n`);
      },
    });
    for (const line of planLines(doc)) this.log(line);
    return doc;
  }
}
