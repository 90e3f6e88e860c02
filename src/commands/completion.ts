import { Args } from '@oclif/core';
import { BaseCommand } from '../cli/base-command.js';
import { completionModel, fishScript } from '../cli/fish-completion.js';

export default class Completion extends BaseCommand<typeof Completion> {
  static override readOnly = true;
  static override summary = 'Print the fish completion script (bash and zsh: distbackup autocomplete).';
  static override description =
    `Prints a fish script that completes every command and topic (words separated by spaces, as typed), each command's flags with their summaries, and the values of flags that take a fixed set. Save it in fish's completions folder under the command's name, and under dsb's for the alias; make it again after an upgrade, as commands and flags change.

Bash, zsh and PowerShell completion come from 'distbackup autocomplete SHELL'.`;
  static override examples = [
    '<%= config.bin %> completion fish > ~/.config/fish/completions/<%= config.bin %>.fish',
    'ln -s <%= config.bin %>.fish ~/.config/fish/completions/dsb.fish',
  ];
  static override args = {
    shell: Args.string({ description: 'the shell (fish)', options: ['fish'], required: true }),
  };

  public async run(): Promise<void> {
    process.stdout.write(fishScript(completionModel(this.config)));
  }
}
