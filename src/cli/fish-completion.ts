/**
 * Fish completion, built from the commands oclif knows (this package's manifest and the
 * plugins'): @oclif/plugin-autocomplete 3.x writes bash, zsh and powershell only. The script
 * completes topics and commands word by word (the topic separator is a space), then each
 * command's flags with their summaries, the values of flags and arguments that have a fixed
 * set, and file names where a command takes paths. Pure; the model comes from `completionModel`.
 */
import type { Config } from '@oclif/core';

/** One flag as the completion sees it. */
export interface CompletionFlag {
  readonly name: string;
  readonly char?: string;
  readonly summary: string;
  /** True for a flag that takes a value (`--size 50M`), false for a switch. */
  readonly takesValue: boolean;
  /** The only values it accepts, when fixed. */
  readonly options?: readonly string[];
  /** A switch that also has a `--no-` form. */
  readonly allowNo?: boolean;
}

/** One command (or alias): its words, its summary, its flags, its arguments. */
export interface CompletionCommand {
  /** The words that run it, space-separated (`source map`). */
  readonly words: string;
  readonly summary: string;
  readonly flags: readonly CompletionFlag[];
  /** One entry per positional argument: its fixed values, or undefined for free text or paths. */
  readonly args: readonly (readonly string[] | undefined)[];
}

/** What the completion is built from. */
export interface CompletionModel {
  /** The command and its aliases (`distbackup`, `dsb`). */
  readonly bins: readonly string[];
  /** Topics: words that only group commands (`source`, `disk`), with their descriptions. */
  readonly topics: readonly { readonly words: string; readonly summary: string }[];
  readonly commands: readonly CompletionCommand[];
}

/** The first line of a help text, single-spaced (fish shows one line per candidate). */
function firstLine(text: string | undefined): string {
  return (text ?? '').split('\n')[0]?.replace(/\s+/g, ' ').trim() ?? '';
}

/** The model of every visible command, alias and topic of this CLI. */
export function completionModel(config: Config): CompletionModel {
  const sep = (id: string): string => id.split(':').join(' ');
  const oneLine = (text: string | undefined): string => firstLine(text).replaceAll('<%= config.bin %>', config.bin);
  const commands: CompletionCommand[] = [];
  for (const c of config.commands) {
    if (c.hidden) continue;
    const flags: CompletionFlag[] = [];
    for (const f of Object.values(c.flags ?? {})) {
      if (f.hidden === true) continue;
      const options = f.type === 'option' ? f.options : undefined;
      flags.push({
        name: f.name,
        ...(f.char === undefined ? {} : { char: f.char }),
        summary: oneLine(f.summary ?? f.description),
        takesValue: f.type === 'option',
        ...(options === undefined ? {} : { options }),
        ...(f.type === 'boolean' && f.allowNo === true ? { allowNo: true } : {}),
      });
    }
    const args = Object.values(c.args ?? {}).map((a) => a.options);
    const summary = oneLine(c.summary ?? c.description);
    for (const id of [c.id, ...(c.aliases ?? [])]) commands.push({ words: sep(id), summary, flags, args });
  }
  const topics = config.topics
    .filter((t) => t.hidden !== true)
    .map((t) => ({ words: sep(t.name), summary: oneLine(t.description) }));
  return { bins: [config.bin, ...(config.binAliases ?? [])], topics, commands };
}

/** A fish single-quoted string. */
export function fishQuote(text: string): string {
  return `'${text.replace(/[\\']/g, (c) => `\\${c}`)}'`;
}

/** The fish script for `model`; the same text serves as distbackup.fish and as dsb.fish. */
export function fishScript(model: CompletionModel): string {
  const main = model.bins[0] ?? 'distbackup';
  const fn = `__${main.replace(/[^A-Za-z0-9_]/g, '_')}`;
  const byWords = new Map<string, string>();
  for (const t of model.topics) byWords.set(t.words, t.summary);
  for (const c of model.commands) if (!byWords.has(c.words) || c.summary !== '') byWords.set(c.words, c.summary);
  const ids = [...byWords.keys()].sort();
  const is = (words: string): string => fishQuote(`${fn}_is "${words}"`);
  const lines: string[] = [
    `# fish completion for ${model.bins.join(' and ')}: written by \`${main} completion fish\`.`,
    `# Save it as ~/.config/fish/completions/${main}.fish${model.bins
      .slice(1)
      .map((b) => ` and as ${b}.fish`)
      .join('')}; make it again after an upgrade.`,
    '',
    `# Every command and topic, as the words that name it.`,
    `set -g ${fn}_ids ${ids.map(fishQuote).join(' ')}`,
    '',
    '# The command words typed so far ("source map"), or nothing before the first.',
    `function ${fn}_words`,
    '    set -l words (commandline -opc)',
    '    set -e words[1]',
    '    set -l typed',
    '    for w in $words',
    "        string match -q -- '-*' $w; and continue",
    '        set -l next (string join -- " " $typed $w)',
    `        contains -- $next $${fn}_ids; or break`,
    '        set typed $next',
    '    end',
    '    string join -- " " $typed',
    'end',
    '',
    `function ${fn}_is`,
    `    set -l typed (${fn}_words)`,
    '    test "$typed" = "$argv[1]"',
    'end',
    '',
    `for ${fn}_bin in ${model.bins.map(fishQuote).join(' ')}`,
    `    complete -c $${fn}_bin -e`,
  ];
  const c = (text: string): void => {
    lines.push(`    complete -c $${fn}_bin ${text}`);
  };
  // Words that may follow each prefix: top-level topics and commands, then each topic's.
  const children = new Map<string, string[]>();
  for (const words of ids) {
    const parts = words.split(' ');
    const parent = parts.slice(0, -1).join(' ');
    children.set(parent, [...(children.get(parent) ?? []), parts[parts.length - 1] ?? '']);
  }
  const commandWords = new Set(model.commands.map((x) => x.words));
  for (const [parent, kids] of [...children.entries()].sort((a, b) => a[0].localeCompare(b[0]))) {
    // Only words may follow a topic that is no command itself (no file names).
    if (!commandWords.has(parent)) c(`-n ${is(parent)} -f`);
    for (const k of kids) {
      const words = parent === '' ? k : `${parent} ${k}`;
      c(`-n ${is(parent)} -f -a ${fishQuote(k)} -d ${fishQuote(byWords.get(words) ?? '')}`);
    }
  }
  for (const cmd of model.commands) {
    const when = `-n ${is(cmd.words)}`;
    // A command without arguments takes no file names; one with arguments may (paths).
    if (cmd.args.length === 0) c(`${when} -f`);
    for (const values of cmd.args) if (values !== undefined) c(`${when} -f -a ${fishQuote(values.join(' '))}`);
    for (const f of cmd.flags) {
      const names = `${f.char === undefined ? '' : `-s ${f.char} `}-l ${f.name}`;
      // The values first, without a description: fish keeps the last description given to a
      // flag, and the flag's summary is what the values would otherwise all show.
      if (f.options !== undefined) c(`${when} ${names} -x -a ${fishQuote(f.options.join(' '))}`);
      const value = f.options !== undefined ? ' -x' : f.takesValue ? ' -r' : '';
      c(`${when} ${names}${value} -d ${fishQuote(f.summary)}`);
      if (f.allowNo === true) c(`${when} -l no-${f.name} -d ${fishQuote(`Turn off --${f.name}`)}`);
    }
    c(`${when} -l help -d 'Show help for this command'`);
  }
  lines.push('end', `set -e ${fn}_bin`, '');
  return lines.join('\n');
}
