import prettyBytes from 'pretty-bytes';
import { BaseCommand } from '../../cli/base-command.js';
import { dryRunFlag } from '../../cli/flags.js';
import { Args, Flags } from '../../cli/oclif.js';
import { UsageError } from '../../core/errors.js';
import { parseSize } from '../../core/units.js';
import { type DiskDoc, setDisk } from '../../disks/disks.js';

export default class DiskSet extends BaseCommand<typeof DiskSet> {
  static override summary = 'Change the declared size or the name of a disk.';
  static override examples = [
    '<%= config.bin %> disk set backup3 --size 3.6T',
    '<%= config.bin %> disk set backup3 --rename offsite1',
  ];
  static override enableJsonFlag = true;
  static override args = { name: Args.string({ required: true, description: 'name of the disk' }) };
  static override flags = {
    'dry-run': dryRunFlag(),
    size: Flags.string({ helpValue: 'SIZE', summary: 'Bytes distbackup may fill (500G, 1.5TiB).' }),
    rename: Flags.string({ helpValue: 'NEW', summary: 'New name.' }),
  };

  public async run(): Promise<DiskDoc> {
    if (this.flags.size === undefined && this.flags.rename === undefined) {
      throw new UsageError('nothing to change: give --size and/or --rename');
    }
    const doc = setDisk(this.catalog(this.writeMode), this.args.name, {
      ...(this.flags.size === undefined ? {} : { sizeBytes: parseSize(this.flags.size) }),
      ...(this.flags.rename === undefined ? {} : { rename: this.flags.rename }),
    });
    this.log(
      `${this.dryRun ? 'would set ' : ''}disk ${doc.name}: size ${prettyBytes(doc.size)}, ${prettyBytes(doc.used)} used`,
    );
    if (doc.used > doc.size)
      this.warn(`disk ${doc.name} holds more than its new size; the next sync frees what it can`);
    return doc;
  }
}
