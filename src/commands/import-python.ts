import * as fs from 'node:fs';
import * as path from 'node:path';
import { CATALOGUE_FILE } from '../catalog/db.js';
import { BaseCommand } from '../cli/base-command.js';
import { dryRunFlag } from '../cli/flags.js';
import { Args } from '../cli/oclif.js';
import { UsageError } from '../core/errors.js';
import { type ImportResult, importPython } from '../import-python/import.js';
import { openPythonCatalogue } from '../import-python/python-catalogue.js';
import { counted, formatCount } from '../ui/format.js';

export default class ImportPython extends BaseCommand<typeof ImportPython> {
  static override summary = 'Adopt a catalogue written by the Python distbackup (schema 31) and its disks.';
  static override description =
    `Reads CATALOGUE (a distbackup.sqlite file, or a folder holding one: the Python home folder or a backup disk) and brings its mappings, path settings, files, objects, disks and copies into a new home catalogue. Its disks then sync without copying anything again.

The home catalogue must be new (use -d DIR for a fresh data folder). The Python catalogue is only read, from a private copy. Files whose size and modification time still match keep the Python hash and are not read again by the next update.`;
  static override examples = [
    '<%= config.bin %> import-python ~/.config/distbackup/distbackup.sqlite',
    '<%= config.bin %> -d ~/.local/share/distbackup import-python /media/backup3/distbackup.sqlite --dry-run',
  ];
  static override enableJsonFlag = true;
  static override args = {
    catalogue: Args.string({
      required: true,
      ignoreStdin: true,
      description: "the Python distbackup's catalogue file or its folder",
    }),
  };
  static override flags = {
    'dry-run': dryRunFlag('Read and check everything, write nothing.'),
  };

  public async run(): Promise<ImportResult> {
    // The input first: a missing, unreadable or foreign file is named before the home is opened.
    const py = openPythonCatalogue(this.args.catalogue);
    let r: ImportResult;
    try {
      // Both tools default to ~/.config/distbackup: the file to import must not be the home
      // catalogue itself (opened as home, it would be converted, then refused as too new).
      const home = path.join(this.dataDir, CATALOGUE_FILE);
      if (fs.existsSync(home) && fs.realpathSync(home) === fs.realpathSync(py.file)) {
        throw new UsageError(
          `${py.file}: this is the home catalogue's own file; give another data folder with -d (or DISTBACKUP_PATH) to import it into`,
          { path: py.file },
        );
      }
      r = importPython(this.catalog(this.createMode), py, { dryRun: this.flags['dry-run'] });
    } finally {
      py.close();
    }
    const verb = r.dryRun ? 'would import' : 'imported';
    this.log(`${verb} from ${r.catalogue} (schema ${r.schemaVersion}):`);
    this.log(`  ${counted(r.sources, 'mapped folder')}, ${counted(r.settings, 'path setting')}`);
    this.log(
      `  ${counted(r.files, 'file')} (${formatCount(r.filesChecked)} checked against the disk, ${formatCount(r.filesNotHashed)} not hashed yet), ${counted(r.symlinks, 'symlink')}, ${counted(r.folders, 'folder')}`,
    );
    this.log(`  ${counted(r.objects, 'object')}, ${counted(r.disks, 'disk')}, ${counted(r.copies, 'copy', 'copies')}`);
    for (const w of r.warnings) this.warn(w);
    if (r.warningCount > r.warnings.length) this.warn(`… and ${r.warningCount - r.warnings.length} more warnings`);
    if (!r.dryRun && r.files - r.filesChecked > 0) {
      this.log(
        `next: 'distbackup update' (hashes the ${counted(r.files - r.filesChecked, 'file')} it could not check), then 'distbackup sync NAME'`,
      );
    }
    return r;
  }
}
