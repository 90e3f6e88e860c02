import prettyBytes from 'pretty-bytes';
import { BaseCommand } from '../cli/base-command.js';
import { Args, Flags } from '../cli/oclif.js';
import { alignRow, counted, formatCount } from '../ui/format.js';
import { type LsEntry, lsEntries } from '../views/ls.js';

export default class Ls extends BaseCommand<typeof Ls> {
  static override readOnly = true;
  static override summary = 'List catalogued files with their size and the disks holding them.';
  static override description =
    'PATTERN is a glob on virtual paths (* and ? also match /); it matches a path and everything below it.';
  static override examples = [
    '<%= config.bin %> ls /photos/2024',
    "<%= config.bin %> ls '*.jpg' --disk backup3",
    '<%= config.bin %> ls --json /docs',
  ];
  static override enableJsonFlag = true;
  static override args = {
    pattern: Args.string({ required: false, ignoreStdin: true, description: 'glob on virtual paths' }),
  };
  static override flags = {
    disk: Flags.string({ summary: 'Only files whose content is on this disk.' }),
  };

  public async run(): Promise<LsEntry[]> {
    const db = this.catalog({ readonly: true }).db;
    const { pattern } = this.args;
    const { disk } = this.flags;
    if (this.jsonEnabled()) return [...lsEntries(db, pattern, disk)];
    // Two passes over the catalogue instead of keeping the rows: the first measures the columns,
    // the second prints them. Memory stays one row whatever the number of files.
    const header = ['size', 'copies', 'disks', 'path'];
    const cells = (e: LsEntry): string[] => [
      prettyBytes(e.size),
      formatCount(e.disks.length),
      e.disks.length === 0 ? '-' : e.disks.join(', '),
      e.path,
    ];
    const widths = header.map((h) => h.length);
    let files = 0;
    let bytes = 0;
    for (const e of lsEntries(db, pattern, disk)) {
      for (const [i, c] of cells(e).entries()) widths[i] = Math.max(widths[i] ?? 0, c.length);
      files++;
      bytes += e.size;
    }
    if (files > 0) {
      const line = (r: readonly string[]): string => alignRow(r, widths);
      this.log(line(header));
      for (const e of lsEntries(db, pattern, disk)) this.log(line(cells(e)));
    }
    this.log(`${counted(files, 'file')}, ${prettyBytes(bytes)}`);
    return [];
  }
}
