import prettyBytes from 'pretty-bytes';
import { BaseCommand } from '../../cli/base-command.js';
import { type DiskDoc, listDiskDocs } from '../../disks/disks.js';

export default class DiskList extends BaseCommand<typeof DiskList> {
  static override readOnly = true;
  static override summary = 'List the registered disks: size, used, objects, connected or not, last sync and verify.';
  static override examples = ['<%= config.bin %> disk list', '<%= config.bin %> disk list --json'];
  static override enableJsonFlag = true;

  public async run(): Promise<DiskDoc[]> {
    const docs = listDiskDocs(this.catalog());
    if (docs.length === 0) this.log('no disks registered yet: distbackup disk add NAME PATH');
    for (const d of docs) {
      const state = d.dropped !== null ? 'dropped' : d.mounted ? 'connected' : 'not connected';
      this.log(
        `${d.name}\t${prettyBytes(d.used)} / ${prettyBytes(d.size)}\t${d.objects} objects\t${state}\t${d.path ?? '-'}\tlast sync ${d.lastSync ?? 'never'}\tlast verify ${d.lastVerify ?? 'never'}`,
      );
    }
    return docs;
  }
}
