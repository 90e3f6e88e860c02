import * as fs from 'node:fs';
import { BaseCommand } from '../../cli/base-command.js';
import { dryRunFlag } from '../../cli/flags.js';
import { Args } from '../../cli/oclif.js';
import { describeImport, type ImportSummary, importConfig, parseConfigText } from '../../config/config.js';
import { describeError, UsageError } from '../../core/errors.js';

export default class ConfigImport extends BaseCommand<typeof ConfigImport> {
  static override summary = 'Apply a configuration written by config export (or by the Python distbackup).';
  static override description =
    `Only the sections present are applied, all or nothing: path_map replaces the mappings (one no longer listed is removed with its catalogued files), path_config replaces the path settings (below path_prefix when given), disks are matched by uuid and updated (import never adds a disk).`;
  static override examples = [
    '<%= config.bin %> config import backup-config.json',
    '<%= config.bin %> config import - --dry-run < backup-config.json',
  ];
  static override enableJsonFlag = true;
  static override args = {
    file: Args.string({ required: true, ignoreStdin: true, description: 'file to read (- for stdin)' }),
  };
  static override flags = {
    'dry-run': dryRunFlag('Check and show what would change; write nothing.'),
  };

  public async run(): Promise<ImportSummary> {
    const file = this.args.file;
    let text: string;
    try {
      text = fs.readFileSync(file === '-' ? 0 : file, 'utf8');
    } catch (err) {
      throw new UsageError(`${file}: cannot read it: ${describeError(err)}`);
    }
    const s = importConfig(this.lockedCatalog(this.createMode), parseConfigText(text, file === '-' ? 'stdin' : file), {
      dryRun: this.flags['dry-run'],
    });
    for (const line of describeImport(s)) this.log(line);
    for (const w of s.warnings) this.warn(w);
    return s;
  }
}
