import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { guessSuite } from '../bench/device.js';
import { AbortedError } from '../bench/exec.js';
import { type PlannerReport, renderPlannerReport, runPlannerSuite } from '../bench/planner-suite.js';
import { type BenchReport, renderReport } from '../bench/report.js';
import { runSuite } from '../bench/suite.js';
import { BaseCommand } from '../cli/base-command.js';
import { Flags } from '../cli/oclif.js';
import { UsageError } from '../core/errors.js';
import { parseDuration, parseSize } from '../core/units.js';

export default class Bench extends BaseCommand<typeof Bench> {
  static override summary =
    'Time distbackup on this machine, side by side with cp, rsync, openssl and the backup tools.';
  static override description =
    `Generates data in a temporary folder under --target (large files and small files; with --datasets, also a mixed photo-like tree; with duplicates), then times distbackup's stages (update, a no-change update, sync, a second sync, verify, restore) and, on the same data in the same folder, cp -a + sync, rsync -a + sync, openssl dgst -sha256 and sha256sum in parallel, find, and restic, borg and rclone when they are installed. Prints MB/s, files/s and the ratio of distbackup's time to each peer's (below 1.00× distbackup is faster), then removes everything it made.

Every tool's start-up (a run that loads it and reads no data: about half a second for distbackup, which runs on Node) is timed once and printed on its own line; the "net" column gives each ratio with the start-ups taken off, which is what the data itself costs at sizes where start-up is most of a run.

The hdd suite syncs with --profile hdd, runs the hashing peers in one process and, where strace is allowed, reports the share of files read in ascending inode order. Without --suite, the suite follows the target's device: hdd only when it spins and is not a virtual machine's disk (those say they spin whatever the host stores them on). The planner suite plans a synthetic pool of --objects objects over 30 disks in process.

By default the page cache stays warm, as after a first run, and the defaults take about a minute. With --cold it is dropped before every run (root on Linux), so every tool reads from the disk. restic, borg and rclone are each given --peer-timeout per run; a run past it is stopped and its row says so.`;
  static override examples = [
    '<%= config.bin %> bench',
    '<%= config.bin %> bench --target /media/backup-hdd --size 4G --datasets large,small,mixed --cold',
    '<%= config.bin %> bench --suite ssd --size 50M --json > bench.json',
    '<%= config.bin %> bench --suite planner --objects 1000000,10000000',
  ];
  static override enableJsonFlag = true;
  static override flags = {
    suite: Flags.string({
      options: ['ssd', 'hdd', 'planner'],
      summary: "What to measure (default: hdd when the target's disk really spins, else ssd).",
    }),
    target: Flags.string({
      helpValue: 'DIR',
      summary: 'Folder to generate the data in (default: the system temp folder).',
    }),
    size: Flags.string({
      helpValue: 'SIZE',
      summary: 'Total data size, shared 5:2:3 by the large, small and mixed datasets that run.',
      default: '64M',
    }),
    datasets: Flags.string({
      helpValue: 'LIST',
      summary: 'Datasets to run (comma-separated: large,small,mixed); mixed lies between the other two.',
      default: 'large,small',
    }),
    seed: Flags.integer({
      helpValue: 'N',
      summary: 'Seed of the generated data (same seed, same bytes).',
      default: 1,
      min: 0,
    }),
    cold: Flags.boolean({
      summary: 'Drop the page cache before every run, so every tool reads from the disk (needs root).',
    }),
    'peer-timeout': Flags.string({
      helpValue: 'DUR',
      summary: 'Time box of each restic, borg, rclone or other peer run; a longer run is stopped.',
      default: '30s',
    }),
    objects: Flags.string({
      helpValue: 'N[,N]',
      summary: 'Planner suite: pool sizes to plan (comma-separated object counts).',
      default: '1000000',
    }),
    keep: Flags.boolean({ summary: 'Keep the generated data and every output, and print where.' }),
  };

  public async run(): Promise<BenchReport | PlannerReport> {
    const f = this.flags;
    const log = this.showProgress ? (line: string) => process.stderr.write(`${line}\n`) : undefined;
    if (f.suite === 'planner') {
      const counts = f.objects.split(',').map((s) => parseSize(s.trim(), 'object count'));
      const report = runPlannerSuite(counts, { seed: f.seed, ...(log === undefined ? {} : { log }) });
      for (const line of renderPlannerReport(report)) this.log(line);
      return report;
    }
    const target = path.resolve(f.target ?? os.tmpdir());
    const sizeBytes = parseSize(f.size);
    if (sizeBytes < 1e6) throw new UsageError(`--size ${f.size}: at least 1M, so every dataset has files`);
    const datasets = f.datasets.split(',').map((d) => d.trim());
    const kinds = datasets.filter((d): d is 'large' | 'small' | 'mixed' => ['large', 'small', 'mixed'].includes(d));
    if (kinds.length === 0 || kinds.length !== datasets.length) {
      throw new UsageError(`--datasets ${f.datasets}: expected a comma-separated list of large, small, mixed`);
    }
    const peerTimeoutSeconds = parseDuration(f['peer-timeout']) / 1000;
    if (peerTimeoutSeconds <= 0) throw new UsageError(`--peer-timeout ${f['peer-timeout']}: must be above 0`);
    fs.mkdirSync(target, { recursive: true });
    let suite = f.suite as 'ssd' | 'hdd' | undefined;
    if (suite === undefined) {
      const guess = guessSuite(target);
      suite = guess.suite;
      log?.(`bench: ${suite} suite (${guess.reason}; --suite chooses)`);
    }
    // Ctrl-C: end the running tool's process group, remove what was generated, exit 130.
    const ac = new AbortController();
    const onSigint = (): void => {
      log?.('bench: interrupted, cleaning up');
      ac.abort();
    };
    process.once('SIGINT', onSigint);
    let report: BenchReport;
    try {
      report = await runSuite({
        suite,
        target,
        sizeBytes,
        seed: f.seed,
        datasets: kinds,
        cache: f.cold ? 'cold' : 'warm',
        peerTimeoutSeconds,
        keep: f.keep,
        signal: ac.signal,
        ...(log === undefined ? {} : { log }),
      });
    } catch (err) {
      if (err instanceof AbortedError) this.exit(130);
      throw err;
    } finally {
      process.removeListener('SIGINT', onSigint);
    }
    for (const line of renderReport(report)) this.log(line);
    return report;
  }
}
