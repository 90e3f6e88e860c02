import { Args, Flags } from '@oclif/core';
import prettyBytes from 'pretty-bytes';
import { BaseCommand } from '../cli/base-command.js';
import { alignColumns, counted, formatCount } from '../ui/format.js';
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
    const out: LsEntry[] = [];
    const json = this.jsonEnabled();
    // The columns are as wide as their widest cell, so the rows are kept until the end; a holder
    // list is one string shared by every row with the same disks.
    const rows: string[][] = [];
    const holders = new Map<string, string>();
    let bytes = 0;
    for (const e of lsEntries(this.catalog({ readonly: true }).db, this.args.pattern, this.flags.disk)) {
      if (json) {
        out.push(e);
        continue;
      }
      const list = e.disks.length === 0 ? '-' : e.disks.join(', ');
      const disks = holders.get(list) ?? list;
      holders.set(disks, disks);
      rows.push([prettyBytes(e.size), formatCount(e.disks.length), disks, e.path]);
      bytes += e.size;
    }
    if (!json) {
      if (rows.length > 0)
        for (const line of alignColumns([['size', 'copies', 'disks', 'path'], ...rows])) this.log(line);
      this.log(`${counted(rows.length, 'file')}, ${prettyBytes(bytes)}`);
    }
    return out;
  }
}
