import * as os from 'node:os';
import * as path from 'node:path';
import { Flags } from '@oclif/core';
import { AbortedError } from '../bench/exec.js';
import { type PlannerReport, renderPlannerReport, runPlannerSuite } from '../bench/planner-suite.js';
import { type BenchReport, renderReport } from '../bench/report.js';
import { runSuite } from '../bench/suite.js';
import { BaseCommand } from '../cli/base-command.js';
import { UsageError } from '../core/errors.js';
import { parseSize } from '../core/units.js';
import { isRotational } from '../disk/fsinfo.js';

export default class Bench extends BaseCommand<typeof Bench> {
  static override summary =
    'Time distbackup on this machine, side by side with cp, rsync, openssl and the backup tools.';
  static override description =
    `Generates data in a temporary folder under --target (large files, small files and a mixed photo-like tree, with duplicates), then times distbackup's stages (update, a no-change update, sync, a second sync, verify, restore) and, on the same data in the same folder, cp -a + sync, rsync -a + sync, openssl dgst -sha256 and sha256sum in parallel, find, and restic, borg and rclone when they are installed. Prints MB/s, files/s and the ratio of distbackup's time to each peer's (below 1.00× distbackup is faster), then removes everything it made.

The hdd suite syncs with --profile hdd, runs the hashing peers in one process and, where strace is allowed, reports the share of files read in ascending inode order. Without --suite, the suite follows the target's device (hdd when it spins). The planner suite plans a synthetic pool of --objects objects over 30 disks in process.

The page cache is dropped before every run when this user may (root on Linux), so reads come from the disk; otherwise the report says the cache was warm.`;
  static override examples = [
    '<%= config.bin %> bench',
    '<%= config.bin %> bench --target /media/backup-hdd --size 4G',
    '<%= config.bin %> bench --suite ssd --size 50M --json > bench.json',
    '<%= config.bin %> bench --suite planner --objects 1000000,10000000',
  ];
  static override enableJsonFlag = true;
  static override flags = {
    suite: Flags.string({
      options: ['ssd', 'hdd', 'planner'],
      summary: 'What to measure (default: hdd when the target spins, else ssd).',
    }),
    target: Flags.string({ summary: 'Folder to generate the data in (default: the system temp folder).' }),
    size: Flags.string({ summary: 'Total data size: 50% large files, 20% small, 30% mixed.', default: '128M' }),
    datasets: Flags.string({
      summary: 'Only these datasets (comma-separated: large,small,mixed).',
      default: 'large,small,mixed',
    }),
    seed: Flags.integer({ summary: 'Seed of the generated data (same seed, same bytes).', default: 1, min: 0 }),
    cache: Flags.string({
      options: ['auto', 'cold', 'warm'],
      summary: 'Drop the page cache before each run (cold), or not (warm); auto: cold when allowed.',
      default: 'auto',
    }),
    objects: Flags.string({
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
    const suite = (f.suite as 'ssd' | 'hdd' | undefined) ?? (isRotational(target) === true ? 'hdd' : 'ssd');
    if (f.suite === undefined)
      log?.(`bench: ${suite} suite (the device under ${target} ${suite === 'hdd' ? 'spins' : 'does not spin'})`);
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
        cache: f.cache as 'auto' | 'cold' | 'warm',
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
