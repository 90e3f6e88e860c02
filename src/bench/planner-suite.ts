/**
 * The planner suite of `distbackup bench`: a synthetic pool (N objects with photo-like sizes,
 * 30 disks, 0–3 copies elsewhere, some on the connected disk, a few orphans) planned in
 * process, timed, with the peak memory of this process. No disk I/O: it measures the
 * arithmetic a sync does before copying anything. Not thread-safe.
 */
import { plan } from '../planner/index.js';
import { type PlannerInput, UNCAPPED } from '../planner/types.js';
import { seededRandom } from './dataset.js';
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

/**
 * A seeded pool of `count` objects over `disks` disks, seen from disk 0: sizes log-uniform
 * 4 KiB – 64 MiB, copies elsewhere 0–3 (a third with none), 20 % already on this disk, 1 % orphans,
 * a capacity of a third of the pool's bytes (so the fill, evictions and skips all happen).
 */
export function syntheticInput(count: number, disks: number, seed: number): PlannerInput {
  const rand = seededRandom(seed);
  const objectId = new Float64Array(count);
  const sizeBytes = new Float64Array(count);
  const copiesElsewhere = new Uint16Array(count);
  const onThisDisk = new Uint8Array(count);
  const priority = new Uint32Array(count);
  const minCopies = new Uint16Array(count);
  const maxCopies = new Uint32Array(count);
  const holderSet = new Uint32Array(count);
  const holderSets: number[][] = [];
  const setIndex = new Map<string, number>();
  let total = 0;
  for (let i = 0; i < count; i++) {
    objectId[i] = i + 1;
    const size = Math.round(Math.exp(Math.log(4096) + rand() * (Math.log(64 * 1024 ** 2) - Math.log(4096))));
    sizeBytes[i] = size;
    total += size;
    const copies = rand() < 1 / 3 ? 0 : 1 + Math.floor(rand() * 3);
    const holders: number[] = [];
    while (holders.length < copies) {
      const d = 1 + Math.floor(rand() * (disks - 1));
      if (!holders.includes(d)) holders.push(d);
    }
    holders.sort((a, b) => a - b);
    const key = holders.join(',');
    let idx = setIndex.get(key);
    if (idx === undefined) {
      idx = holderSets.length;
      holderSets.push(holders);
      setIndex.set(key, idx);
    }
    holderSet[i] = idx;
    copiesElsewhere[i] = copies;
    onThisDisk[i] = rand() < 0.2 ? 1 : 0;
    priority[i] = rand() < 0.05 ? 2 : 1;
    minCopies[i] = rand() < 0.1 ? 2 : 1;
    maxCopies[i] = UNCAPPED;
  }
  const orphanCount = Math.floor(count / 100);
  const orphans = { objectId: new Float64Array(orphanCount), sizeBytes: new Float64Array(orphanCount) };
  for (let i = 0; i < orphanCount; i++) {
    orphans.objectId[i] = count + i + 1;
    orphans.sizeBytes[i] = 4096 + Math.floor(rand() * 1024 ** 2);
  }
  return {
    count,
    objectId,
    sizeBytes,
    copiesElsewhere,
    onThisDisk,
    priority,
    minCopies,
    maxCopies,
    holderSet,
    holderSets,
    orphans,
    capacityBytes: Math.floor(total / 3),
  };
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
    opts.log?.(`bench: planner: ${count.toLocaleString('en-US')} objects over ${disks} disks`);
    const b0 = process.hrtime.bigint();
    const input = syntheticInput(count, disks, seed);
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
    r.objects.toLocaleString('en-US'),
    String(r.disks),
    r.buildSeconds.toFixed(2),
    r.planSeconds.toFixed(2),
    Math.round(r.objectsPerSecond).toLocaleString('en-US'),
    r.copies.toLocaleString('en-US'),
    r.evictions.toLocaleString('en-US'),
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
