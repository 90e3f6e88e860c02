/**
 * Benchmark of `update` (issue 2 targets), with the built CLI in a child process, against the
 * standard tools over the same files in the same run:
 *
 *   (a) 1 GiB in 4 large files, (b) 50,000 small files: `distbackup update` (first run, then a
 *       no-op re-scan), `openssl dgst -sha256` and `sha256sum` in 2 parallel processes, and
 *       `find -printf '%s %T@ %p\n'`; MB/s, files/s and ratios.
 *       Then, for the large files, the first update against the two openssl processes again in
 *       `--rounds N` rounds (default 3) of alternating order, cold and warm, with the median ratio.
 *   (c) 1,000,000 empty files: catalogue rows per second and peak RSS of the update process.
 *   (e) the catalogue writer alone (FilesWriter.upsert, in this process): rows per second over
 *       `--writer-rows` rows (default 1,000,000), with synchronous NORMAL (as update runs) and FULL.
 *   (d) SHA-256 on one thread: node:crypto against hash-wasm (the choice of hash library).
 *
 *   npx tsx bench/update.ts [--dir DIR] [--large-mib N] [--small-files N] [--million N] [--writer-rows N]
 *                           [--jobs N] [--rounds N] [--keep]
 *   npm run bench -- update
 *
 * Caches: the page cache is dropped before each timed command where /proc/sys/vm/drop_caches
 * is writable (cold reads); otherwise every tool reads the same warm cache, and the report says so.
 */
import { spawnSync } from 'node:child_process';
import { createHash, randomFillSync } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { createSHA256 } from 'hash-wasm';
import { type ExecResult, execTimed, inTurns, median, toolVersion, which } from '../src/bench/exec.js';
import { openCatalog } from '../src/catalog/db.js';
import { FilesWriter } from '../src/catalog/files.js';
import { FileKind, NO_CAP } from '../src/catalog/schema.js';
import { insertSource } from '../src/catalog/sources.js';
import { EMPTY_SHA256 } from '../src/pipeline/hash.js';

const ROOT = path.resolve(import.meta.dirname, '..');
const CLI = path.join(ROOT, 'bin', 'run.js');
const MB = 1e6;

interface Args {
  dir: string;
  largeMiB: number;
  smallFiles: number;
  million: number;
  writerRows: number;
  jobs: number | undefined;
  rounds: number;
  keep: boolean;
}

function parseArgs(argv: string[]): Args {
  const a: Args = {
    dir: os.tmpdir(),
    largeMiB: 1024,
    smallFiles: 50_000,
    million: 1_000_000,
    writerRows: 1_000_000,
    jobs: undefined,
    rounds: 3,
    keep: false,
  };
  for (let i = 0; i < argv.length; i++) {
    const k = argv[i];
    const v = argv[i + 1];
    if (k === '--keep') {
      a.keep = true;
      continue;
    }
    if (v === undefined) throw new Error(`bench update: ${k} needs a value`);
    if (k === '--dir') a.dir = v;
    else if (k === '--large-mib') a.largeMiB = Number(v);
    else if (k === '--small-files') a.smallFiles = Number(v);
    else if (k === '--million') a.million = Number(v);
    else if (k === '--writer-rows') a.writerRows = Number(v);
    else if (k === '--jobs') a.jobs = Number(v);
    else if (k === '--rounds') a.rounds = Number(v);
    else throw new Error(`bench update: unknown argument ${k}`);
    i += 1;
  }
  return a;
}

let canDrop: boolean | undefined;
function dropCaches(): boolean {
  if (canDrop === false) return false;
  spawnSync('sync');
  try {
    fs.writeFileSync('/proc/sys/vm/drop_caches', '3');
    canDrop = true;
  } catch {
    canDrop = false;
  }
  return canDrop;
}

/** A deterministic generator (mulberry32) so datasets are the same from run to run. */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function writeLarge(dir: string, totalMiB: number): { files: number; bytes: number } {
  fs.mkdirSync(dir, { recursive: true });
  const chunk = Buffer.alloc(1 << 20);
  const per = Math.max(1, Math.floor(totalMiB / 4));
  for (let f = 0; f < 4; f++) {
    const fd = fs.openSync(path.join(dir, `large-${f}.bin`), 'w');
    for (let i = 0; i < per; i++) {
      randomFillSync(chunk);
      fs.writeSync(fd, chunk);
    }
    fs.closeSync(fd);
  }
  return { files: 4, bytes: 4 * per * (1 << 20) };
}

