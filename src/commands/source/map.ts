import { BaseCommand } from '../../cli/base-command.js';
import { dryRunFlag } from '../../cli/flags.js';
import { Args, Flags } from '../../cli/oclif.js';
import { mapSource, type SourceDoc } from '../../sources/sources.js';

export default class SourceMap extends BaseCommand<typeof SourceMap> {
  static override summary = 'Map a real folder into the virtual tree.';
  static override description =
    'Mappings may nest (/videos/stream inside /videos): the nested mapping owns its subtree. Globs match paths relative to the mapped folder.';
  static override examples = [
    '<%= config.bin %> source map /photos /media/photos/DCIM',
    "<%= config.bin %> source map /videos ~/Videos --exclude '*.part' --min-copies 2",
  ];
  static override enableJsonFlag = true;
  static override args = {
    vpath: Args.string({ required: true, description: 'virtual path, e.g. /photos' }),
    realpath: Args.string({ required: true, description: 'real folder to back up' }),
  };
  static override flags = {
    exclude: Flags.string({ helpValue: 'GLOB', multiple: true, summary: 'Glob of paths to leave out (repeatable).' }),
    include: Flags.string({
      helpValue: 'GLOB',
      multiple: true,
      summary: 'Glob of paths to keep; when given, only these (repeatable).',
    }),
    'follow-symlinks': Flags.boolean({ summary: 'Follow symbolic links instead of recording them as links.' }),
    'min-copies': Flags.integer({ helpValue: 'N', summary: 'Copy target of these files (default 1).', min: 0 }),
    'dry-run': dryRunFlag(),
  };

  public async run(): Promise<SourceDoc> {
    const cat = this.lockedCatalog(this.createMode);
    const doc = mapSource(cat, this.args.vpath, this.args.realpath, {
      ...(this.flags.include === undefined ? {} : { include: this.flags.include }),
      ...(this.flags.exclude === undefined ? {} : { exclude: this.flags.exclude }),
      followSymlinks: this.flags['follow-symlinks'],
      ...(this.flags['min-copies'] === undefined ? {} : { minCopies: this.flags['min-copies'] }),
    });
    this.log(`${this.dryRun ? 'would map' : 'mapped'} ${doc.vpath} -> ${doc.path}`);
    return doc;
  }
}
