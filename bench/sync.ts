/**
 * Benchmark of `sync` (issue targets): 1 GiB of large files and 50,000 small files copied into
 * an empty disk folder, timed in the same run as `cp -a` + `sync` and `rsync -a` + `sync` of the
 * same data (page cache dropped before each run where allowed, so every tool reads cold);
 * then `--verify readback`, `--bwlimit 20M` and a re-sync with nothing to do.
 *
 *   npx tsx bench/sync.ts [--dir DIR] [--large-mib N] [--small-files N] [--noop-objects N] [--keep]
 *   npm run bench -- sync
 *
 * `--noop-objects N` (e.g. 100000; default 0: skipped) also times a re-sync with nothing to do over
 * a disk that already holds N objects: the catalogue and the disk are made synthetically (tiny
 * objects named by their real SHA-256, rows inserted directly), then the no-op sync runs 3 times
 * and the median is printed, with the RSS of this process.
 */
import { spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { dropCaches } from '../src/bench/exec.js';
import { type Catalog, openCatalog } from '../src/catalog/db.js';
import { FileKind } from '../src/catalog/schema.js';
import { vpathJoin, vpathParent } from '../src/core/vpath.js';
import { addDisk } from '../src/disks/disks.js';
import { mapSource } from '../src/sources/sources.js';
import { runSync, type SyncOptions } from '../src/sync/sync.js';

interface Args {
  dir: string;
  largeMiB: number;
  smallFiles: number;
  keep: boolean;
  fsyncBatch: number[];
  noopObjects: number;
}

function parseArgs(argv: string[]): Args {
  const a: Args = {
    dir: os.tmpdir(),
    largeMiB: 1024,
    smallFiles: 50_000,
    keep: false,
    fsyncBatch: [],
    noopObjects: 0,
  };
  for (let i = 0; i < argv.length; i++) {
    const k = argv[i];
    const v = argv[i + 1];
    if (k === '--dir' && v !== undefined) a.dir = v;
    else if (k === '--large-mib' && v !== undefined) a.largeMiB = Number(v);
    else if (k === '--small-files' && v !== undefined) a.smallFiles = Number(v);
    else if (k === '--fsync-batch' && v !== undefined) a.fsyncBatch = v.split(',').map(Number);
    else if (k === '--noop-objects' && v !== undefined) a.noopObjects = Number(v);
    else if (k === '--keep') a.keep = true;
    else continue;
    if (k !== '--keep') i += 1;
  }
  return a;
}

function timeShell(cmd: string): number {
  dropCaches();
  const t0 = performance.now();
  const r = spawnSync('sh', ['-c', `${cmd} && sync`], { stdio: 'inherit' });
  if (r.status !== 0) throw new Error(`${cmd} failed`);
  return (performance.now() - t0) / 1000;
}

export function writeLarge(root: string, totalMiB: number): number {
  fs.mkdirSync(root, { recursive: true });
  const fileMiB = 64;
  let bytes = 0;
  const block = randomBytes(1 << 20);
  for (let i = 0; bytes < totalMiB * 1024 * 1024; i++) {
    const fd = fs.openSync(path.join(root, `large-${i}.bin`), 'w');
    for (let m = 0; m < fileMiB; m++) {
      block.writeUInt32LE(i * 1000 + m, 0); // every MiB differs: no two files alike
      fs.writeSync(fd, block);
    }
    fs.closeSync(fd);
    bytes += fileMiB * 1024 * 1024;
  }
  return bytes;
}

export function writeSmall(root: string, count: number): number {
  fs.mkdirSync(root, { recursive: true }); // `--small-files 0` still maps an (empty) source
  let bytes = 0;
  const pool = randomBytes(64 * 1024);
  for (let i = 0; i < count; i++) {
    const dir = path.join(root, `d${Math.floor(i / 1000)}`);
    if (i % 1000 === 0) fs.mkdirSync(dir, { recursive: true });
    const size = 512 + ((i * 2654435761) % (24 * 1024));
    const buf = Buffer.from(pool.subarray(i % 1024, (i % 1024) + size));
    buf.writeUInt32LE(i, 0);
    fs.writeFileSync(path.join(dir, `f${i}.dat`), buf);
    bytes += size;
  }
  return bytes;
}

/** Catalogue a source folder the way `update` does (stat + SHA-256), in 10,000-row transactions. */
export function catalogueSource(cat: Catalog, vpath: string, root: string): void {
  mapSource(cat, vpath, root);
  const db = cat.db;
  const srcId = db.prepare('SELECT id FROM sources WHERE vpath = ?').pluck().get(vpath) as number;
  const insObj = db.prepare('INSERT INTO objects (hash, size) VALUES (?, ?) ON CONFLICT(hash) DO NOTHING');
  const objId = db.prepare('SELECT id FROM objects WHERE hash = ?').pluck();
  const insFile = db.prepare(
    `INSERT INTO files (vpath, parent, source_id, kind, size, mtime_ns, ctime_ns, mode, dev, ino, object_id)
     VALUES (?, ?, ?, ${FileKind.file}, ?, ?, ?, ?, ?, ?, ?)`,
  );
  const buf = Buffer.allocUnsafe(1 << 20);
  let pending: (() => void)[] = [];
  const flush = (): void => {
    const p = pending;
    pending = [];
    db.transaction(() => {
      for (const f of p) f();
    })();
  };
  const walk = (dir: string, vdir: Buffer): void => {
    for (const name of fs.readdirSync(dir).sort()) {
      const p = path.join(dir, name);
      const st = fs.lstatSync(p, { bigint: true });
      const v = vpathJoin(vdir, name);
      if (st.isDirectory()) walk(p, v);
      else if (st.isFile()) {
        const h = createHash('sha256');
        const fd = fs.openSync(p, 'r');
        for (let n = fs.readSync(fd, buf); n > 0; n = fs.readSync(fd, buf)) h.update(buf.subarray(0, n));
        fs.closeSync(fd);
        const hash = h.digest('hex');
        pending.push(() => {
          insObj.run(hash, Number(st.size));
          insFile.run(
            v,
            vpathParent(v),
            srcId,
            st.size,
            st.mtimeNs,
            st.ctimeNs,
            Number(st.mode),
            st.dev,
            st.ino,
            objId.get(hash),
          );
        });
        if (pending.length >= 10_000) flush();
      }
    }
  };
  walk(root, Buffer.from(vpath));
  flush();
}

/**
 * A catalogue and a disk in step with it, holding `count` objects, made without copying: object i
 * is the text `object <i>` stored under its SHA-256 in the disk's layout, and one file row per
 * object references it (10,000 rows per transaction). Returns the disk's name.
 */
export function syntheticPool(root: string, count: number): { cat: Catalog; disk: string } {
  const cat = openCatalog(path.join(root, 'home-noop'));
  const src = path.join(root, 'src-noop');
  fs.mkdirSync(src, { recursive: true });
  mapSource(cat, '/noop', src);
  const disk = path.join(root, 'out', 'noop');
  addDisk(cat, 'noop', disk, { sizeBytes: 1e12 });
  const db = cat.db;
  const srcId = db.prepare('SELECT id FROM sources WHERE vpath = ?').pluck().get('/noop') as number;
  const diskId = db.prepare('SELECT id FROM disks WHERE name = ?').pluck().get('noop') as number;
  const insObj = db.prepare('INSERT INTO objects (hash, size) VALUES (?, ?)');
  const insFile = db.prepare(
    `INSERT INTO files (vpath, parent, source_id, kind, size, mtime_ns, ctime_ns, mode, dev, ino, object_id)
     VALUES (?, ?, ?, ${FileKind.file}, ?, 0, 0, ${0o100644}, 1, ?, ?)`,
  );
  const insCopy = db.prepare('INSERT INTO copies (object_id, disk_id, verified_ms) VALUES (?, ?, NULL)');
  const objects = path.join(disk, 'distbackup-objects');
  const made = new Set<string>();
  const parent = Buffer.from('/noop');
  for (let start = 0; start < count; start += 10_000) {
    db.transaction(() => {
      for (let i = start; i < Math.min(count, start + 10_000); i++) {
        const body = Buffer.from(`object ${i}\n`);
        const hash = createHash('sha256').update(body).digest('hex');
        const dir = path.join(objects, hash.slice(0, 3));
        if (!made.has(dir)) {
          fs.mkdirSync(dir, { recursive: true });
          made.add(dir);
        }
        fs.writeFileSync(path.join(dir, hash), body, { mode: 0o444 });
        const id = Number(insObj.run(hash, body.length).lastInsertRowid);
        insFile.run(Buffer.from(`/noop/f${i}`), parent, srcId, body.length, i + 1, id);
        insCopy.run(id, diskId);
      }
    })();
  }
  return { cat, disk: 'noop' };
}

interface Row {
  what: string;
  seconds: number;
  bytes: number;
  ratio?: string;
}

async function timeSync(cat: Catalog, name: string, opts: SyncOptions): Promise<{ seconds: number; copied: number }> {
  dropCaches();
  const t0 = performance.now();
  const doc = await runSync(cat, { name, ...opts });
  spawnSync('sync');
  return { seconds: (performance.now() - t0) / 1000, copied: doc.bytesCopied };
}

export async function main(argv: string[]): Promise<void> {
  const args = parseArgs(argv);
  if (spawnSync('rsync', ['--version']).status !== 0) {
    spawnSync('apt-get', ['install', '-y', '-qq', 'rsync'], { stdio: 'inherit' });
  }
  const hasRsync = spawnSync('rsync', ['--version']).status === 0;
  const root = fs.mkdtempSync(path.join(args.dir, 'distbackup-bench-sync-'));
  const cold = dropCaches();
  console.log(`bench sync in ${root} (${cold ? 'page cache dropped before each run' : 'warm cache: cannot drop it'})`);
  try {
    const largeSrc = path.join(root, 'src-large');
    const smallSrc = path.join(root, 'src-small');
    const largeBytes = writeLarge(largeSrc, args.largeMiB);
    const smallBytes = writeSmall(smallSrc, args.smallFiles);
    console.log(
      `data: ${(largeBytes / 2 ** 20).toFixed(0)} MiB in large files, ${args.smallFiles} small files (${(smallBytes / 1e6).toFixed(1)} MB)`,
    );
    const cat = openCatalog(path.join(root, 'home'));
    catalogueSource(cat, '/large', largeSrc);
    catalogueSource(cat, '/small', smallSrc);
    const rows: Row[] = [];
    const out = (n: string): string => path.join(root, 'out', n);
    fs.mkdirSync(path.join(root, 'out'));
    for (const [label, src, bytes, vp] of [
      ['large', largeSrc, largeBytes, '/large'],
      ['small', smallSrc, smallBytes, '/small'],
    ] as const) {
      if ((label === 'large' ? args.largeMiB : args.smallFiles) === 0) continue; // no such data asked for
      const cp = timeShell(`cp -a '${src}' '${out(`cp-${label}`)}'`);
      rows.push({ what: `${label}: cp -a + sync`, seconds: cp, bytes });
      let rs: number | undefined;
      if (hasRsync) {
        rs = timeShell(`rsync -a '${src}/' '${out(`rsync-${label}`)}/'`);
        rows.push({ what: `${label}: rsync -a + sync`, seconds: rs, bytes });
      }
      // Only this source's files are referenced while it is measured: hide the other one.
      const other = vp === '/large' ? '/small' : '/large';
      cat.db
        .prepare('UPDATE files SET priority = 0 WHERE vpath >= ? AND vpath < ?')
        .run(Buffer.from(`${other}/`), Buffer.from(`${other}0`));
      cat.db
        .prepare('UPDATE files SET priority = 1 WHERE vpath >= ? AND vpath < ?')
        .run(Buffer.from(`${vp}/`), Buffer.from(`${vp}0`));
      const batches = args.fsyncBatch.length > 0 ? args.fsyncBatch : [0];
      for (const fb of batches) {
        const name = `${label}-sync${fb === 0 ? '' : `-fb${fb}`}`;
        addDisk(cat, name, out(name), { sizeBytes: 1e12 });
        const r = await timeSync(cat, name, fb === 0 ? {} : { fsyncBatchFiles: fb });
        const ratio = `${(r.seconds / cp).toFixed(2)}× cp${rs === undefined ? '' : `, ${(r.seconds / rs).toFixed(2)}× rsync`}`;
        rows.push({
          what: `${label}: distbackup sync${fb === 0 ? '' : ` --fsync-batch ${fb}`}`,
          seconds: r.seconds,
          bytes: r.copied,
          ratio,
        });
      }
      const rbName = `${label}-readback`;
      addDisk(cat, rbName, out(rbName), { sizeBytes: 1e12 });
      const rb = await timeSync(cat, rbName, { verify: 'readback' });
      rows.push({
        what: `${label}: distbackup sync --verify readback`,
        seconds: rb.seconds,
        bytes: rb.copied,
        ratio: `${(rb.seconds / cp).toFixed(2)}× cp`,
      });
      if (label === 'small') {
        const t0 = performance.now();
        const again = await runSync(cat, { name: `${label}-sync` });
        const secs = (performance.now() - t0) / 1000;
        rows.push({
          what: `small: re-sync, nothing to do (${args.smallFiles} objects)`,
          seconds: secs,
          bytes: again.bytesCopied,
        });
      }
    }
    // --bwlimit 20M over 200 MB of large files (the small ones hidden: this measures the rate);
    // without large files (--large-mib 0) there is nothing to measure it on.
    if (args.largeMiB * 1024 * 1024 >= 200e6) await timeBwlimit(cat, out('bw'), rows);
    else rows.push({ what: '--bwlimit 20M: skipped (needs --large-mib 191 or more)', seconds: 0, bytes: 0 });
    cat.close();
    if (args.noopObjects > 0) {
      const pool = syntheticPool(root, args.noopObjects);
      await runSync(pool.cat, { name: pool.disk }); // first pass: reconcile and catalogue copy
      const times: number[] = [];
      for (let i = 0; i < 3; i++) {
        const t0 = performance.now();
        const again = await runSync(pool.cat, { name: pool.disk });
        times.push((performance.now() - t0) / 1000);
        if (again.copied + again.deleted !== 0) throw new Error('the no-op re-sync did something');
      }
      times.sort((a, b) => a - b);
      rows.push({
        what: `re-sync, nothing to do (${args.noopObjects} objects)`,
        seconds: times[1] ?? 0,
        bytes: 0,
        ratio: `median of 3: ${times.map((x) => x.toFixed(2)).join(', ')} s`,
      });
      pool.cat.close();
    }
    console.log('');
    console.log(`${'run'.padEnd(52)} ${'seconds'.padStart(8)} ${'MB/s'.padStart(8)}  ratio`);
    for (const r of rows) {
      console.log(
        r.seconds === 0
          ? r.what
          : `${r.what.padEnd(52)} ${r.seconds.toFixed(2).padStart(8)} ${(r.bytes / 1e6 / r.seconds).toFixed(1).padStart(8)}  ${r.ratio ?? ''}`,
      );
    }
    const rss = process.resourceUsage().maxRSS / 1024;
    console.log(`peak RSS of this process: ${rss.toFixed(0)} MB`);
  } finally {
    if (!args.keep) fs.rmSync(root, { recursive: true, force: true });
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  await main(process.argv.slice(2));
}

/** Time a sync with --bwlimit 20M of 200 MB of the large files and add its row. */
async function timeBwlimit(cat: Catalog, diskDir: string, rows: Row[]): Promise<void> {
  cat.db.prepare('UPDATE files SET priority = 0').run();
  cat.db
    .prepare('UPDATE files SET priority = 1 WHERE vpath >= ? AND vpath < ?')
    .run(Buffer.from('/large/'), Buffer.from('/large0'));
  addDisk(cat, 'bw', diskDir, { sizeBytes: 1e12 });
  // The rate is measured over the copy itself (first to last byte written), not over the
  // listing, planning and catalogue copy around it, nor over the fsync and commit of the last
  // batch (progress is reported again then, with no byte more: those reports are not counted).
  let first = 0;
  let firstBytes = 0;
  let last = 0;
  let bytesSeen = 0;
  const bw = await timeSync(cat, 'bw', {
    bwlimitBytesPerS: 20e6,
    limitBytes: 200e6,
    progress: () => ({
      update: (b: number) => {
        if (b <= bytesSeen) return;
        const now = performance.now();
        if (first === 0) {
          first = now;
          firstBytes = b;
        }
        last = now;
        bytesSeen = b;
      },
      setTotals: () => {},
      note: () => {},
      stop: () => {},
    }),
  });
  // (From the first report on: the bytes of that first report were written before it.)
  const rate = last > first ? (bytesSeen - firstBytes) / ((last - first) / 1000) : bw.copied / bw.seconds;
  rows.push({
    what: '--bwlimit 20M (200 MB)',
    seconds: bw.seconds,
    bytes: bw.copied,
    ratio: `copy phase ${(rate / 1e6).toFixed(2)} MB/s: ${((rate / 20e6 - 1) * 100).toFixed(1)} % off 20 MB/s`,
  });
}
