/**
 * The base of every command: the global flags (`-d`, `-v` repeatable, `-q`, `--log`,
 * `--no-log`), the data folder, the run log, and the one place where errors become a one-line
 * message and a SPEC §3 exit code (oclif's own errors default to 2, which the spec reserves
 * for refusals, so they are mapped here).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type * as Interfaces from '@oclif/core/interfaces';
import {
  CATALOGUE_FILE,
  type Catalog,
  catalogMode,
  isSqliteError,
  type OpenCatalogOptions,
  openCatalog,
  resolveDataDir,
  sqliteFileError,
} from '../catalog/db.js';
import { type Lock, lockCatalogue } from '../catalog/lock.js';
import { DistbackupError, ExitCode } from '../core/errors.js';
import { DEFAULT_LOG_PATTERN, RunLog } from './log.js';
import { Command, Errors, Flags } from './oclif.js';

export type BaseFlags<T extends typeof Command> = Interfaces.InferredFlags<
  (typeof BaseCommand)['baseFlags'] & T['flags']
>;
export type BaseArgs<T extends typeof Command> = Interfaces.InferredArgs<T['args']>;

/** How much a run says: 0 normal, 1 `-v` (more detail, stacks of errors), 2 `-vv` (debug lines). */
export type Verbosity = 0 | 1 | 2;

/** Lines written straight to stderr by use-cases that the run log keeps (warnings, errors). */
const LOGGED_STDERR = /^(distbackup: |warning: |error: )/;

/** Count `-v`/`--verbose` in an argv that could not be parsed (for the stack of a usage error). */
function verbosityOfArgv(argv: readonly string[]): Verbosity {
  let n = 0;
  for (const a of argv) {
    if (a === '--') break;
    if (a === '--verbose') n += 1;
    else if (/^-[a-zA-Z]+$/.test(a)) n += [...a.slice(1)].filter((c) => c === 'v').length;
  }
  return Math.min(n, 2) as Verbosity;
}

export abstract class BaseCommand<T extends typeof Command> extends Command {
  /**
   * True for commands that change nothing (status, ls, whereis, lists, views, exports): their
   * runs are logged only with `-v`. A `-n/--dry-run` run counts as read-only too.
   */
  static readOnly = false;

  static override baseFlags = {
    'data-dir': Flags.string({
      char: 'd',
      summary: 'Home data folder (default: $DISTBACKUP_PATH, else ~/.config/distbackup).',
      helpGroup: 'GLOBAL',
    }),
    verbose: Flags.boolean({
      char: 'v',
      summary: 'Say more, with stack traces of errors; -vv adds debug lines.',
      helpGroup: 'GLOBAL',
    }),
    quiet: Flags.boolean({ char: 'q', summary: 'Print no progress.', helpGroup: 'GLOBAL' }),
    log: Flags.string({
      summary: `Log file, %Y %m %d = the date; relative to the data folder (default ${DEFAULT_LOG_PATTERN}).`,
      helpValue: 'PATTERN',
      helpGroup: 'GLOBAL',
    }),
    'no-log': Flags.boolean({ summary: 'Write no log file for this run.', helpGroup: 'GLOBAL' }),
  };

  protected flags!: BaseFlags<T>;
  protected args!: BaseArgs<T>;
  /** 0 normal, 1 with `-v`, 2 with `-vv` (or `-v -v`); use-cases may take it as an option. */
  protected verbosity: Verbosity = 0;
  private readonly opened: Catalog[] = [];
  private readonly locks: Lock[] = [];
  private runLog: RunLog | undefined;
  private lastSummary: string | undefined;
  private fixedSummary: string | undefined;
  private failedExit: number | undefined;
  private rawStderrWrite: typeof process.stderr.write | undefined;

  public override async init(): Promise<void> {
    await super.init();
    // Piped stdin is never read into an optional argument (oclif does that by default):
    // `find … | distbackup status` must not take the first path as an argument.
    const args = Object.fromEntries(
      Object.entries(this.ctor.args ?? {}).map(([name, arg]) => [name, { ...arg, ignoreStdin: true }]),
    );
    const parsed = await this.parse({
      flags: this.ctor.flags,
      baseFlags: (super.ctor as typeof BaseCommand).baseFlags,
      enableJsonFlag: this.ctor.enableJsonFlag,
      args,
      strict: this.ctor.strict,
    });
    this.flags = parsed.flags as BaseFlags<T>;
    this.args = parsed.args as BaseArgs<T>;
    const vs = parsed.raw.filter((t) => t.type === 'flag' && t.flag === 'verbose').length;
    this.verbosity = Math.min(vs, 2) as Verbosity;
    this.openRunLog();
    this.trace(`data folder ${this.dataDir}; log ${this.runLog === undefined ? 'off' : this.runLog.file}`);
  }

  /** The resolved home data folder. */
  protected get dataDir(): string {
    return resolveDataDir(this.flags['data-dir']);
  }

  /** True when the command has `-n/--dry-run` and it was given. */
  protected get dryRun(): boolean {
    return (this.flags as Record<string, unknown>)['dry-run'] === true;
  }

