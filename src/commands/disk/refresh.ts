import { BaseCommand } from '../../cli/base-command.js';
import { dryRunFlag } from '../../cli/flags.js';
import { Args, Flags } from '../../cli/oclif.js';
import { refreshDisk } from '../../disks/disks.js';
import type { ReconcileResult } from '../../disks/reconcile.js';
import { counted, formatCount } from '../../ui/format.js';

export default class DiskRefresh extends BaseCommand<typeof DiskRefresh> {
  static override summary = 'Rebuild what the catalogue knows of a disk from the objects really on it.';
  static override description =
    'Reads names and sizes only: counted copies that are missing stop counting, objects the catalogue knows are counted, files whose size does not match their name go to distbackup-objects/.quarantine/.';
  static override examples = [
    '<%= config.bin %> disk refresh backup3',
    '<%= config.bin %> disk refresh --disk /media/backup3',
  ];
  static override enableJsonFlag = true;
  static override args = { name: Args.string({ required: false, ignoreStdin: true, description: 'name of the disk' }) };
  static override flags = {
    'dry-run': dryRunFlag('Show what the catalogue would learn; change nothing, on the disk either.'),
    disk: Flags.string({
      helpValue: 'PATH',
      summary: 'Folder of the disk (its distbackup-disk.json decides which disk it is).',
    }),
  };

  public async run(): Promise<ReconcileResult & { disk: string; path: string }> {
    const doc = await refreshDisk(this.catalog(this.writeMode), { name: this.args.name, diskPath: this.flags.disk });
    this.log(
      `${this.dryRun ? 'would refresh ' : ''}disk ${doc.disk} at ${doc.path}: ${counted(doc.present, 'object')} present, ${formatCount(doc.adopted)} adopted, ${formatCount(doc.uncounted)} no longer counted, ${formatCount(doc.quarantined)} quarantined, ${formatCount(doc.unknown)} unknown, ${counted(doc.ignored, 'entry', 'entries')} ignored`,
    );
    return doc;
  }
}
