import * as fs from 'node:fs';
import * as path from 'node:path';
import { BaseCommand } from '../cli/base-command.js';
import { completionModel, fishScript } from '../cli/fish-completion.js';
import { Args } from '../cli/oclif.js';
import { DistbackupError, describeError } from '../core/errors.js';

export default class Completion extends BaseCommand<typeof Completion> {
  static override readOnly = true;
  static override summary = 'Print the completion script for bash, zsh or fish.';
  static override description =
    `Prints a script that completes every command and topic, each command's flags and, for fish, the values of flags that take a fixed set. Save it where the shell looks for completions (see the examples); make it again after an upgrade, as commands and flags change. The bash and zsh scripts are the ones 'distbackup autocomplete SHELL' sets up from its cache; they complete dsb too.`;
  static override examples = [
    '<%= config.bin %> completion bash > ~/.local/share/bash-completion/completions/<%= config.bin %>',
    '<%= config.bin %> completion zsh > ~/.zfunc/_<%= config.bin %>   # with fpath+=(~/.zfunc) before compinit',
    '<%= config.bin %> completion fish > ~/.config/fish/completions/<%= config.bin %>.fish',
    'ln -s <%= config.bin %>.fish ~/.config/fish/completions/dsb.fish',
  ];
  static override args = {
    shell: Args.string({ description: 'bash, zsh or fish', options: ['bash', 'zsh', 'fish'], required: true }),
  };

  public async run(): Promise<void> {
    const shell = this.args.shell;
    if (shell === 'fish') {
      process.stdout.write(fishScript(completionModel(this.config)));
      return;
    }
    // The autocomplete plugin writes its scripts into its cache; print the one for this shell.
    await this.config.runCommand('autocomplete:create');
    const bin = this.config.bin;
    const file = path.join(
      this.config.cacheDir,
      'autocomplete',
      'functions',
      shell,
      shell === 'bash' ? `${bin}.bash` : `_${bin}`,
    );
    let script: string;
    try {
      script = fs.readFileSync(file, 'utf8');
    } catch (err) {
      throw new DistbackupError(`${file}: cannot read the ${shell} completion script: ${describeError(err)}`, {
        path: file,
      });
    }
    process.stdout.write(script.endsWith('\n') ? script : `${script}\n`);
  }
}