/** `n` files of 1 to 16 KiB (mean 8.5 KiB), 1,000 per folder, distinct contents. */
function writeSmall(dir: string, n: number): { files: number; bytes: number } {
  const rand = rng(42);
  const buf = Buffer.alloc(16 * 1024);
  let bytes = 0;
  for (let i = 0; i < n; i++) {
    const sub = path.join(dir, `d${String(Math.floor(i / 1000)).padStart(4, '0')}`);
    if (i % 1000 === 0) fs.mkdirSync(sub, { recursive: true });
    const size = 1024 + Math.floor(rand() * 15 * 1024);
    randomFillSync(buf, 0, size);
    fs.writeFileSync(path.join(sub, `f${i}.dat`), buf.subarray(0, size));
    bytes += size;
  }
  return { files: n, bytes };
}

function writeEmpty(dir: string, n: number): void {
  for (let i = 0; i < n; i++) {
    const sub = path.join(dir, `d${String(Math.floor(i / 1000)).padStart(4, '0')}`);
    if (i % 1000 === 0) fs.mkdirSync(sub, { recursive: true });
    fs.closeSync(fs.openSync(path.join(sub, `e${i}`), 'w'));
  }
}

/** Wait until files written before now are outside update's racy window (2 s), so the no-op run is one. */
async function pastRacyWindow(): Promise<void> {
  await new Promise((r) => setTimeout(r, 2100));
}

interface UpdateDoc {
  elapsedMs: number;
  scanned: number;
  new: number;
  unchanged: number;
  bytesHashed: number;
  errors: unknown[];
}

type Timed = ExecResult & { cpuSeconds: number | undefined };

/**
 * Run a command under GNU time when it is installed, to have its CPU time (user + system, its
 * children included) next to the wall time: on a shared machine the wall time also measures
 * the neighbours.
 */
async function timed(cmd: string, args: string[], opts: Parameters<typeof execTimed>[2] = {}): Promise<Timed> {
  const gnuTime = fs.existsSync('/usr/bin/time') ? '/usr/bin/time' : undefined;
  if (gnuTime === undefined) return { ...(await execTimed(cmd, args, opts)), cpuSeconds: undefined };
  const out = path.join(os.tmpdir(), `distbackup-bench-time-${process.pid}`);
  const r = await execTimed(gnuTime, ['-o', out, '-f', '%U %S %M', cmd, ...args], opts);
  let cpuSeconds: number | undefined;
  let peakRssBytes = r.peakRssBytes;
  try {
    const [u, s, kb] = fs.readFileSync(out, 'utf8').trim().split('\n').pop()?.split(' ').map(Number) ?? [];
    if (u !== undefined && s !== undefined) cpuSeconds = u + s;
    // %M: the command's own peak RSS (the polled figure would be time's).
    if (kb !== undefined) peakRssBytes = kb * 1024;
    fs.rmSync(out, { force: true });
  } catch {}
  return { ...r, cpuSeconds, peakRssBytes };
}

async function dsb(data: string, args: string[]): Promise<Timed & { doc: UpdateDoc | undefined }> {
  const r = await timed(process.execPath, [CLI, ...args], {
    env: { ...process.env, DISTBACKUP_PATH: data, OCLIF_SKIP_NEW_VERSION_CHECK: 'true' },
    keepStdout: true,
  });
  if (r.code !== 0) throw new Error(`distbackup ${args.join(' ')} failed (exit ${r.code}): ${r.stderrTail}`);
  let doc: UpdateDoc | undefined;
  try {
    doc = JSON.parse(r.stdout) as UpdateDoc;
  } catch {}
  return { ...r, doc };
}

async function sh(cmd: string, cwd: string): Promise<Timed> {
  const r = await timed('sh', ['-c', cmd], { cwd });
  if (r.code !== 0) throw new Error(`${cmd} failed (exit ${r.code}): ${r.stderrTail}`);
  return r;
}

interface Row {
  what: string;
  seconds: number;
  cpuSeconds: number | undefined;
  bytes: number;
  files: number;
}

