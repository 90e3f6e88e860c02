import prettyBytes from 'pretty-bytes';
import { BaseCommand } from '../../cli/base-command.js';
import { type DiskDoc, listDiskDocs } from '../../disks/disks.js';
import { alignColumns, formatCount, formatWhen } from '../../ui/format.js';

export default class DiskList extends BaseCommand<typeof DiskList> {
  static override readOnly = true;
  static override summary = 'List the registered disks: size, used, objects, connected or not, last sync and verify.';
  static override examples = ['<%= config.bin %> disk list', '<%= config.bin %> disk list --json'];
  static override enableJsonFlag = true;

  public async run(): Promise<DiskDoc[]> {
    const docs = listDiskDocs(this.catalog(this.listMode));
    if (docs.length === 0) this.log('no disks registered yet: distbackup disk add NAME PATH');
    const rows = docs.map((d) => [
      d.name,
      prettyBytes(d.size),
      prettyBytes(d.used),
      formatCount(d.objects),
      d.dropped !== null ? 'dropped' : d.mounted ? 'connected' : 'not connected',
      formatWhen(d.lastSync),
      formatWhen(d.lastVerify),
      d.path ?? '-',
    ]);
    if (rows.length > 0) {
      const head = ['disk', 'size', 'used', 'objects', 'state', 'last sync', 'last verify', 'folder'];
      for (const line of alignColumns([head, ...rows])) this.log(line);
    }
    return docs;
  }
}
