import prettyBytes from 'pretty-bytes';
import { BaseCommand } from '../cli/base-command.js';
import { copyFilterFlags, copyFilterOf } from '../cli/flags.js';
import { Args, Flags } from '../cli/oclif.js';
import { normalizeVpath } from '../core/vpath.js';
import { resolveFilter, viewRows } from '../views/rows.js';
import { buildTree, renderTree, type TreeNode } from '../views/tree.js';

export default class Tree extends BaseCommand<typeof Tree> {
  static override readOnly = true;
  static override summary = 'The virtual tree with files and bytes per copy count, largest folders first.';
  static override description =
    `Bytes are counted once per content (a file and its duplicates cost one copy). Filters: --on (held by all of these disks), --not-on (by none of them), --simulate-loss (copies counted as if these disks had died), --min-copies / --max-copies (after the simulated loss).`;
  static override examples = [
    '<%= config.bin %> tree',
    '<%= config.bin %> tree /photos --depth 1',
    '<%= config.bin %> tree --simulate-loss backup1 --max-copies 0',
    '<%= config.bin %> tree --on backup1 --not-on backup2 --json',
  ];
  static override enableJsonFlag = true;
  static override args = {
    vpath: Args.string({ required: false, ignoreStdin: true, description: 'folder to show (default /)' }),
  };
  static override flags = {
    depth: Flags.integer({ helpValue: 'N', summary: 'Folder levels to show below VPATH.', default: 3, min: 0 }),
    all: Flags.boolean({ summary: 'Show every folder, however deep.' }),
    ...copyFilterFlags,
  };

  public async run(): Promise<TreeNode> {
    const f = this.flags;
    const db = this.catalog({ readonly: true }).db;
    const filter = resolveFilter(db, copyFilterOf(f));
    const prefix = normalizeVpath(this.args.vpath ?? '/');
    const root = buildTree(viewRows(db, prefix, filter), prefix, f.all ? Number.POSITIVE_INFINITY : f.depth);
    if (root.files === 0) this.log('no files match');
    else for (const line of renderTree(root, (n) => prettyBytes(n))) this.log(line);
    return root;
  }
}