  /**
   * Open the home catalogue (see CatalogMode); closed automatically when the command ends.
   * A command with `-n` passes `{ mode: 'dry-run' }` or `{ mode: 'read-only' }`; one that may
   * start a new catalogue passes `create: true`. A listing uses `listMode` (empty when missing).
   */
  protected catalog(options: OpenCatalogOptions = {}): Catalog {
    // Only the commands that fill a new catalogue create one (`create: true`); a listing, a
    // sync or a verify on a fresh machine says there is none instead of leaving an empty file.
    const cat = openCatalog(this.dataDir, { ...options, create: options.create === true });
    this.trace(`catalogue ${cat.file} opened ${catalogMode(options)}`);
    this.opened.push(cat);
    return cat;
  }

  /**
   * `catalog(options)` for a command that writes the catalogue without a lock of its own (source
   * map/unmap/set/lock/unlock/reset, config import and edit): opened for writing, it takes the
   * catalogue lock too, so it is refused (exit 2) while update, sync or verify runs rather than
   * changing rows under them (an update that read a folder's rows must not sign them after
   * another process changed them). Released when the command ends.
   */
  protected lockedCatalog(options: OpenCatalogOptions = {}): Catalog {
    const cat = this.catalog(options);
    if (cat.mode === 'read-write') this.locks.push(lockCatalogue(cat));
    return cat;
  }

  /** The catalogue mode for a command that writes: `dry-run` with `-n`, else `read-write`. */
  protected get writeMode(): OpenCatalogOptions {
    return { mode: this.dryRun ? 'dry-run' : 'read-write' };
  }

  /** `writeMode` for a command that may start a new catalogue (source map, disk add, imports). */
  protected get createMode(): OpenCatalogOptions {
    return { ...this.writeMode, create: true };
  }

  /**
   * For a listing that may migrate the catalogue: `read-write` when it exists, else an empty
   * catalogue in memory (nothing is created on a fresh machine; the listing is empty).
   */
  protected get listMode(): OpenCatalogOptions {
    return fs.existsSync(path.join(this.dataDir, CATALOGUE_FILE)) ? {} : { mode: 'dry-run' };
  }

  /**
   * The `--json` document, as oclif prints it without a colour theme (indented by two), but
   * written by one JSON.stringify: oclif's colourizer splits the text into a JS object per
   * token, and a sync's list of a million skipped paths took gigabytes there.
   */
  public override logJson(json: unknown): void {
    process.stdout.write(`${JSON.stringify(json, null, 2)}\n`);
  }

  /** True when progress may be printed (not --quiet, not --json). */
  protected get showProgress(): boolean {
    return !this.flags.quiet && !this.jsonEnabled();
  }

  /** A line of detail for `-v` and above, on stderr. */
  protected detail(line: string): void {
    if (this.verbosity >= 1) this.writeStderr(`${line}\n`);
  }

  /** A debug line for `-vv`, on stderr. */
  protected trace(line: string): void {
    if (this.verbosity >= 2) this.writeStderr(`debug: ${line}\n`);
  }

  /** Set the exit code the process ends with after a successful `run()` (e.g. 3, 4). */
  protected setExitCode(code: number): void {
    if (code > (process.exitCode === undefined ? 0 : Number(process.exitCode))) process.exitCode = code;
  }

  /** Print the run's one-line summary (what the run log's end line repeats; else the last line). */
  protected summary(line: string): void {
    if (!this.jsonEnabled()) this.fixedSummary = line;
    this.log(line);
  }

  /** Human output on stdout; the last line is the run log's summary unless summary() gave one. */
  public override log(message = '', ...args: unknown[]): void {
    if (typeof message === 'string' && message.trim() !== '' && !this.jsonEnabled()) this.lastSummary = message;
    super.log(message, ...args);
  }

  /** A problem line on stderr, also kept in the run log. */
  public override logToStderr(message = '', ...args: unknown[]): void {
    if (this.jsonEnabled()) return;
    this.runLog?.line(message);
    if (args.length > 0) super.logToStderr(message, ...args);
    else this.writeStderr(`${message}\n`);
  }

  /** A warning: one `distbackup: warning:` line on stderr (with --json too), kept in the run log. */
  public override warn(input: string | Error): string | Error {
    const text = typeof input === 'string' ? input : input.message;
    const line = `distbackup: warning: ${text.replace(/\s*\n\s*/g, ' ').trim()}`;
    this.runLog?.line(line);
    this.writeStderr(`${line}\n`);
    return input;
  }

  protected override async finally(err: Error | undefined): Promise<unknown> {
    // Closed (the last WAL checkpoint) while the lock is still held.
    for (const c of this.opened.splice(0)) c.close();
    for (const l of this.locks.splice(0)) l.release();
    if (this.runLog !== undefined) {
      let code = process.exitCode === undefined ? 0 : Number(process.exitCode);
      if (err !== undefined) {
        const oclifExit = (err as { oclif?: { exit?: number } }).oclif?.exit;
        code = this.failedExit ?? oclifExit ?? ExitCode.error;
      }
      this.runLog.end(code, err === undefined || code === 0 ? (this.fixedSummary ?? this.lastSummary) : undefined);
      this.runLog = undefined;
    }
    if (this.rawStderrWrite !== undefined) {
      process.stderr.write = this.rawStderrWrite;
      this.rawStderrWrite = undefined;
    }
    return super.finally(err);
  }

