import { BaseCommand } from '../../cli/base-command.js';
import { dryRunFlag } from '../../cli/flags.js';
import { Args } from '../../cli/oclif.js';
import { unmapSource } from '../../sources/sources.js';

export default class SourceUnmap extends BaseCommand<typeof SourceUnmap> {
  static override summary = 'Remove a mapping; its files leave the catalogue (their objects become orphans).';
  static override examples = ['<%= config.bin %> source unmap /photos'];
  static override enableJsonFlag = true;
  static override args = { vpath: Args.string({ required: true, description: 'virtual path of the mapping' }) };
  static override flags = { 'dry-run': dryRunFlag() };

  public async run(): Promise<{ vpath: string; filesRemoved: number }> {
    const removed = unmapSource(this.lockedCatalog(this.writeMode), this.args.vpath);
    this.log(
      `${this.dryRun ? 'would unmap' : 'unmapped'} ${this.args.vpath} (${removed} catalogued files ${this.dryRun ? 'would be ' : ''}dropped)`,
    );
    return { vpath: this.args.vpath, filesRemoved: removed };
  }
}