function render(title: string, rows: Row[], base: string): void {
  const ref = rows.find((r) => r.what === base)?.seconds ?? Number.NaN;
  console.log(`\n${title}`);
  console.log(
    `${'command'.padEnd(46)} ${'wall s'.padStart(7)} ${'cpu s'.padStart(7)} ${'MB/s'.padStart(6)} ${'files/s'.padStart(8)} ${'wall/update'.padStart(12)}`,
  );
  for (const r of rows) {
    const mbs = r.bytes > 0 ? (r.bytes / MB / r.seconds).toFixed(0) : '-';
    console.log(
      `${r.what.padEnd(46)} ${r.seconds.toFixed(2).padStart(7)} ${(r.cpuSeconds?.toFixed(2) ?? '-').padStart(7)} ${mbs.padStart(6)} ${Math.round(
        r.files / r.seconds,
      )
        .toString()
        .padStart(8)} ${(r.seconds / ref).toFixed(2).padStart(12)}`,
    );
  }
}

async function datasetRun(
  name: string,
  dir: string,
  data: string,
  size: { files: number; bytes: number },
  jobsArgs: string[],
): Promise<void> {
  await dsb(data, ['source', 'map', `/${name}`, dir]);
  await pastRacyWindow();
  const rows: Row[] = [];
  dropCaches();
  const first = await dsb(data, ['update', '--json', '--quiet', ...jobsArgs]);
  if (first.doc === undefined || first.doc.errors.length > 0 || first.doc.bytesHashed !== size.bytes) {
    throw new Error(`update of ${name}: unexpected document ${first.stdout.slice(0, 500)}`);
  }
  rows.push({ what: 'distbackup update (first run)', seconds: first.seconds, cpuSeconds: first.cpuSeconds, ...size });
  // The first run that finds every folder as catalogued compares every row and stores each
  // folder's signature; the runs after it go by the signatures (update/dir-sig.ts): the
  // re-scan a user runs day after day.
  dropCaches();
  const signing = await dsb(data, ['update', '--json', '--quiet', ...jobsArgs]);
  if (signing.doc?.bytesHashed !== 0)
    throw new Error(`no-op update of ${name} hashed ${signing.doc?.bytesHashed} bytes`);
  rows.push({
    what: 'distbackup update (no-op, signs folders)',
    seconds: signing.seconds,
    cpuSeconds: signing.cpuSeconds,
    bytes: 0,
    files: size.files,
  });
  dropCaches();
  const noop = await dsb(data, ['update', '--json', '--quiet', ...jobsArgs]);
  if (noop.doc?.bytesHashed !== 0) throw new Error(`no-op update of ${name} hashed ${noop.doc?.bytesHashed} bytes`);
  rows.push({
    what: 'distbackup update (no-op re-scan)',
    seconds: noop.seconds,
    cpuSeconds: noop.cpuSeconds,
    bytes: 0,
    files: size.files,
  });
  // The same run as timed by update itself: without starting Node and loading the CLI.
  rows.push({
    what: '  of which the update itself (elapsedMs)',
    seconds: (noop.doc?.elapsedMs ?? Number.NaN) / 1000,
    cpuSeconds: undefined,
    bytes: 0,
    files: size.files,
  });
  // What starting costs, apart from any scan: Node alone, and Node with oclif and the CLI's
  // manifest (`--version` loads no command).
  const bare = await timed(process.execPath, ['-e', '0']);
  const boot = await timed(process.execPath, [CLI, '--version'], {
    env: { ...process.env, DISTBACKUP_PATH: data, OCLIF_SKIP_NEW_VERSION_CHECK: 'true' },
  });
  rows.push({ what: '  start-up: node -e 0', seconds: bare.seconds, cpuSeconds: bare.cpuSeconds, bytes: 0, files: 0 });
  rows.push({
    what: '  start-up: distbackup --version',
    seconds: boot.seconds,
    cpuSeconds: boot.cpuSeconds,
    bytes: 0,
    files: 0,
  });
  const dry = await dsb(data, ['update', '--dry-run', '--json', '--quiet']);
  rows.push({
    what: 'distbackup update -n (no-op, read-only)',
    seconds: dry.seconds,
    cpuSeconds: dry.cpuSeconds,
    bytes: 0,
    files: size.files,
  });
  // Exactly two processes in parallel, each given half the files (xargs splits further only at ARG_MAX).
  const half = Math.ceil(size.files / 2);
  for (const tool of ['openssl dgst -sha256', 'sha256sum']) {
    dropCaches();
    const r = await sh(`find . -type f -print0 | xargs -0 -P2 -n ${half} ${tool} > /dev/null`, dir);
    rows.push({ what: `${tool} (2 processes)`, seconds: r.seconds, cpuSeconds: r.cpuSeconds, ...size });
  }
  dropCaches();
  const f = await sh(`find . -printf '%s %T@ %p\\n' > /dev/null`, dir);
  rows.push({
    what: "find -printf '%s %T@ %p'",
    seconds: f.seconds,
    cpuSeconds: f.cpuSeconds,
    bytes: 0,
    files: size.files,
  });
  render(
    `${name}: ${size.files} files, ${(size.bytes / MB).toFixed(0)} MB (peak RSS of update ${((first.peakRssBytes ?? 0) / MB).toFixed(0)} MB)`,
    rows,
    'distbackup update (first run)',
  );
  const inner = (noop.doc?.elapsedMs ?? Number.NaN) / 1000;
  const fcpu = f.cpuSeconds ?? Number.NaN;
  console.log(
    `no-op re-scan / find: wall ${(noop.seconds / f.seconds).toFixed(2)}× with Node's start, ${(inner / f.seconds).toFixed(2)}× without; cpu ${((noop.cpuSeconds ?? Number.NaN) / fcpu).toFixed(2)}×, ${(((noop.cpuSeconds ?? Number.NaN) - (boot.cpuSeconds ?? Number.NaN)) / fcpu).toFixed(2)}× without the start-up's cpu (target ≤ 3×)`,
  );
  const openssl = rows.find((r) => r.what.startsWith('openssl'))?.seconds ?? Number.NaN;
  console.log(`first update / openssl (the single run above): ${(first.seconds / openssl).toFixed(2)}× (target ≤ 1×)`);
}

