/**
 * Benchmark of the recovery side (issue targets): `verify` against `openssl dgst -sha256` and
 * `sha256sum` over the same objects, and `restore` of large files against `cp -a` of the same
 * bytes (with `sync` after it, since restore makes its files durable before recording them).
 * The page cache is dropped before every timed run where allowed, so each tool reads cold.
 *
 * Verify runs each profile beside its peer: hdd (one lane) against one `openssl dgst -sha256`
 * over every object, ssd (two lanes on worker threads) against two openssl processes, each over
 * half of the objects. `--repeat N` rounds (default 3), the order alternating from round to
 * round; each round prints wall and CPU seconds, and the medians and their ratios close it. The
 * machine may be shared: read the ratios, and the load printed with them.
 *
 * `--warm` keeps the page cache for verify (the CPU-bound case: hashing, not the disk).
 * Restore runs the same number of rounds beside `cp -a` and `cp -a && sync` of the objects.
 * `--small N` adds a tree of N small files (1–16 KiB, 100 to a folder, on a disk of their own)
 * verified and restored the same way; `--mib 0` leaves out the large files. Every run writes into a folder of
 * its own, and the folders of many files are removed only at the end: file creation on this
 * machine's ext4 runs several times slower for ~35 s after a mass delete (NODE20.md), which
 * would slow whichever run came next.
 *
 *   npx tsx bench/recovery.ts [--dir DIR] [--mib N] [--file-mib N] [--small N] [--keep] [--repeat N] [--profile hdd|ssd|both] [--warm] [--only verify|restore]
 *   npx tsx bench/recovery.ts --only restore --mib 1024 --small 20000 --repeat 3
 *   npm run bench -- recovery
 */
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { dropCaches, inTurns, median, warmTree } from '../src/bench/exec.js';
import { openCatalog } from '../src/catalog/db.js';
import { OBJECTS_DIR } from '../src/disk/layout.js';
import { addDisk } from '../src/disks/disks.js';
import { runRestore } from '../src/restore/restore.js';
import { mapSource } from '../src/sources/sources.js';
import { runSync } from '../src/sync/sync.js';
import { runUpdate } from '../src/update/update.js';
import { runVerify, type VerifyProfile } from '../src/verify/verify.js';

interface Args {
  dir: string;
  mib: number;
  fileMib: number;
  keep: boolean;
  repeat: number;
  profiles: VerifyProfile[];
  /** Verify with the page cache warm (the CPU-bound case: hashing, not the disk). */
  warm: boolean;
  /** `--only verify` or `--only restore`: run one part. */
  only: 'verify' | 'restore' | undefined;
  /** Small files in a tree of their own, restored beside cp too (0: none). */
  small: number;
}

function parseArgs(argv: string[]): Args {
  const a: Args = {
    dir: os.tmpdir(),
    mib: 1024,
    fileMib: 64,
    keep: false,
    repeat: 3,
    profiles: ['hdd', 'ssd'],
    warm: false,
    only: undefined,
    small: 0,
  };
  for (let i = 0; i < argv.length; i++) {
    const k = argv[i];
    const v = argv[i + 1];
    if (k === '--keep') {
      a.keep = true;
      continue;
    }
    if (k === '--warm') {
      a.warm = true;
      continue;
    }
    if (v === undefined) continue;
    if (k === '--dir') a.dir = v;
    else if (k === '--mib') a.mib = Number(v);
    else if (k === '--file-mib') a.fileMib = Number(v);
    else if (k === '--small') a.small = Math.max(0, Math.floor(Number(v)));
    else if (k === '--repeat') a.repeat = Math.max(1, Number(v));
    else if (k === '--only') a.only = v === 'restore' ? 'restore' : 'verify';
    else if (k === '--profile') a.profiles = v === 'both' ? ['hdd', 'ssd'] : [v === 'ssd' ? 'ssd' : 'hdd'];
    else continue;
    i += 1;
  }
  return a;
}

function have(cmd: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;
}

/** Time `fn` in seconds after dropping the page cache. */
async function timed(fn: () => unknown): Promise<number> {
  dropCaches();
  const t0 = process.hrtime.bigint();
  await fn();
  return Number(process.hrtime.bigint() - t0) / 1e9;
}

function run(cmd: string, args: string[]): void {
  const r = spawnSync(cmd, args, { stdio: ['ignore', 'ignore', 'inherit'], maxBuffer: 1 << 30 });
  if (r.status !== 0) throw new Error(`${cmd} exited with ${r.status}`);
}

function objectFiles(disk: string): string[] {
  const root = path.join(disk, OBJECTS_DIR);
  const out: string[] = [];
  for (const pre of fs.readdirSync(root).sort()) {
    if (pre.startsWith('.')) continue;
    for (const f of fs.readdirSync(path.join(root, pre)).sort()) out.push(path.join(root, pre, f));
  }
  return out;
}

