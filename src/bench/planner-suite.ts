/**
 * The planner suite of `distbackup bench`: the synthetic pool of src/planner/fixture.ts (N
 * objects with photo-like sizes, 30 disks, 0–3 copies elsewhere, some on the connected disk,
 * a few orphans) planned in process, timed, with the peak memory of this process. No disk I/O:
 * it measures the arithmetic a sync does before copying anything. Not thread-safe.
 */
import { formatCount } from '../core/units.js';
import { syntheticPool } from '../planner/fixture.js';
import { plan } from '../planner/index.js';
import { readPeakRss } from './exec.js';
import { table } from './report.js';

export interface PlannerRun {
  readonly objects: number;
  readonly disks: number;
  /** Building the typed-array input (the part the catalogue does in a real sync), seconds. */
  readonly buildSeconds: number;
  readonly planSeconds: number;
  readonly objectsPerSecond: number;
  readonly copies: number;
  readonly evictions: number;
  readonly deletes: number;
  readonly minCopiesBefore: number;
  readonly minCopiesAfter: number;
  /** Peak RSS of this process so far (VmHWM), bytes; null when not measurable. */
  readonly peakRssBytes: number | null;
}

export interface PlannerReport {
  readonly suite: 'planner';
  readonly date: string;
  readonly seed: number;
  readonly runs: readonly PlannerRun[];
}

/** Plan pools of each size in `counts` (over `disks` disks) and report time and memory. */
export function runPlannerSuite(
  counts: readonly number[],
  opts: { disks?: number; seed?: number; log?: (line: string) => void; signal?: AbortSignal } = {},
): PlannerReport {
  const disks = opts.disks ?? 30;
  const seed = opts.seed ?? 1;
  const runs: PlannerRun[] = [];
  for (const count of counts) {
    if (opts.signal?.aborted === true) break;
    opts.log?.(`bench: planner: ${formatCount(count)} objects over ${disks} disks`);
    const b0 = process.hrtime.bigint();
    const input = syntheticPool(count, disks, false, seed);
    const p0 = process.hrtime.bigint();
    const result = plan(input);
    const p1 = process.hrtime.bigint();
    const planSeconds = Number(p1 - p0) / 1e9;
    runs.push({
      objects: count,
      disks,
      buildSeconds: Number(p0 - b0) / 1e9,
      planSeconds,
      objectsPerSecond: planSeconds > 0 ? count / planSeconds : 0,
      copies: result.copies,
      evictions: result.evictions,
      deletes: result.orphanDeletes + result.surplusDeletes,
      minCopiesBefore: result.minCopiesBefore,
      minCopiesAfter: result.minCopiesAfter,
      peakRssBytes: readPeakRss(process.pid) ?? null,
    });
  }
  return { suite: 'planner', date: new Date().toISOString(), seed, runs };
}

/** The human table of a planner report. */
export function renderPlannerReport(report: PlannerReport): string[] {
  const rows = report.runs.map((r) => [
    formatCount(r.objects),
    String(r.disks),
    r.buildSeconds.toFixed(2),
    r.planSeconds.toFixed(2),
    formatCount(Math.round(r.objectsPerSecond)),
    formatCount(r.copies),
    formatCount(r.evictions),
    `${r.minCopiesBefore} → ${r.minCopiesAfter}`,
    r.peakRssBytes === null ? '' : `${Math.round(r.peakRssBytes / 1e6)} MB`,
  ]);
  return [
    `distbackup bench, planner suite (seed ${report.seed}): one disk connected, synthetic pool, in process`,
    ...table(
      ['objects', 'disks', 'build s', 'plan s', 'objects/s', 'copies', 'evictions', 'min copies', 'peak RSS'],
      rows,
      [0, 1, 2, 3, 4, 5, 6, 8],
    ),
  ];
}
