import { BaseCommand } from '../../cli/base-command.js';
import { Args } from '../../cli/oclif.js';
import { type DebugInfo, debugInfo } from '../../sources/debug-info.js';
import { describeEffective } from '../../sources/settings.js';
import { counted, sizeWithBytes } from '../../ui/format.js';

export default class DebugInfoCommand extends BaseCommand<typeof DebugInfoCommand> {
  static override readOnly = true;
  static override summary = 'Show what the catalogue knows of a virtual path and why it is (not) backed up.';
  static override examples = [
    '<%= config.bin %> debug info /photos/2024/img_0001.jpg',
    '<%= config.bin %> debug info /photos --json',
  ];
  static override enableJsonFlag = true;
  static override args = { vpath: Args.string({ required: true, ignoreStdin: true, description: 'virtual path' }) };

  public async run(): Promise<DebugInfo> {
    const r = debugInfo(this.catalog({ readonly: true }), this.args.vpath);
    this.log(r.vpath);
    this.log(
      `  source:     ${r.source === null ? 'not under any mapped folder' : `${r.source.vpath} -> ${r.source.realPath}`}`,
    );
    const c = r.catalogued;
    if (c === null) this.log('  catalogued: no');
    else {
      this.log(`  catalogued: ${c.kind}, ${sizeWithBytes(c.size)}, mode ${c.mode}, modified ${c.mtime ?? '?'}`);
      if (c.kind === 'file') this.log(`  hash:       ${c.hash ?? 'not hashed yet (run update)'}`);
      if (c.linkTarget !== null) this.log(`  target:     ${c.linkTarget}`);
      this.log(
        `  stored:     priority ${c.stored.priority}, min copies ${c.stored.minCopies}, max copies ${c.stored.maxCopies ?? 'no cap'}`,
      );
      if (c.kind === 'file') {
        this.log(`  disks:      ${c.disks.length === 0 ? 'none' : c.disks.map((d) => d.name).join(', ')}`);
        if (c.sameContent > 0) this.log(`  same content as ${counted(c.sameContent, 'other path')}`);
      }
    }
    if (r.below !== null) this.log(`  below:      ${counted(r.below.files, 'file')}, ${sizeWithBytes(r.below.bytes)}`);
    const e = r.settings.excluded;
    this.log(
      `  settings:   ${e === null ? 'backed up' : `left out (${e.reason}${e.rule === undefined ? '' : ` '${e.rule}'`} at ${e.at})`}, priority ${r.settings.priority}`,
    );
    if (r.folder !== null) for (const line of describeEffective(r.folder).slice(1)) this.log(line);
    return r;
  }
}