/** CPU seconds (user + system) of this process's waited-for children, from /proc/self/stat. */
function childCpuSeconds(): number {
  const stat = fs.readFileSync('/proc/self/stat', 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // Fields 16 and 17 (cutime, cstime), counted from after the command name (field 3 = index 0).
  return (Number(f[13]) + Number(f[14])) / 100;
}

/** One timed run: wall and CPU seconds (this process's own, or its children's). */
async function timedCpu(fn: () => unknown, children: boolean, warm = false): Promise<{ wall: number; cpu: number }> {
  if (!warm) dropCaches();
  const cpu0 = children ? childCpuSeconds() : cpuSeconds();
  const t0 = process.hrtime.bigint();
  await fn();
  const wall = Number(process.hrtime.bigint() - t0) / 1e9;
  return { wall, cpu: (children ? childCpuSeconds() : cpuSeconds()) - cpu0 };
}

function cpuSeconds(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
}

/** Objects per `openssl` process (as `xargs -n`): the command line of many small objects has a limit. */
const OPENSSL_ARGS = 1000;

/** `openssl dgst -sha256` in `n` lanes at once, each over every n-th object, OPENSSL_ARGS to a process. */
function openssl(objs: string[], n: number): Promise<void> {
  const parts = Array.from({ length: n }, (_, i) => objs.filter((_o, j) => j % n === i));
  const one = (args: string[]): Promise<void> =>
    new Promise<void>((resolve, reject) => {
      const c = spawn('openssl', ['dgst', '-sha256', ...args], { stdio: ['ignore', 'ignore', 'inherit'] });
      c.on('error', reject);
      c.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`openssl exited with ${code}`))));
    });
  return Promise.all(
    parts.map(async (part) => {
      for (let i = 0; i < part.length; i += OPENSSL_ARGS) await one(part.slice(i, i + OPENSSL_ARGS));
    }),
  ).then(() => undefined);
}

/**
 * Verify of every object with each profile beside openssl with as many processes as lanes,
 * `a.repeat` rounds in alternating order; prints every run and returns the ratio lines.
 */
async function benchVerify(
  cat: ReturnType<typeof openCatalog>,
  objs: string[],
  mb: number,
  a: Args,
): Promise<string[]> {
  const out: string[] = [];
  if (!have('openssl')) return ['verify: openssl is not installed, no ratio'];
  // Warm: every object read once, untimed, so the first run of the first round does not read
  // what the setup left cold (the cache was dropped when it said whether it could be).
  const objectsRoot = objs[0] === undefined ? undefined : path.dirname(path.dirname(objs[0]));
  if (a.warm && objectsRoot !== undefined) await warmTree([objectsRoot]);
  for (const profile of a.profiles) {
    const procs = profile === 'ssd' ? 2 : 1;
    const label = `openssl dgst -sha256 (${procs} process${procs > 1 ? 'es' : ''})`;
    console.log(`verify, ${profile} profile, against ${label}${a.warm ? ', page cache warm' : ''}:`);
    const ours: { wall: number; cpu: number }[] = [];
    const theirs: { wall: number; cpu: number }[] = [];
    const ratios: number[] = [];
    for (let round = 0; round < a.repeat; round++) {
      const runOurs = async (): Promise<{ wall: number; cpu: number }> => {
        const r = await timedCpu(
          async () => {
            const doc = await runVerify(cat, { name: 'bench', profile });
            if (doc.bad.length + doc.missing.length > 0) throw new Error('verify found damage in the bench data');
          },
          false,
          a.warm,
        );
        ours.push(r);
        return r;
      };
      const runTheirs = async (): Promise<{ wall: number; cpu: number }> => {
        const r = await timedCpu(() => openssl(objs, procs), true, a.warm);
        theirs.push(r);
        return r;
      };
      const [d, o] = await inTurns(round, runOurs, runTheirs);
      ratios.push(d.wall / o.wall);
      console.log(
        `  round ${round + 1}: distbackup ${d.wall.toFixed(2)} s (cpu ${d.cpu.toFixed(2)} s, ${(mb / d.wall).toFixed(0)} MB/s)  ` +
          `openssl ${o.wall.toFixed(2)} s (cpu ${o.cpu.toFixed(2)} s, ${(mb / o.wall).toFixed(0)} MB/s)  ratio ${(d.wall / o.wall).toFixed(2)}  load ${os.loadavg()[0]?.toFixed(2)}`,
      );
    }
    const dw = median(ours.map((r) => r.wall));
    const ow = median(theirs.map((r) => r.wall));
    const dc = median(ours.map((r) => r.cpu));
    const oc = median(theirs.map((r) => r.cpu));
    out.push(
      `verify ${profile} / ${label} = ${median(ratios).toFixed(2)}x the time (median of ${a.repeat} rounds; medians ${dw.toFixed(2)} s / ${ow.toFixed(2)} s, cpu ${dc.toFixed(2)} s / ${oc.toFixed(2)} s; target: at most 1.0x)`,
    );
  }
  return out;
}

