import { BaseCommand } from '../cli/base-command.js';
import { Flags } from '../cli/oclif.js';
import { parseDuration } from '../core/units.js';
import { renderStatus } from '../status/render.js';
import { runStatus, type StatusDoc } from '../status/status.js';

export default class Status extends BaseCommand<typeof Status> {
  static override readOnly = true;
  static override summary = 'Show how well the files are protected: copies, disks, and what a dead disk would cost.';
  static override description =
    'Totals; the redundancy histogram (objects and bytes at 0, 1, 2, 3+ copies, over the objects that current files reference); per disk its size, use, last seen, last sync and last verify; what is lost if each single disk dies and the worst pair of disks; disks not seen and copies not verified for longer than --stale.';
  static override examples = [
    '<%= config.bin %> status',
    '<%= config.bin %> status --stale 30d',
    '<%= config.bin %> status --no-saturated',
    '<%= config.bin %> status --json',
  ];
  static override enableJsonFlag = true;
  static override flags = {
    stale: Flags.string({
      helpValue: 'DUR',
      summary: 'Flag disks not seen and copies not verified for longer than this.',
      default: '90d',
    }),
    'no-saturated': Flags.boolean({
      summary: 'Count objects already at their cap (max copies) apart, out of the histogram and the minimum.',
    }),
  };

  public async run(): Promise<StatusDoc> {
    const staleMs = parseDuration(this.flags.stale);
    const doc = runStatus(this.catalog({ readonly: true }), {
      staleMs,
      noSaturated: this.flags['no-saturated'],
    });
    for (const line of renderStatus(doc, { detail: this.verbosity >= 1 })) this.log(line);
    return doc;
  }
}
