import { BaseCommand } from '../../cli/base-command.js';
import { dryRunFlag } from '../../cli/flags.js';
import { Args } from '../../cli/oclif.js';
import { removeDisk } from '../../disks/disks.js';

export default class DiskRemove extends BaseCommand<typeof DiskRemove> {
  static override summary = 'Forget a disk (refused while it still holds counted copies: disk drop first).';
  static override examples = ['<%= config.bin %> disk drop backup2', '<%= config.bin %> disk remove backup2'];
  static override enableJsonFlag = true;
  static override args = { name: Args.string({ required: true, description: 'name of the disk' }) };
  static override flags = { 'dry-run': dryRunFlag() };

  public async run(): Promise<{ disk: string; uuid: string }> {
    const doc = removeDisk(this.catalog(this.writeMode), this.args.name);
    this.log(
      `disk ${doc.disk} (uuid ${doc.uuid}) ${this.dryRun ? 'would be forgotten' : 'forgotten'}; nothing on it was touched`,
    );
    return doc;
  }
}