/**
 * The first update against two openssl processes, `rounds` rounds in alternating order, each
 * update into a catalogue of its own: the single run of the table above comes first, right
 * after the data set was written, and pays for whatever the machine still does with those
 * writes. Cold (caches dropped before each run, where they can be) and warm (every file read
 * once, untimed); prints every run and the median ratio.
 */
async function alternatedRounds(
  dir: string,
  data: string,
  size: { files: number; bytes: number },
  jobsArgs: string[],
  rounds: number,
): Promise<void> {
  const half = Math.ceil(size.files / 2);
  const temperatures = canDrop === true ? (['cold', 'warm'] as const) : (['warm'] as const);
  for (const temp of temperatures) {
    const ratios: number[] = [];
    const ours: number[] = [];
    const theirs: number[] = [];
    for (let round = 0; round < rounds; round++) {
      const home = `${data}-${temp}-${round}`;
      await dsb(home, ['source', 'map', '/large', dir]);
      const prepare = async (): Promise<void> => {
        if (temp === 'cold') dropCaches();
        else await sh('find . -type f -print0 | xargs -0 cat > /dev/null', dir);
      };
      const runOurs = async (): Promise<number> => {
        await prepare();
        const r = await dsb(home, ['update', '--json', '--quiet', ...jobsArgs]);
        if (r.doc?.bytesHashed !== size.bytes) throw new Error(`update hashed ${r.doc?.bytesHashed} bytes`);
        return r.seconds;
      };
      const runTheirs = async (): Promise<number> => {
        await prepare();
        return (await sh(`find . -type f -print0 | xargs -0 -P2 -n ${half} openssl dgst -sha256 > /dev/null`, dir))
          .seconds;
      };
      const [d, o] = await inTurns(round, runOurs, runTheirs);
      ours.push(d);
      theirs.push(o);
      ratios.push(d / o);
      console.log(
        `  ${temp} round ${round + 1} (${round % 2 === 0 ? 'update first' : 'openssl first'}): update ${d.toFixed(2)} s, openssl ×2 ${o.toFixed(2)} s, ratio ${(d / o).toFixed(2)}, load ${os.loadavg()[0]?.toFixed(2)}`,
      );
      fs.rmSync(home, { recursive: true, force: true });
    }
    console.log(
      `first update / openssl ×2, ${temp}: ${median(ratios).toFixed(2)}× (median of ${rounds} alternated rounds; medians ${median(ours).toFixed(2)} s / ${median(theirs).toFixed(2)} s; target ≤ 1×)`,
    );
  }
}

