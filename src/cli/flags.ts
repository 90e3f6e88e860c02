/**
 * Flag definitions shared by several commands, so that each is declared once: `-n/--dry-run`
 * for the commands that write, and the copy filters of the `tree` and `ncdu` views.
 */
import { Flags } from './oclif.js';

/**
 * `-n/--dry-run`: the catalogue is opened as a private read-only copy (`BaseCommand.writeMode`),
 * nothing is written on any disk, and the command prints what it would do.
 */
export function dryRunFlag(summary = 'Show what would change; write nothing.') {
  return Flags.boolean({ char: 'n', summary });
}

/** The filters of `tree` and `ncdu` (the Python distbackup's short flags and names still work). */
export const copyFilterFlags = {
  'min-copies': Flags.integer({
    helpValue: 'N',
    char: 'm',
    aliases: ['mincopies'],
    summary: 'Only files with at least N copies.',
    min: 0,
  }),
  'max-copies': Flags.integer({
    helpValue: 'N',
    char: 'x',
    aliases: ['maxcopies'],
    summary: 'Only files with at most N copies.',
    min: 0,
  }),
  copies: Flags.integer({ helpValue: 'N', char: 'c', summary: 'Only files with exactly N copies.', min: 0 }),
  on: Flags.string({
    helpValue: 'DISK',
    char: 'i',
    aliases: ['include'],
    multiple: true,
    summary: 'Only files held by this disk (repeatable: by all of them).',
  }),
  'not-on': Flags.string({
    helpValue: 'DISK',
    char: 'e',
    aliases: ['exclude'],
    multiple: true,
    summary: 'Only files held by none of these disks.',
  }),
  'simulate-loss': Flags.string({
    helpValue: 'DISK',
    aliases: ['simulate-drop'],
    multiple: true,
    summary: 'Count copies as if this disk had died (repeatable).',
  }),
};

/** The values of copyFilterFlags as `resolveFilter` takes them. */
export function copyFilterOf(f: {
  copies?: number | undefined;
  'min-copies'?: number | undefined;
  'max-copies'?: number | undefined;
  on?: string[] | undefined;
  'not-on'?: string[] | undefined;
  'simulate-loss'?: string[] | undefined;
}) {
  return {
    minCopies: f.copies ?? f['min-copies'],
    maxCopies: f.copies ?? f['max-copies'],
    on: f.on,
    notOn: f['not-on'],
    simulateLoss: f['simulate-loss'],
  };
}