  protected override async catch(err: Error & { exitCode?: number; oclif?: { exit?: number } }): Promise<unknown> {
    if (err instanceof Errors.ExitError) throw err;
    const verbose = this.flags === undefined ? verbosityOfArgv(this.argv) > 0 : this.verbosity > 0;
    let exit: number = ExitCode.error;
    let message = err.message;
    if (err instanceof DistbackupError) {
      exit = err.exitCode;
    } else if (isSqliteError(err)) {
      // Not wrapped on its way up: it came from the home catalogue (disk copies and locks name
      // their own files), so the line names that file (SPEC §3: the file and the cause).
      const file =
        this.opened[0]?.file ?? (this.flags === undefined ? CATALOGUE_FILE : path.join(this.dataDir, CATALOGUE_FILE));
      message = sqliteFileError(file, err).message;
    } else if (err instanceof Errors.CLIError) {
      // Flag and argument parsing errors are usage errors: exit 1, not oclif's 2.
      exit = ExitCode.error;
      // oclif wraps parse errors in framing lines; keep the lines that name the problem.
      const lines = message
        .split('\n')
        .map((l) => l.trim().replace(/^Error: /, ''))
        .filter((l) => l !== '' && !/^See more help with/.test(l) && !/^The following errors? occurred:?$/.test(l));
      message = lines.length > 0 ? usageLine(lines, this.id) : message;
    }
    this.failedExit = exit;
    const line = `distbackup: ${oneLine(message)}`;
    this.runLog?.line(line);
    this.writeStderr(`${line}\n`);
    if (verbose && err.stack !== undefined) this.writeStderr(`${err.stack}\n`);
    this.exit(exit);
  }

  /**
   * The run log of this run, unless `--no-log`; read-only commands and dry runs log only with
   * `-v`. Lines that use-cases write straight to stderr with a `distbackup: ` or `warning: `
   * prefix are kept too (progress lines are not).
   */
  private openRunLog(): void {
    if (this.flags['no-log']) return;
    const readOnly = (this.ctor as unknown as typeof BaseCommand).readOnly || this.dryRun;
    if (readOnly && this.verbosity === 0) return;
    const raw = process.stderr.write.bind(process.stderr) as typeof process.stderr.write;
    const log = new RunLog({
      pattern: this.flags.log ?? DEFAULT_LOG_PATTERN,
      dataDir: this.dataDir,
      version: this.config.version,
      argv: [...(this.id === undefined ? [] : this.id.split(':')), ...this.argv],
      onWriteError: (line) => {
        raw(`distbackup: warning: ${line}\n`);
      },
    });
    this.runLog = log;
    this.rawStderrWrite = process.stderr.write;
    const tee = (chunk: unknown, ...rest: unknown[]): boolean => {
      if (typeof chunk === 'string' || Buffer.isBuffer(chunk)) {
        for (const l of chunk.toString().split('\n')) if (LOGGED_STDERR.test(l)) log.line(l);
      }
      return (raw as (...a: unknown[]) => boolean)(chunk, ...rest);
    };
    process.stderr.write = tee as typeof process.stderr.write;
    log.start();
  }

  /** Write to stderr without passing through the run log's tee (the caller logged already). */
  private writeStderr(text: string): void {
    const write = this.rawStderrWrite ?? process.stderr.write;
    write.call(process.stderr, text);
  }
}

function oneLine(text: string): string {
  return text.replace(/\s*\n\s*/g, ' ').trim();
}

/**
 * oclif's parse error, as one line: "Missing 2 required args:" followed by one line per argument
 * ("name  its description") becomes "missing required arguments: name, path (see ...)", and
 * "Missing required flag to" becomes "missing required flag --to"; other errors keep their lines.
 */
export function usageLine(lines: readonly string[], id: string | undefined): string {
  const help = id === undefined ? '' : ` (see 'distbackup ${id.replaceAll(':', ' ')} --help')`;
  const first = lines[0] ?? '';
  if (/^Missing \d+ required args?:?$/.test(first)) {
    const names = lines.slice(1).map((l) => l.split(/\s+/)[0] ?? l);
    return `missing required argument${names.length === 1 ? '' : 's'}: ${names.join(', ')}${help}`;
  }
  const flag = /^Missing required flags? (.+)$/.exec(first);
  if (flag !== null && lines.length === 1) {
    const names = (flag[1] ?? '').split(/,\s*/).map((f) => (f.startsWith('-') ? f : `--${f}`));
    return `missing required flag${names.length === 1 ? '' : 's'} ${names.join(', ')}${help}`;
  }
  return lines.join('; ');
}
