import prettyBytes from 'pretty-bytes';
import { BaseCommand } from '../../cli/base-command.js';
import { dryRunFlag } from '../../cli/flags.js';
import { Args, Flags } from '../../cli/oclif.js';
import { parseSize } from '../../core/units.js';
import { addDisk, type DiskAddDoc } from '../../disks/disks.js';

export default class DiskAdd extends BaseCommand<typeof DiskAdd> {
  static override summary = 'Register a folder on a backup disk.';
  static override description =
    'Writes distbackup-disk.json and creates distbackup-objects/. A folder that already is a distbackup disk (for example one written by the Python distbackup) is adopted: its uuid is kept and the objects on it are counted. Default size: the filesystem size minus min(5 %, 10 GB).';
  static override examples = [
    '<%= config.bin %> disk add backup3 /media/backup3',
    '<%= config.bin %> disk add usb1 /media/usb1/distbackup --size 1.5T',
  ];
  static override enableJsonFlag = true;
  static override args = {
    name: Args.string({ required: true, description: 'name of the disk (A-Z a-z 0-9 . _ -)' }),
    path: Args.string({ required: true, description: 'folder on the disk' }),
  };
  static override flags = {
    'dry-run': dryRunFlag('Check the folder and show what would be registered; write nothing, on the disk either.'),
    size: Flags.string({
      helpValue: 'SIZE',
      summary: 'Bytes distbackup may fill (500G, 1.5TiB); default: filesystem size minus min(5 %, 10 GB).',
    }),
  };

  public async run(): Promise<DiskAddDoc> {
    const doc = addDisk(this.catalog(this.createMode), this.args.name, this.args.path, {
      ...(this.flags.size === undefined ? {} : { sizeBytes: parseSize(this.flags.size) }),
    });
    for (const w of doc.warnings) this.warn(w);
    this.summary(`${this.dryRun ? 'would have ' : ''}${doc.adopted ? 'adopted' : 'registered'} disk ${doc.name}`);
    this.log(`  uuid         ${doc.uuid}`);
    this.log(`  size         ${prettyBytes(doc.size)} (${doc.size} bytes)`);
    this.log(`  folder       ${doc.path}`);
    this.log(`  mount point  ${doc.mountPoint ?? 'unknown'}`);
    this.log(`  relative     ${doc.relPath === null ? 'unknown' : doc.relPath === '' ? '.' : doc.relPath}`);
    if (doc.fsUuid !== null) this.log(`  fs uuid      ${doc.fsUuid}`);
    if (doc.fsType !== null) this.log(`  fs type      ${doc.fsType}`);
    if (doc.adopted) this.log(`  objects      ${doc.objectsAdopted} ${this.dryRun ? 'to adopt' : 'adopted'}`);
    return doc;
  }
}
