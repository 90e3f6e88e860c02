/**
 * Planner benchmark: `npx tsx bench/planner.ts [--objects 1e6,5e6,1e7] [--disks 30] [--fresh]`.
 * Generates a synthetic pool (typed arrays only) seen from one connected disk, plans it, and
 * prints the plan time and the peak RSS. Each size runs in its own child process, so the peak
 * RSS of one size is not inflated by the sizes before it. The input is built before the clock
 * starts: it is the catalogue's part of a sync (measured separately, see README-planner.md).
 *
 * The pool: 30 disks; object sizes log-uniform between 4 KiB and 64 MiB (photos, documents,
 * short videos); each object held by 0–3 random disks (one in six by none: new files), so the
 * connected disk (disk 0) holds about one in fifteen; 2 % of objects at priority 2, 5 % at
 * priority 0, 10 % with a copy target of 2; 1 % orphans; the disk's size is what it would hold
 * if every disk held an equal share of two copies of everything, so it evicts, copies and skips.
 * `--fresh` plans an empty disk instead (every chosen object is a copy); `--whole` an empty disk
 * large enough for the whole pool (one copy step per object: the largest plan there is).
 */
import { spawnSync } from 'node:child_process';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { plan } from '../src/planner/index.js';
import { type PlannerInput, UNCAPPED } from '../src/planner/types.js';

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

/** mulberry32: fast, seeded, good enough for synthetic data. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A synthetic PlannerInput of `count` objects over `disks` disks, seen from disk 0. */
export function syntheticPool(count: number, disks: number, fresh: boolean, seed = 1, whole = false): PlannerInput {
  const r = rng(seed);
  const objectId = new Float64Array(count);
  const sizeBytes = new Float64Array(count);
  const copiesElsewhere = new Uint16Array(count);
  const onThisDisk = new Uint8Array(count);
  const priority = new Uint32Array(count);
  const minCopies = new Uint16Array(count);
  const maxCopies = new Uint32Array(count).fill(UNCAPPED);
  const holderSet = new Uint32Array(count);
  const setOf = new Map<number, number>(); // bit mask of other disks -> holder set index
  const holderSets: number[][] = [];
  const lnMin = Math.log(4096);
  const lnSpan = Math.log(64 * 1024 * 1024) - lnMin;
  let total = 0;
  for (let i = 0; i < count; i++) {
    objectId[i] = i + 1;
    const size = Math.floor(Math.exp(lnMin + r() * lnSpan));
    sizeBytes[i] = size;
    total += size;
    const u = r();
    const copies = u < 1 / 6 ? 0 : u < 0.5 ? 1 : u < 0.85 ? 2 : 3;
    let mask = 0;
    for (let k = 0; k < copies; ) {
      const d = Math.floor(r() * disks);
      if ((mask >>> d) & 1) continue;
      mask |= 1 << d;
      k++;
    }
    const here = mask & 1;
    onThisDisk[i] = fresh ? 0 : here;
    const others = mask >>> 1;
    let h = setOf.get(others);
    if (h === undefined) {
      h = holderSets.length;
      const list: number[] = [];
      for (let d = 1; d < disks; d++) if ((others >>> (d - 1)) & 1) list.push(d);
      holderSets.push(list);
      setOf.set(others, h);
    }
    holderSet[i] = h;
    let c = 0;
    for (let x = others; x !== 0; x &= x - 1) c++;
    copiesElsewhere[i] = c;
    const p = r();
    priority[i] = p < 0.05 ? 0 : p < 0.07 ? 2 : 1;
    minCopies[i] = r() < 0.1 ? 2 : 1;
  }
  const orphanCount = fresh ? 0 : Math.floor(count / 100);
  const orphans = { objectId: new Float64Array(orphanCount), sizeBytes: new Float64Array(orphanCount) };
  for (let k = 0; k < orphanCount; k++) {
    orphans.objectId[k] = count + k + 1;
    orphans.sizeBytes[k] = Math.floor(Math.exp(lnMin + r() * lnSpan));
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
    capacityBytes: whole ? 2 * total : Math.floor((2 * total) / disks),
  };
}

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