async function hashLibraries(): Promise<void> {
  const buf = Buffer.alloc(1 << 20);
  randomFillSync(buf);
  const rounds = 256;
  let t0 = performance.now();
  const h = createHash('sha256');
  for (let i = 0; i < rounds; i++) h.update(buf);
  h.digest('hex');
  const crypto = rounds / ((performance.now() - t0) / 1000);
  const w = await createSHA256();
  t0 = performance.now();
  w.init();
  for (let i = 0; i < rounds; i++) w.update(buf);
  w.digest('hex');
  const wasm = rounds / ((performance.now() - t0) / 1000);
  console.log(
    `\nSHA-256, one thread, 256 MiB in 1 MiB updates: node:crypto ${crypto.toFixed(0)} MiB/s, hash-wasm ${wasm.toFixed(0)} MiB/s`,
  );
}

/**
 * The catalogue writer alone: `rows` new file rows (1,000 per folder, in path order, as a first
 * update writes them) through FilesWriter.upsert, committed every 10,000 rows, into a fresh
 * catalogue under `dir`. Returns wall and CPU seconds of the writing (the catalogue's creation aside).
 */
function writerRun(dir: string, rows: number, synchronous: 'NORMAL' | 'FULL'): { seconds: number; cpuSeconds: number } {
  const cat = openCatalog(dir);
  try {
    const sourceId = insertSource(cat.db, {
      vpath: '/w',
      realpath: Buffer.from('/w'),
      include: [],
      exclude: [],
      followSymlinks: false,
      minCopies: 1,
    });
    cat.db.pragma(`synchronous = ${synchronous}`);
    const w = new FilesWriter(cat.db);
    const t0 = performance.now();
    const c0 = process.cpuUsage();
    const objectId = w.object(EMPTY_SHA256, 0);
    const mtimeNs = BigInt(Date.now()) * 1_000_000n;
    let parent = Buffer.alloc(0);
    for (let i = 0; i < rows; i++) {
      if (i % 1000 === 0) parent = Buffer.from(`/w/d${String(i / 1000).padStart(4, '0')}`);
      w.upsert({
        vpath: Buffer.concat([parent, Buffer.from(`/e${i}`)]),
        parent,
        sourceId,
        kind: FileKind.file,
        sizeBytes: 0,
        mtimeNs,
        ctimeNs: mtimeNs,
        mode: 0o644,
        uid: 1000,
        gid: 1000,
        dev: 2049n,
        ino: BigInt(1_000_000 + i),
        linkTarget: null,
        objectId,
        priority: 1,
        minCopies: 1,
        maxCopies: NO_CAP,
      });
      w.maybeCommit();
    }
    w.close();
    const c = process.cpuUsage(c0);
    return { seconds: (performance.now() - t0) / 1000, cpuSeconds: (c.user + c.system) / 1e6 };
  } finally {
    cat.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

export async function main(argv: string[]): Promise<void> {
  const args = parseArgs(argv);
  if (!fs.existsSync(path.join(ROOT, 'dist', 'commands', 'update.js'))) {
    throw new Error('bench update: dist/ is not built: run `npm run build` first');
  }
  const base = fs.mkdtempSync(path.join(args.dir, 'distbackup-bench-update-'));
  const jobsArgs = args.jobs === undefined ? [] : ['--jobs', String(args.jobs)];
  try {
    const fsType = spawnSync('stat', ['-f', '-c', '%T', base], { encoding: 'utf8' }).stdout.trim();
    console.log(
      `machine: ${os.cpus()[0]?.model ?? '?'} × ${os.availableParallelism()}, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB RAM, node ${process.version}, ${fsType} at ${base}`,
    );
    console.log(`tools: ${toolVersion('openssl', ['version'])}; ${toolVersion('sha256sum')}; ${toolVersion('find')}`);
    console.log(
      `load average: ${os
        .loadavg()
        .map((l) => l.toFixed(1))
        .join(' ')}`,
    );
    if (which('openssl') === undefined || which('sha256sum') === undefined)
      throw new Error('openssl and sha256sum needed');
    await hashLibraries();

    if (args.largeMiB > 0) {
      const dir = path.join(base, 'large');
      const size = writeLarge(dir, args.largeMiB);
      await datasetRun('large', dir, path.join(base, 'data-large'), size, jobsArgs);
      if (args.rounds > 0) await alternatedRounds(dir, path.join(base, 'data-large'), size, jobsArgs, args.rounds);
      if (!args.keep) fs.rmSync(dir, { recursive: true, force: true });
    }
    if (args.smallFiles > 0) {
      const dir = path.join(base, 'small');
      const size = writeSmall(dir, args.smallFiles);
      await datasetRun('small', dir, path.join(base, 'data-small'), size, jobsArgs);
      if (!args.keep) fs.rmSync(dir, { recursive: true, force: true });
    }
    if (args.largeMiB > 0 || args.smallFiles > 0) {
      console.log(
        `caches: ${canDrop === true ? 'dropped before each command (cold reads)' : 'warm (cannot drop caches here)'}`,
      );
    }

    if (args.million > 0) {
      const dir = path.join(base, 'million');
      const data = path.join(base, 'data-million');
      const t0 = performance.now();
      writeEmpty(dir, args.million);
      console.log(
        `\n${args.million} empty files in folders of 1,000 written in ${((performance.now() - t0) / 1000).toFixed(1)} s`,
      );
      await dsb(data, ['source', 'map', '/million', dir]);
      await pastRacyWindow();
      const first = await dsb(data, ['update', '--json', '--quiet', ...jobsArgs]);
      const rows = first.doc?.scanned ?? 0;
      console.log(
        `update, first run: ${rows} rows in ${first.seconds.toFixed(1)} s wall (${first.cpuSeconds?.toFixed(1) ?? '?'} s cpu) = ${Math.round(rows / first.seconds)} rows/s (target ≥ 100,000), peak RSS ${((first.peakRssBytes ?? 0) / MB).toFixed(0)} MB (target < 250)`,
      );
      const signing = await dsb(data, ['update', '--json', '--quiet', ...jobsArgs]);
      console.log(
        `update, first no-op re-scan (compares every row, signs each folder): ${signing.seconds.toFixed(2)} s wall (${signing.cpuSeconds?.toFixed(2) ?? '?'} s cpu), of which the update itself ${((signing.doc?.elapsedMs ?? Number.NaN) / 1000).toFixed(2)} s`,
      );
      const noop = await dsb(data, ['update', '--json', '--quiet', ...jobsArgs]);
      const inner = (noop.doc?.elapsedMs ?? Number.NaN) / 1000;
      console.log(
        `update, no-op re-scan: ${noop.seconds.toFixed(2)} s wall (${noop.cpuSeconds?.toFixed(2) ?? '?'} s cpu), of which the update itself ${inner.toFixed(2)} s = ${Math.round(rows / noop.seconds)} entries/s, peak RSS ${((noop.peakRssBytes ?? 0) / MB).toFixed(0)} MB`,
      );
      const f = await sh(`find . -printf '%s %T@ %p\\n' > /dev/null`, dir);
      console.log(
        `find -printf over the same tree: ${f.seconds.toFixed(2)} s wall (${f.cpuSeconds?.toFixed(2) ?? '?'} s cpu)`,
      );
      console.log(
        `no-op re-scan / find: wall ${(noop.seconds / f.seconds).toFixed(2)}× with Node's start, ${(inner / f.seconds).toFixed(2)}× without (target ≤ 3×)`,
      );
    }
    if (args.writerRows > 0) {
      for (const synchronous of ['NORMAL', 'FULL'] as const) {
        const r = writerRun(path.join(base, `writer-${synchronous}`), args.writerRows, synchronous);
        console.log(
          `catalogue writer alone, synchronous=${synchronous}: ${args.writerRows} rows in ${r.seconds.toFixed(1)} s wall (${r.cpuSeconds.toFixed(1)} s cpu) = ${Math.round(args.writerRows / r.seconds)} rows/s wall, ${Math.round(args.writerRows / r.cpuSeconds)} rows per cpu-second (target ≥ 100,000)`,
        );
      }
    }
  } finally {
    if (!args.keep) fs.rmSync(base, { recursive: true, force: true });
    else console.log(`kept ${base}`);
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  await main(process.argv.slice(2));
}
