import prettyBytes from 'pretty-bytes';
import { BaseCommand } from '../cli/base-command.js';
import { Args } from '../cli/oclif.js';
import { ExitCode, UsageError } from '../core/errors.js';
import { runWhereis, type WhereisEntry } from '../whereis/whereis.js';

export default class Whereis extends BaseCommand<typeof Whereis> {
  static override readOnly = true;
  static override summary = 'Show which disks hold each file, and when each copy was last verified.';
  static override description = 'A folder lists every file below it. Paths are virtual paths (see source list).';
  static override examples = [
    '<%= config.bin %> whereis /photos/2024/img_0001.jpg',
    '<%= config.bin %> whereis /photos/2024',
    '<%= config.bin %> whereis /docs --json',
  ];
  static override enableJsonFlag = true;
  static override strict = false;
  static override args = { vpath: Args.string({ required: true, description: 'virtual paths of files or folders' }) };

  public async run(): Promise<WhereisEntry[]> {
    const { argv } = await this.parse({
      flags: Whereis.flags,
      baseFlags: BaseCommand.baseFlags,
      args: Whereis.args,
      strict: false,
      enableJsonFlag: true,
    });
    const vpaths = (argv as unknown[]).filter((a): a is string => typeof a === 'string');
    const json = this.jsonEnabled();
    const result = runWhereis(this.catalog({ readonly: true }), vpaths, (e) => {
      if (json) return;
      const where =
        e.copies.length === 0
          ? 'NO COPY'
          : e.copies
              .map(
                (c) => `${c.disk} (${c.verified === null ? 'never verified' : `verified ${c.verified.slice(0, 10)}`})`,
              )
              .join(', ');
      this.log(`${e.path}\t${prettyBytes(e.size)}\t${e.hash ?? 'not hashed yet'}\t${where}`);
    });
    for (const v of result.noFiles) {
      this.logToStderr(
        `${v}: a link or a folder without files: restore rebuilds it from the catalogue, no disk holds a copy`,
      );
    }
    if (result.notFound.length > 0 && result.entries.length === 0 && result.noFiles.length === 0) {
      // One line for the whole failure, naming every path (not a line each and a summary).
      throw new UsageError(`${result.notFound.join(', ')}: not in the catalogue (see 'distbackup ls')`);
    }
    for (const v of result.notFound) this.logToStderr(`distbackup: ${v}: not in the catalogue`);
    if (result.notFound.length > 0) this.setExitCode(ExitCode.error);
    return result.entries;
  }
}