/** Removing this many files or more slows the file creation that follows (see the module comment). */
const MANY_FILES = 1000;

/** One data set restored in the bench: its own source tree, home catalogue and disk. */
interface BenchSet {
  label: string;
  home: string;
  disk: string;
  files: number;
  bytes: number;
}

/** Map `src` in a home of its own under `dir`, update, and sync it to a disk there. */
async function prepareSet(dir: string, src: string, label: string, files: number, bytes: number): Promise<BenchSet> {
  const home = path.join(dir, 'home');
  const cat = openCatalog(home);
  try {
    mapSource(cat, '/bench', src);
    await runUpdate(cat, {});
    const disk = path.join(dir, 'disk');
    addDisk(cat, 'bench', disk, { sizeBytes: bytes * 2 + 1e9 });
    await runSync(cat, { name: 'bench' });
    return { label, home, disk, files, bytes };
  } finally {
    cat.close();
  }
}

/** A tree of `n` small files under `src` (1–16 KiB of random bytes, 100 to a folder); returns their bytes. */
function writeSmallTree(src: string, n: number): number {
  let bytes = 0;
  for (let i = 0; i < n; i++) {
    const folder = path.join(
      src,
      `d${String(Math.floor(i / 10_000)).padStart(2, '0')}`,
      `d${String(Math.floor(i / 100) % 100).padStart(2, '0')}`,
    );
    if (i % 100 === 0) fs.mkdirSync(folder, { recursive: true });
    const size = 1024 + ((i * 7919) % (15 * 1024));
    fs.writeFileSync(path.join(folder, `f${String(i).padStart(6, '0')}.bin`), randomBytes(size));
    bytes += size;
  }
  return bytes;
}

/**
 * Restore of every file into an empty folder (durable: restore fsyncs before it records)
 * beside `cp -a` and `cp -a && sync` of the same objects, `a.repeat` rounds with distbackup
 * first and last in turn; prints every run and returns the ratio lines (medians).
 */
async function benchRestore(set: BenchSet, base: string, a: Args): Promise<string[]> {
  const { disk, home, label } = set;
  const mb = set.bytes / 1e6;
  console.log(`restore (${label}, from the disk into an empty folder), against cp -a of the objects:`);
  const objects = path.join(disk, OBJECTS_DIR);
  // A folder of its own for every run; many files are removed only after the last round.
  const runs = path.join(base, 'runs');
  fs.mkdirSync(runs, { recursive: true });
  const later: string[] = [];
  let seq = 0;
  const fresh = (name: string): string => {
    if (set.files < MANY_FILES) for (const old of later.splice(0)) fs.rmSync(old, { recursive: true, force: true });
    const p = path.join(runs, `${name}-${seq++}`);
    later.push(p);
    return p;
  };
  const rows: { d: number; dc: number; cp: number; cps: number }[] = [];
  for (let round = 0; round < a.repeat; round++) {
    const ours = async (): Promise<{ wall: number; cpu: number }> => {
      const dest = fresh('restored');
      return timedCpu(async () => {
        const doc = await runRestore({ dest, vpaths: [], diskPath: disk, dataDir: home, catalogue: 'home' });
        if (doc.restored !== set.files) throw new Error(`restore restored ${doc.restored} files, not ${set.files}`);
        if (doc.remaining > 0 || doc.errors.length > 0) throw new Error('restore did not restore everything');
      }, false);
    };
    const cp = async (): Promise<number> => {
      const dest = fresh('cp');
      return (await timedCpu(() => run('cp', ['-a', objects, dest]), true)).wall;
    };
    const cpSync = async (): Promise<number> => {
      const dest = fresh('cp');
      return (
        await timedCpu(() => {
          run('cp', ['-a', objects, dest]);
          run('sync', []);
        }, true)
      ).wall;
    };
    let d: { wall: number; cpu: number };
    let c: number;
    let cs: number;
    if (round % 2 === 0) {
      d = await ours();
      c = await cp();
      cs = await cpSync();
    } else {
      cs = await cpSync();
      c = await cp();
      d = await ours();
    }
    rows.push({ d: d.wall, dc: d.cpu, cp: c, cps: cs });
    console.log(
      `  round ${round + 1}: distbackup ${d.wall.toFixed(2)} s (cpu ${d.cpu.toFixed(2)} s, ${(mb / d.wall).toFixed(0)} MB/s)  ` +
        `cp -a ${c.toFixed(2)} s  cp -a && sync ${cs.toFixed(2)} s  ratios ${(d.wall / c).toFixed(2)} / ${(d.wall / cs).toFixed(2)}  load ${os.loadavg()[0]?.toFixed(2)}`,
    );
  }
  for (const p of later) fs.rmSync(p, { recursive: true, force: true });
  const r1 = median(rows.map((r) => r.d / r.cp));
  const r2 = median(rows.map((r) => r.d / r.cps));
  return [
    `restore of ${label} / cp -a = ${r1.toFixed(2)}x the time (median of ${a.repeat} rounds; medians ${median(rows.map((r) => r.d)).toFixed(2)} s / ${median(rows.map((r) => r.cp)).toFixed(2)} s; target: at most 1.3x)`,
    `restore of ${label} / cp -a && sync = ${r2.toFixed(2)}x the time (medians ${median(rows.map((r) => r.d)).toFixed(2)} s / ${median(rows.map((r) => r.cps)).toFixed(2)} s; restore is durable when it ends, cp -a is not until sync)`,
  ];
}

