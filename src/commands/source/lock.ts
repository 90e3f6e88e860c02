import { BaseCommand } from '../../cli/base-command.js';
import { dryRunFlag } from '../../cli/flags.js';
import { Args } from '../../cli/oclif.js';
import { listLocked, setPathSettings } from '../../sources/settings.js';

export default class SourceLock extends BaseCommand<typeof SourceLock> {
  static override summary = 'List locked folders, or lock folders: keep their catalogued files without scanning them.';
  static override description =
    'A locked folder is not scanned by update: its catalogued files stay as they are (a source that is away, a network share that is off). With no VPATH, lists the locked folders.';
  static override examples = [
    '<%= config.bin %> source lock',
    '<%= config.bin %> source lock /mnt/nas /media/old-laptop',
  ];
  static override enableJsonFlag = true;
  static override strict = false;
  static override args = {
    vpath: Args.string({ required: false, ignoreStdin: true, description: 'virtual folder(s) to lock' }),
  };
  static override flags = {
    'dry-run': dryRunFlag(),
  };

  public async run(): Promise<Array<{ vpath: string }>> {
    const { argv } = await this.parse(SourceLock);
    const vpaths = argv as string[];
    if (vpaths.length === 0) {
      const locked = listLocked(this.catalog(this.listMode));
      if (locked.length === 0) this.log('no folder is locked');
      for (const l of locked) this.log(l.vpath);
      return locked.map((l) => ({ vpath: l.vpath }));
    }
    const docs = setPathSettings(
      this.lockedCatalog(this.writeMode),
      vpaths,
      { lock: true },
      { dryRun: this.flags['dry-run'] },
    );
    for (const d of docs) this.log(`${this.flags['dry-run'] ? 'would lock' : 'locked'} ${d.vpath}`);
    return docs.map((d) => ({ vpath: d.vpath }));
  }
}
