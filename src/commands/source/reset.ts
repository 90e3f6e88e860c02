import { BaseCommand } from '../../cli/base-command.js';
import { dryRunFlag } from '../../cli/flags.js';
import { Args, Flags } from '../../cli/oclif.js';
import { resetPathSettings, type SetResultDoc } from '../../sources/settings.js';
import { counted } from '../../ui/format.js';

export default class SourceReset extends BaseCommand<typeof SourceReset> {
  static override summary = 'Remove the settings stored at folders, so that they inherit everything again.';
  static override examples = [
    '<%= config.bin %> source reset /photos/raw',
    '<%= config.bin %> source reset / --recursive',
  ];
  static override enableJsonFlag = true;
  static override strict = false;
  static override args = {
    vpath: Args.string({ required: true, ignoreStdin: true, description: 'virtual folder(s)' }),
  };
  static override flags = {
    recursive: Flags.boolean({ char: 'r', summary: 'Also remove the settings of every folder below.' }),
    'dry-run': dryRunFlag(),
  };

  public async run(): Promise<SetResultDoc[]> {
    const { argv } = await this.parse(SourceReset);
    const docs = resetPathSettings(this.lockedCatalog(this.writeMode), argv as string[], {
      recursive: this.flags.recursive,
      dryRun: this.flags['dry-run'],
    });
    for (const d of docs) {
      this.log(
        `${this.flags['dry-run'] ? 'would reset' : 'reset'} ${d.vpath} (${counted(d.filesUpdated, 'catalogued file')} updated)`,
      );
    }
    return docs;
  }
}
