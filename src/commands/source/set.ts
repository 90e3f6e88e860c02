import { BaseCommand } from '../../cli/base-command.js';
import { dryRunFlag } from '../../cli/flags.js';
import { Args, Flags } from '../../cli/oclif.js';
import { UsageError } from '../../core/errors.js';
import { parseRules } from '../../sources/ignore-rules.js';
import { isEmptyChange, parsePathSettings, type SettingsChange } from '../../sources/path-settings.js';
import { describeEffective, type SetResultDoc, setPathSettings, showSettings } from '../../sources/settings.js';
import { counted } from '../../ui/format.js';

export default class SourceSet extends BaseCommand<typeof SourceSet> {
  static override summary = 'Set, or show, the settings of virtual folders (inherited by everything below them).';
  static override description = `With no change given, prints the effective settings of each VPATH.

Ignore rules match base names: a rule without ! ignores, !×n includes at priority n; prefix : = literal, ? = glob, / = regular expression; with no prefix a glob if it has *?[, else a literal. The first matching rule wins, the nearest folder's rules first.

Priority, min and max copies of the files already catalogued are updated at once; ignore rules, lock, hide and follow add or drop files at the next update (files they leave out get priority 0 until then).`;
  static override examples = [
    '<%= config.bin %> source set /photos',
    '<%= config.bin %> source set /photos/raw --priority 2 --min-copies 2',
    "<%= config.bin %> source set /home --ignore '*.tmp' --ignore '!!important.txt' --append",
    '<%= config.bin %> source set /videos/archive --max-copies 1',
    '<%= config.bin %> source set /mnt/nas --lock',
    `<%= config.bin %> source set /cache --json '{"hide":true}'`,
  ];
  static override strict = false;
  static override args = {
    vpath: Args.string({ required: true, ignoreStdin: true, description: 'virtual folder (several may be given)' }),
  };
  static override flags = {
    priority: Flags.string({
      helpValue: 'N',
      char: 'p',
      summary: 'Priority N (0 = not backed up; higher = copied sooner), or "inherit".',
    }),
    'min-copies': Flags.string({ helpValue: 'N', aliases: ['mincopies'], summary: 'Copy target N, or "inherit".' }),
    'max-copies': Flags.string({
      helpValue: 'N',
      char: 'm',
      aliases: ['maxcopies'],
      summary: 'Cap N, "inf" for none, or "inherit".',
    }),
    ignore: Flags.string({
      helpValue: 'RULE',
      char: 'i',
      multiple: true,
      summary: 'Ignore rule (repeatable); replaces the list unless --append.',
    }),
    append: Flags.boolean({ char: 'a', summary: 'Add the --ignore rules to the existing ones.' }),
    'no-ignore': Flags.boolean({ summary: "Remove this folder's ignore rules." }),
    noinherit: Flags.boolean({ summary: 'Do not inherit the ignore rules of folders above.' }),
    inherit: Flags.boolean({ summary: 'Inherit the ignore rules of folders above again.' }),
    lock: Flags.boolean({
      char: 'l',
      summary: 'Keep the catalogued files as they are; do not scan (a source that is away).',
    }),
    unlock: Flags.boolean({ char: 'u', summary: 'Scan this folder again.' }),
    hide: Flags.boolean({ summary: 'Drop this folder from the backup.' }),
    unhide: Flags.boolean({ summary: 'Back this folder up again.' }),
    follow: Flags.boolean({ summary: 'Follow symbolic links here and below.' }),
    nofollow: Flags.boolean({ summary: 'Record symbolic links as links here and below.' }),
    json: Flags.string({
      helpValue: 'JSON',
      char: 'j',
      summary:
        'The whole setting as JSON (keys: priority, mincopies, maxcopies, rules, noinherit, lock, hide, follow_symlinks).',
    }),
    'dry-run': dryRunFlag(),
  };

  public async run(): Promise<SetResultDoc[] | undefined> {
    const { argv } = await this.parse(SourceSet);
    const vpaths = argv as string[];
    const f = this.flags;
    const change: SettingsChange = {};
    const num = (v: string | undefined, name: string, extra: string[] = []): number | 'inf' | null | undefined => {
      if (v === undefined) return undefined;
      if (v === 'inherit') return null;
      if (extra.includes(v)) return 'inf';
      if (!/^\d+$/.test(v))
        throw new UsageError(
          `--${name} '${v}': expected a whole number${extra.length > 0 ? ', "inf"' : ''} or "inherit"`,
        );
      return Number(v);
    };
    const p = num(f.priority, 'priority');
    if (p !== undefined) change.priority = p === 'inf' ? null : p;
    const mn = num(f['min-copies'], 'min-copies');
    if (mn !== undefined) change.mincopies = mn === 'inf' ? null : mn;
    const mx = num(f['max-copies'], 'max-copies', ['inf', 'none']);
    if (mx !== undefined) change.maxcopies = mx;
    if (f.ignore !== undefined) {
      change.rules = f.ignore.map((r) => r.trim()); // as the Python tool did
      parseRules(change.rules); // a malformed rule is a usage error before anything is opened
      change.appendRules = f.append;
    } else if (f['no-ignore']) {
      change.rules = [];
    } else if (f.append) {
      throw new UsageError('--append needs at least one --ignore RULE');
    }
    for (const [a, b] of [
      ['lock', 'unlock'],
      ['hide', 'unhide'],
      ['follow', 'nofollow'],
      ['noinherit', 'inherit'],
      ['ignore', 'no-ignore'],
    ] as const) {
      if (f[a] !== undefined && f[a] !== false && f[b]) throw new UsageError(`--${a} and --${b} contradict each other`);
    }
    if (f.noinherit) change.noinherit = true;
    if (f.inherit) change.noinherit = false;
    if (f.lock) change.lock = true;
    if (f.unlock) change.lock = false;
    if (f.hide) change.hide = true;
    if (f.unhide) change.hide = false;
    if (f.follow) change.follow_symlinks = true;
    if (f.nofollow) change.follow_symlinks = false;
    if (f.json !== undefined) {
      let parsed: unknown;
      try {
        parsed = JSON.parse(f.json);
      } catch (err) {
        throw new UsageError(`--json: not JSON: ${(err as Error).message}`);
      }
      change.replace = parsePathSettings(parsed, '--json');
    }
    if (isEmptyChange(change)) {
      for (const doc of showSettings(this.catalog(), vpaths)) for (const line of describeEffective(doc)) this.log(line);
      return undefined;
    }
    const docs = setPathSettings(this.lockedCatalog(this.writeMode), vpaths, change, { dryRun: f['dry-run'] });
    for (const doc of docs) {
      for (const line of describeEffective(doc)) this.log(line);
      this.log(`  ${f['dry-run'] ? 'would update' : 'updated'} ${counted(doc.filesUpdated, 'catalogued file')}`);
    }
    return docs;
  }
}
