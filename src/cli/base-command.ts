/**
 * The base of every command: the global flags, the data folder, and the one place where errors
 * become a one-line message and a SPEC §3 exit code (oclif's own errors default to 2, which the
 * spec reserves for refusals, so they are mapped here).
 */
import { Command, Errors, Flags, type Interfaces } from '@oclif/core';
import { type Catalog, openCatalog, resolveDataDir } from '../catalog/db.js';
import { DistbackupError, ExitCode } from '../core/errors.js';

export type BaseFlags<T extends typeof Command> = Interfaces.InferredFlags<
  (typeof BaseCommand)['baseFlags'] & T['flags']
>;
export type BaseArgs<T extends typeof Command> = Interfaces.InferredArgs<T['args']>;

export abstract class BaseCommand<T extends typeof Command> extends Command {
  static override baseFlags = {
    'data-dir': Flags.string({
      char: 'd',
      summary: 'Home data folder (default: $DISTBACKUP_PATH, else ~/.config/distbackup).',
      helpGroup: 'GLOBAL',
    }),
    verbose: Flags.boolean({ char: 'v', summary: 'Say more; show stack traces of errors.', helpGroup: 'GLOBAL' }),
    quiet: Flags.boolean({ char: 'q', summary: 'Print no progress.', helpGroup: 'GLOBAL' }),
  };

  protected flags!: BaseFlags<T>;
  protected args!: BaseArgs<T>;
  private readonly opened: Catalog[] = [];

  public override async init(): Promise<void> {
    await super.init();
    const { args, flags } = await this.parse({
      flags: this.ctor.flags,
      baseFlags: (super.ctor as typeof BaseCommand).baseFlags,
      enableJsonFlag: this.ctor.enableJsonFlag,
      args: this.ctor.args,
      strict: this.ctor.strict,
    });
    this.flags = flags as BaseFlags<T>;
    this.args = args as BaseArgs<T>;
  }

  /** The resolved home data folder. */
  protected get dataDir(): string {
    return resolveDataDir(this.flags['data-dir']);
  }

  /** Open the home catalogue; closed automatically when the command ends. */
  protected catalog(options: { readonly?: boolean } = {}): Catalog {
    const cat = openCatalog(this.dataDir, options);
    this.opened.push(cat);
    return cat;
  }

  /** True when progress may be printed (not --quiet, not --json). */
  protected get showProgress(): boolean {
    return !this.flags.quiet && !this.jsonEnabled();
  }

  /** Set the exit code the process ends with after a successful `run()` (e.g. 3, 4). */
  protected setExitCode(code: number): void {
    if (code > (process.exitCode === undefined ? 0 : Number(process.exitCode))) process.exitCode = code;
  }

  protected override async finally(err: Error | undefined): Promise<unknown> {
    for (const c of this.opened.splice(0)) c.close();
    return super.finally(err);
  }

  protected override async catch(err: Error & { exitCode?: number; oclif?: { exit?: number } }): Promise<unknown> {
    if (err instanceof Errors.ExitError) throw err;
    const verbose = this.argv.includes('--verbose') || this.argv.includes('-v');
    let exit: number = ExitCode.error;
    let message = err.message;
    if (err instanceof DistbackupError) {
      exit = err.exitCode;
    } else if (err instanceof Errors.CLIError) {
      // Flag and argument parsing errors are usage errors: exit 1, not oclif's 2.
      exit = ExitCode.error;
      // oclif wraps parse errors in framing lines; keep the lines that name the problem.
      const lines = message
        .split('\n')
        .map((l) => l.trim().replace(/^Error: /, ''))
        .filter((l) => l !== '' && !/^See more help with/.test(l) && !/^The following errors? occurred:?$/.test(l));
      message = lines.length > 0 ? lines.join('; ') : message;
    }
    process.stderr.write(`distbackup: ${oneLine(message)}\n`);
    if (verbose && err.stack !== undefined) process.stderr.write(`${err.stack}\n`);
    this.exit(exit);
  }
}

function oneLine(text: string): string {
  return text.replace(/\s*\n\s*/g, ' ').trim();
}
