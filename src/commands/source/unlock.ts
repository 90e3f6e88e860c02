import { BaseCommand } from '../../cli/base-command.js';
import { dryRunFlag } from '../../cli/flags.js';
import { Args } from '../../cli/oclif.js';
import { setPathSettings } from '../../sources/settings.js';

export default class SourceUnlock extends BaseCommand<typeof SourceUnlock> {
  static override summary = 'Unlock folders: the next update scans them again.';
  static override examples = ['<%= config.bin %> source unlock /mnt/nas'];
  static override enableJsonFlag = true;
  static override strict = false;
  static override args = {
    vpath: Args.string({ required: true, ignoreStdin: true, description: 'virtual folder(s) to unlock' }),
  };
  static override flags = {
    'dry-run': dryRunFlag(),
  };

  public async run(): Promise<Array<{ vpath: string; locked: boolean; lockedAt: string | null }>> {
    const { argv } = await this.parse(SourceUnlock);
    const docs = setPathSettings(
      this.lockedCatalog(this.writeMode),
      argv as string[],
      { lock: false },
      { dryRun: this.flags['dry-run'] },
    );
    for (const d of docs) {
      const still = d.effective.lockedAt !== null ? ` (still locked by ${d.effective.lockedAt})` : '';
      this.log(`${this.flags['dry-run'] ? 'would unlock' : 'unlocked'} ${d.vpath}${still}`);
    }
    return docs.map((d) => ({ vpath: d.vpath, locked: d.effective.locked, lockedAt: d.effective.lockedAt }));
  }
}
