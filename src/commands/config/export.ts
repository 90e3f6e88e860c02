import { BaseCommand } from '../../cli/base-command.js';
import { Args, Flags } from '../../cli/oclif.js';
import { type ConfigDoc, configText, exportConfig } from '../../config/config.js';
import { writeFileAtomic } from '../../core/durable.js';
import { fileError } from '../../core/errors.js';

export default class ConfigExport extends BaseCommand<typeof ConfigExport> {
  static override readOnly = true;
  static override summary = 'Write the source map, path settings and disks as JSON.';
  static override description =
    "The document has the Python distbackup's shape (path_map, path_config, disks), so either tool's export imports into the other's.";
  static override examples = [
    '<%= config.bin %> config export',
    '<%= config.bin %> config export backup-config.json',
    '<%= config.bin %> config export - --path-prefix /photos',
  ];
  static override args = {
    file: Args.string({ required: false, ignoreStdin: true, description: 'file to write (default or -: stdout)' }),
  };
  static override flags = {
    'path-prefix': Flags.string({
      helpValue: 'VPATH',
      summary: 'Only the path settings at and below this virtual path.',
    }),
  };

  public async run(): Promise<ConfigDoc> {
    const doc = exportConfig(this.catalog({ readonly: true }), {
      ...(this.flags['path-prefix'] === undefined ? {} : { pathPrefix: this.flags['path-prefix'] }),
    });
    const text = configText(doc);
    const file = this.args.file;
    if (file === undefined || file === '-') process.stdout.write(text);
    else {
      try {
        writeFileAtomic(file, text, 0o600);
      } catch (err) {
        throw fileError(file, err, 'cannot write the settings');
      }
      process.stderr.write(`wrote ${file}\n`);
    }
    return doc;
  }
}
