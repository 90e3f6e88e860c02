import { Args, Flags } from '@oclif/core';
import prettyBytes from 'pretty-bytes';
import { BaseCommand } from '../cli/base-command.js';
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
    for (const e of lsEntries(this.catalog({ readonly: true }).db, this.args.pattern, this.flags.disk)) {
      if (json) out.push(e);
      else this.log(`${prettyBytes(e.size).padStart(9)}  (${e.disks.join(',')})  ${e.path}`);
    }
    return out;
  }
}
