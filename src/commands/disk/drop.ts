import { BaseCommand } from '../../cli/base-command.js';
import { dryRunFlag } from '../../cli/flags.js';
import { Args } from '../../cli/oclif.js';
import { dropDisk } from '../../disks/disks.js';
import { counted } from '../../ui/format.js';

export default class DiskDrop extends BaseCommand<typeof DiskDrop> {
  static override summary = "Mark a failed or lost disk's copies gone.";
  static override description =
    'Its copies stop counting, so the next syncs of the other disks copy those objects again. The disk stays registered (remove it with disk remove); connecting it later and running disk refresh counts what it really holds again.';
  static override examples = ['<%= config.bin %> disk drop backup2'];
  static override enableJsonFlag = true;
  static override args = { name: Args.string({ required: true, description: 'name of the disk' }) };
  static override flags = { 'dry-run': dryRunFlag() };

  public async run(): Promise<{ disk: string; copiesDropped: number; objectsAtZero: number }> {
    const doc = dropDisk(this.catalog(this.writeMode), this.args.name);
    this.log(
      `disk ${doc.disk}: ${counted(doc.copiesDropped, 'copy', 'copies')} ${this.dryRun ? 'would no longer be' : 'no longer'} counted`,
    );
    if (doc.objectsAtZero > 0)
      this.warn(
        `${counted(doc.objectsAtZero, 'object')} ${this.dryRun ? 'would have' : doc.objectsAtZero === 1 ? 'now has' : 'now have'} no copy on any disk: sync another disk`,
      );
    return doc;
  }
}
