/**
 * Planner benchmark: `npx tsx bench/planner.ts [--objects 1e6,5e6,1e7] [--disks 30] [--fresh]`.
 * Generates a synthetic pool (typed arrays only) seen from one connected disk, plans it, and
 * prints the plan time and the peak RSS. Each size runs in its own child process, so the peak
 * RSS of one size is not inflated by the sizes before it. The input is built before the clock
 * starts: it is the catalogue's part of a sync (measured separately, see README-planner.md).
 *
 * The pool is `syntheticPool` of src/planner/fixture.ts (30 disks, photo-like sizes, 0–3 copies
 * elsewhere, a disk that evicts, copies and skips); `--fresh` plans an empty disk instead (every
 * chosen object is a copy); `--whole` an empty disk large enough for the whole pool (one copy
 * step per object: the largest plan there is).
 */
import { spawnSync } from 'node:child_process';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { syntheticPool } from '../src/planner/fixture.js';
import { plan } from '../src/planner/index.js';

interface Result {
  readonly objects: number;
  readonly buildSeconds: number;
  readonly planSeconds: number;
  /** CPU time of the plan (user + system): steadier than wall time on a busy machine. */
  readonly planCpuSeconds: number;
  readonly rssAfterInputBytes: number;
  readonly peakRssBytes: number;
  readonly copies: number;
  readonly evictions: number;
  readonly deletes: number;
  readonly minBefore: number;
  readonly minAfter: number;
}

// The pool comes from the one synthetic-pool builder; re-exported for the scale tests.
export { syntheticPool };

function child(count: number, disks: number, fresh: boolean, whole: boolean): Result {
  const b0 = process.hrtime.bigint();
  const input = syntheticPool(count, disks, fresh, 1, whole);
  const b1 = process.hrtime.bigint();
  const rssAfterInputBytes = process.memoryUsage().rss;
  const c0 = process.cpuUsage();
  const p0 = process.hrtime.bigint();
  const p = plan(input);
  const p1 = process.hrtime.bigint();
  const c1 = process.cpuUsage(c0);
  return {
    objects: count,
    buildSeconds: Number(b1 - b0) / 1e9,
    planSeconds: Number(p1 - p0) / 1e9,
    planCpuSeconds: (c1.user + c1.system) / 1e6,
    rssAfterInputBytes,
    peakRssBytes: process.resourceUsage().maxRSS * 1024,
    copies: p.copies,
    evictions: p.evictions,
    deletes: p.orphanDeletes + p.surplusDeletes,
    minBefore: p.minCopiesBefore,
    minAfter: p.minCopiesAfter,
  };
}

function flag(argv: string[], name: string): string | undefined {
  const k = argv.indexOf(name);
  return k >= 0 ? argv[k + 1] : undefined;
}

const mb = (b: number): string => `${(b / 1e6).toFixed(0)} MB`;

/** Run the benchmark; `argv` as after the script name. Resolves when every size is done. */
export async function main(argv: string[]): Promise<void> {
  const disks = Number(flag(argv, '--disks') ?? 30);
  const fresh = argv.includes('--fresh') || argv.includes('--whole');
  const whole = argv.includes('--whole');
  if (argv.includes('--child')) {
    const count = Number(flag(argv, '--child'));
    process.stdout.write(`${JSON.stringify(child(count, disks, fresh, whole))}\n`);
    return;
  }
  const sizes = (flag(argv, '--objects') ?? '1e6,5e6,1e7').split(',').map((s) => Math.round(Number(s)));
  if (sizes.some((s) => !(Number.isInteger(s) && s > 0))) throw new Error('--objects takes counts: 1e6,5e6,1e7');
  console.log(
    `planner benchmark: ${disks} disks, ${whole ? 'an empty disk that holds everything' : fresh ? 'an empty disk' : 'a disk in use'} connected, node ${process.version}`,
  );
  console.log(
    'objects     build input   plan      plan CPU   RSS with input   peak RSS   copies     evictions  deletes   min before→after',
  );
  const self = fileURLToPath(import.meta.url);
  for (const count of sizes) {
    const args = [...process.execArgv, self, '--child', String(count), '--disks', String(disks)];
    if (fresh) args.push('--fresh');
    if (whole) args.push('--whole');
    const out = spawnSync(process.execPath, args, { encoding: 'utf8', maxBuffer: 1 << 20 });
    if (out.status !== 0) throw new Error(`planner benchmark at ${count} objects failed: ${out.stderr}`);
    const r = JSON.parse(out.stdout.trim().split('\n').pop() ?? '{}') as Result;
    console.log(
      [
        r.objects.toLocaleString('en-US').padEnd(11),
        `${r.buildSeconds.toFixed(2)} s`.padEnd(13),
        `${r.planSeconds.toFixed(2)} s`.padEnd(9),
        `${r.planCpuSeconds.toFixed(2)} s`.padEnd(10),
        mb(r.rssAfterInputBytes).padEnd(16),
        mb(r.peakRssBytes).padEnd(10),
        String(r.copies).padEnd(10),
        String(r.evictions).padEnd(10),
        String(r.deletes).padEnd(9),
        `${r.minBefore}→${r.minAfter}`,
      ].join(' '),
    );
  }
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  await main(process.argv.slice(2));
}
