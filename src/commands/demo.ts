import { BaseCommand } from '../cli/base-command.js';
import { Errors, Flags } from '../cli/oclif.js';
import { DistbackupError, ExitCode } from '../core/errors.js';
import { type CliRun, type DemoResult, runDemo } from '../demo/demo.js';

export default class Demo extends BaseCommand<typeof Demo> {
  static override summary = 'Run a full backup and restore cycle in a temporary folder, printing each step.';
  static override description =
    'Generates a small tree, maps it, updates, adds three small disks, syncs each, shows the status, flips a byte in one object, verifies (which finds it), syncs (which heals it), moves the home catalogue away, restores from two disks as guided and compares the result with the source byte for byte. Nothing outside the temporary folder is touched (your own catalogue is not used). Exits 1 if any step gives the wrong result.';
  static override examples = ['<%= config.bin %> demo', '<%= config.bin %> demo --keep'];
  static override flags = {
    keep: Flags.boolean({ summary: 'Keep the temporary folder to look around in it.' }),
    spawn: Flags.boolean({ summary: 'Run each step as a child process instead of in this process.', hidden: true }),
  };

  public async run(): Promise<DemoResult> {
    // Ctrl-C: the step in progress stops itself (its own handler), the demo stops after it and
    // removes its folder; a second Ctrl-C ends the process at once.
    const ac = new AbortController();
    const onSignal = (): void => {
      if (ac.signal.aborted) process.exit(ExitCode.interrupted);
      ac.abort();
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
    let result: DemoResult;
    try {
      result = await runDemo({
        out: (line) => this.log(line),
        keep: this.flags.keep,
        signal: ac.signal,
        ...(this.flags.spawn ? {} : { cli: (args, env) => this.runInProcess(args, env) }),
      });
    } finally {
      process.removeListener('SIGINT', onSignal);
      process.removeListener('SIGTERM', onSignal);
    }
    if (result.interrupted) {
      this.setExitCode(ExitCode.interrupted);
      return result;
    }
    if (!result.ok) throw new DistbackupError(`demo failed: ${result.failed ?? 'unknown step'}`);
    return result;
  }

  /**
   * Run one command of this CLI in this process (a child process per step costs a Node start
   * each), capturing what it writes and its exit code exactly as a shell would see them.
   */
  private async runInProcess(args: string[], env: Record<string, string>): Promise<CliRun> {
    const ids = new Set(this.config.commandIDs);
    const two = `${args[0]}:${args[1]}`;
    const [id, argv] = ids.has(two) ? [two, args.slice(2)] : [args[0] ?? '', args.slice(1)];
    const out = process.stdout.write.bind(process.stdout);
    const err = process.stderr.write.bind(process.stderr);
    const savedEnv = Object.fromEntries(Object.keys(env).map((k) => [k, process.env[k]]));
    const savedCode = process.exitCode;
    let stdout = '';
    let stderr = '';
    const capture =
      (sink: (s: string) => void) =>
      (chunk: string | Uint8Array, ...rest: unknown[]): boolean => {
        sink(typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString('utf8'));
        const cb = rest.find((r) => typeof r === 'function') as (() => void) | undefined;
        cb?.();
        return true;
      };
    process.stdout.write = capture((s) => {
      stdout += s;
    }) as typeof process.stdout.write;
    process.stderr.write = capture((s) => {
      stderr += s;
    }) as typeof process.stderr.write;
    Object.assign(process.env, env);
    process.exitCode = undefined;
    let code = 0;
    try {
      await this.config.runCommand(id, argv);
      code = Number(process.exitCode ?? 0);
    } catch (e) {
      if (e instanceof Errors.ExitError) code = e.oclif.exit ?? 1;
      else {
        code = 1;
        stderr += `distbackup: ${(e as Error).message}\n`;
      }
    } finally {
      process.stdout.write = out;
      process.stderr.write = err;
      for (const [k, v] of Object.entries(savedEnv)) {
        if (v === undefined) delete process.env[k];
        else process.env[k] = v;
      }
      process.exitCode = savedCode;
    }
    return { code, stdout, stderr };
  }
}