/** Run the benchmark; prints one line per measurement and the ratios against the targets. */
export async function main(argv: string[]): Promise<void> {
  const a = parseArgs(argv);
  const base = fs.mkdtempSync(path.join(a.dir, 'distbackup-bench-recovery-'));
  try {
    const sets: BenchSet[] = [];
    if (a.mib > 0) sets.push(await prepareLarge(base, a));
    if (a.small > 0) {
      const dir = path.join(base, 'small');
      const src = path.join(dir, 'src');
      const bytes = writeSmallTree(src, a.small);
      console.log(`recovery bench: ${a.small} small files (${(bytes / 2 ** 20).toFixed(0)} MiB) in ${dir}`);
      sets.push(await prepareSet(dir, src, `${a.small} small files`, a.small, bytes));
    }
    console.log(`page cache dropped before each run: ${dropCaches() ? 'yes' : 'no (not root): figures are warm'}`);
    const verifyRatios: string[] = [];
    for (const set of a.only === 'restore' ? [] : sets) {
      const cat = openCatalog(set.home);
      try {
        const objs = objectFiles(set.disk);
        const mb = set.bytes / 1e6;
        console.log(`verify of ${set.label}:`);
        verifyRatios.push(...(await benchVerify(cat, objs, mb, a)).map((r) => `${r} [${set.label}]`));
        if (have('sha256sum') && set.files < MANY_FILES) {
          const s = await timed(() => run('sha256sum', objs));
          console.log(
            `  ${'sha256sum (1 process)'.padEnd(34)} ${s.toFixed(2).padStart(7)} s  ${(mb / s).toFixed(0).padStart(6)} MB/s`,
          );
        }
      } finally {
        cat.close();
      }
    }
    const restoreRatios: string[] = [];
    if (a.only !== 'verify') for (const set of sets) restoreRatios.push(...(await benchRestore(set, base, a)));

    console.log('targets:');
    for (const r of verifyRatios) console.log(`  ${r}`);
    for (const r of restoreRatios) console.log(`  ${r}`);
  } finally {
    if (a.keep) console.log(`kept ${base}`);
    else fs.rmSync(base, { recursive: true, force: true });
  }
}

/** The large files (`--mib` in files of `--file-mib`), mapped and synced under `base`. */
async function prepareLarge(base: string, a: Args): Promise<BenchSet> {
  const src = path.join(base, 'src');
  fs.mkdirSync(src);
  const files = Math.max(1, Math.round(a.mib / a.fileMib));
  const chunk = 8 * 1024 * 1024;
  for (let i = 0; i < files; i++) {
    const fd = fs.openSync(path.join(src, `large-${String(i).padStart(4, '0')}.bin`), 'w');
    const size = Math.round(a.fileMib * 1024 * 1024);
    // Each file gets exactly its size: `--file-mib 0.01` makes 10 KiB files (the many-small-files case).
    for (let off = 0; off < size; off += chunk) fs.writeSync(fd, randomBytes(Math.min(chunk, size - off)));
    fs.closeSync(fd);
  }
  const bytes = files * Math.round(a.fileMib * 1024 * 1024);
  console.log(`recovery bench: ${files} files of ${a.fileMib} MiB (${(bytes / 2 ** 30).toFixed(2)} GiB) in ${base}`);
  const label = a.fileMib >= 1 ? `${files} large file${files === 1 ? '' : 's'}` : `${files} files of ${a.fileMib} MiB`;
  return prepareSet(base, src, label, files, bytes);
}

if (import.meta.url === `file://${process.argv[1]}`) {
  await main(process.argv.slice(2));
}
