import { BaseCommand } from '../../cli/base-command.js';
import { dryRunFlag } from '../../cli/flags.js';
import { Args } from '../../cli/oclif.js';
import { describeImport } from '../../config/config.js';
import { type EditResult, type EditSection, editConfig, editorCommand, runEditor } from '../../config/edit.js';

export default class ConfigEdit extends BaseCommand<typeof ConfigEdit> {
  static override summary = 'Edit the configuration (or one section) in $VISUAL / $EDITOR, validated when saved.';
  static override description =
    'Sections: map (mappings), path [VPATH] (path settings, or those at and below VPATH), disks. On a validation error you choose to edit again, revert to the saved configuration, or cancel. The catalogue stays locked while the editor is open (update, sync and verify are refused meanwhile), so that what you edit is what gets replaced.';
  static override examples = [
    '<%= config.bin %> config edit',
    '<%= config.bin %> config edit path /photos',
    'EDITOR=nano <%= config.bin %> config edit disks',
  ];
  static override args = {
    section: Args.string({
      required: false,
      ignoreStdin: true,
      options: ['map', 'path', 'disks'],
      description: 'part to edit (default: all)',
    }),
    vpath: Args.string({
      required: false,
      ignoreStdin: true,
      description: 'with path: only the settings at and below this folder',
    }),
  };
  static override flags = {
    'dry-run': dryRunFlag('Check the edit and show what would change; write nothing.'),
  };

  public async run(): Promise<EditResult> {
    const editor = editorCommand();
    let readLine: (() => Promise<string | null>) | undefined;
    try {
      const r = await editConfig(
        this.lockedCatalog(this.createMode),
        (this.args.section ?? 'all') as EditSection,
        this.args.vpath,
        {
          edit: (file) => runEditor(editor, file),
          choose: async () => {
            for (;;) {
              process.stderr.write('[e]dit again, [r]evert to the saved configuration, or [c]ancel? ');
              readLine ??= lineReader(process.stdin);
              const line = await readLine();
              if (line === null) return 'cancel';
              const a = line.trim().toLowerCase();
              if (a === 'e' || a === 'edit') return 'edit';
              if (a === 'r' || a === 'revert') return 'revert';
              if (a === 'c' || a === 'cancel' || a === 'q') return 'cancel';
            }
          },
          say: (line) => process.stderr.write(`${line}\n`),
        },
        { dryRun: this.flags['dry-run'] },
      );
      if (r.summary !== undefined) {
        for (const line of describeImport(r.summary)) this.log(line);
        for (const w of r.summary.warnings) this.warn(w);
      }
      return r;
    } finally {
      if (readLine !== undefined) process.stdin.pause();
    }
  }
}

/**
 * Lines of `stream`, one per call; null at the end of input. Reads only once asked, so an
 * editor run before the first question still owns the terminal.
 */
function lineReader(stream: NodeJS.ReadStream): () => Promise<string | null> {
  let buf = '';
  // Input may already be over (read to its end before this command ran).
  let ended = stream.readableEnded || stream.destroyed;
  const waiting: Array<(line: string | null) => void> = [];
  const flush = (): void => {
    while (waiting.length > 0) {
      const nl = buf.indexOf('\n');
      if (nl >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        waiting.shift()?.(line);
      } else if (ended) {
        const rest = buf;
        buf = '';
        waiting.shift()?.(rest === '' ? null : rest);
      } else {
        break;
      }
    }
    if (waiting.length === 0) stream.pause();
  };
  stream.setEncoding('utf8');
  stream.on('data', (d: string) => {
    buf += d;
    flush();
  });
  stream.on('end', () => {
    ended = true;
    flush();
  });
  stream.on('error', () => {
    ended = true;
    flush();
  });
  stream.pause();
  return () =>
    new Promise((resolve) => {
      waiting.push(resolve);
      stream.resume();
      flush();
    });
}
