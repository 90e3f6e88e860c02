import { BaseCommand } from '../../cli/base-command.js';
import { listSourceDocs, type SourceDoc } from '../../sources/sources.js';

export default class SourceList extends BaseCommand<typeof SourceList> {
  static override readOnly = true;
  static override summary = 'List the mappings of real folders into the virtual tree.';
  static override examples = ['<%= config.bin %> source list', '<%= config.bin %> source list --json'];
  static override enableJsonFlag = true;

  public async run(): Promise<SourceDoc[]> {
    const docs = listSourceDocs(this.catalog(this.listMode));
    if (docs.length === 0) this.log('no sources mapped yet: distbackup source map VPATH REALPATH');
    for (const d of docs) {
      const extra = [
        d.include.length > 0 ? `include ${d.include.join(',')}` : '',
        d.exclude.length > 0 ? `exclude ${d.exclude.join(',')}` : '',
        d.followSymlinks ? 'follow symlinks' : '',
        d.minCopies !== 1 ? `min copies ${d.minCopies}` : '',
      ].filter((s) => s !== '');
      this.log(`${d.vpath}\t${d.path}${extra.length > 0 ? `\t(${extra.join('; ')})` : ''}`);
    }
    return docs;
  }
}
