import * as fs from 'node:fs';
import * as path from 'node:path';
import { CATALOGUE_FILE } from '../../catalog/db.js';
import { BaseCommand } from '../../cli/base-command.js';
import { Args } from '../../cli/oclif.js';
import { type DebugHash, debugHash } from '../../sources/debug-info.js';
import { sizeWithBytes } from '../../ui/format.js';

export default class DebugHashCommand extends BaseCommand<typeof DebugHashCommand> {
  static override readOnly = true;
  static override summary = 'Print the SHA-256 of a file, and where the catalogue already has that content.';
  static override examples = ['<%= config.bin %> debug hash ~/Pictures/img_0001.jpg'];
  static override enableJsonFlag = true;
  static override args = { file: Args.string({ required: true, ignoreStdin: true, description: 'a real file' }) };

  public async run(): Promise<DebugHash> {
    const hasCatalogue = fs.existsSync(path.join(this.dataDir, CATALOGUE_FILE));
    const r = debugHash(hasCatalogue ? this.catalog({ readonly: true }) : undefined, this.args.file);
    this.log(`${r.hash}  ${r.path}`);
    if (r.known) {
      this.log(
        `  known content, ${sizeWithBytes(r.size)}, on ${r.disks.length === 0 ? 'no disk yet' : r.disks.join(', ')}`,
      );
      for (const p of r.paths) this.log(`  ${p}`);
    } else if (hasCatalogue) {
      this.log('  not in the catalogue');
    }
    return r;
  }
}
