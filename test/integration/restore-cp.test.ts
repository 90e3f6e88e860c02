/**
 * Restore's copies outside the process (restore/file-writer.ts): objects of 1-16 MiB by libuv's
 * copyFile from the checked descriptor, of 16 MiB up to 1 GiB by `cp`. In-process,
 * real temp folders, a real `cp` (behind one of the test's own on PATH that logs or misbehaves).
 * The objects are copied descriptor to descriptor, so an object turned into a FIFO or a damaged
 * one never hangs the run nor lands in DEST; no `cp` means the buffered loop; Ctrl-C ends a copy
 * in flight at once, with nothing half-written left in DEST.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { openCatalog } from '../../src/catalog/db.js';
import { localKernelFs } from '../../src/disk/fsinfo.js';
import { objectPath } from '../../src/disk/layout.js';
import { runRestore } from '../../src/restore/restore.js';
import { fakeCp } from '../helpers/fake-cp.js';
import { addPoolDisk, catalogueSource, compareTrees, makeSourceTree, putObjects } from '../helpers/pool.js';
import { tempDir } from '../helpers/tmp.js';

const MiB = 1024 * 1024;
/**
 * The large files: copied in the kernel (1 MiB, at its threshold; odd-sized), above the 8 MiB of
 * the early write-back, and by `cp` (16 MiB, at its threshold; odd-sized).
 */
const BIG: Record<string, number> = {
  'one.bin': MiB,
  'three.bin': 3 * MiB + 5,
  'nine.bin': 9 * MiB + 1,
  'sixteen.bin': 16 * MiB,
  'seventeen.bin': 17 * MiB + 3,
};
/** Private (0600): below 16 MiB it goes to `cp` too, since copyFile's file would show others the object's 0444 meanwhile. */
const PRIVATE = 'three.bin';
/** Those copied by `cp` (all of them when the temp folder is not on a local in-kernel filesystem). */
const BY_CP = ['sixteen.bin', 'seventeen.bin', PRIVATE];

function setup(t: import('node:test').TestContext) {
  const base = tempDir(t);
  const src = path.join(base, 'src');
  const home = path.join(base, 'home');
  fs.mkdirSync(src);
  makeSourceTree(src, { files: 6 });
  fs.mkdirSync(path.join(src, 'big'));
  for (const [name, size] of Object.entries(BIG)) {
    const b = Buffer.alloc(size, name);
    for (let off = 0; off + 4 <= size; off += 4096) b.writeUInt32LE(off, off);
    fs.writeFileSync(path.join(src, 'big', name), b);
  }
  fs.chmodSync(path.join(src, 'big', PRIVATE), 0o600);
  const cat = openCatalog(home);
  const c = catalogueSource(cat, '/data', src);
  const disk = path.join(base, 'd1');
  addPoolDisk(cat, 'd1', disk);
  const hashes = putObjects(cat, c, 'd1');
  cat.close();
  // Objects are 0444, as sync writes them.
  for (const h of hashes) fs.chmodSync(objectPath(disk, h), 0o444);
  const big = (name: string): string => {
    const h = hashes.find((x) => fs.statSync(objectPath(disk, x)).size === BIG[name]);
    assert.ok(h, name);
    return h;
  };
  const dest = path.join(base, 'out');
  const restore = (signal?: AbortSignal) =>
    runRestore({ dest, vpaths: [], diskPath: disk, dataDir: home, catalogue: 'home', signal });
  return { base, src, disk, dest, big, restore };
}

function partsLeft(dir: string): string[] {
  return (fs.readdirSync(dir, { recursive: true }) as string[]).filter((n) => n.endsWith('.part'));
}

test('objects of 16 MiB and more are copied by `cp`, from 1 MiB in the kernel: the restore equals the source', async (t) => {
  const w = setup(t);
  const log = path.join(w.base, 'cp.log');
  fakeCp(t, `echo "$4 $5" >> ${log}`);
  const doc = await w.restore();
  assert.deepEqual(doc.errors, []);
  assert.equal(doc.remaining, 0);
  assert.deepEqual(compareTrees(w.src, path.join(w.dest, 'data')), []);
  const calls = fs.readFileSync(log, 'utf8').trim().split('\n');
  const expected = localKernelFs(w.disk) ? BY_CP.length : Object.keys(BIG).length;
  assert.equal(calls.length, expected, calls.join('\n'));
  for (const c of calls) assert.match(c, /^\/proc\/\d+\/fd\/\d+ \/proc\/\d+\/fd\/\d+$/);
});

test('damaged large objects (kernel copy, cp) and one turned into a FIFO: all refused, none hangs the run, the rest restored', {
  timeout: 60_000,
}, async (t) => {
  const w = setup(t);
  for (const n of ['three.bin', 'sixteen.bin']) {
    const flipped = objectPath(w.disk, w.big(n));
    fs.chmodSync(flipped, 0o644);
    const fd = fs.openSync(flipped, 'r+');
    fs.writeSync(fd, Buffer.from([0xee]), 0, 1, 2 * MiB);
    fs.closeSync(fd);
  }
  const fifo = objectPath(w.disk, w.big('seventeen.bin'));
  fs.rmSync(fifo);
  const made = spawnMkfifo(fifo);
  if (!made) return t.skip('no mkfifo here');
  const doc = await w.restore();
  const errs = doc.errors.map((e) => `${e.path}: ${e.error}`).sort();
  assert.equal(errs.length, 3, errs.join('\n'));
  assert.match(errs[0] ?? '', /^\/data\/big\/seventeen\.bin: .*not a regular file/);
  assert.match(errs[1] ?? '', /^\/data\/big\/sixteen\.bin: .*damaged/);
  assert.match(errs[2] ?? '', /^\/data\/big\/three\.bin: .*damaged/);
  assert.equal(doc.remaining, 3);
  for (const n of ['one.bin', 'nine.bin']) assert.ok(fs.existsSync(path.join(w.dest, 'data/big', n)), n);
  for (const n of ['three.bin', 'sixteen.bin', 'seventeen.bin']) {
    assert.ok(!fs.existsSync(path.join(w.dest, 'data/big', n)), n);
  }
  assert.deepEqual(partsLeft(w.dest), []);
});

test('no `cp`: the buffered loop restores the large files', async (t) => {
  const w = setup(t);
  fakeCp(t, 'exit 127');
  const doc = await w.restore();
  assert.deepEqual(doc.errors, []);
  assert.equal(doc.remaining, 0);
  assert.deepEqual(compareTrees(w.src, path.join(w.dest, 'data')), []);
});

test('Ctrl-C during a copy by `cp` ends the run at once: nothing half-written in DEST, the next run completes', {
  timeout: 60_000,
}, async (t) => {
  const w = setup(t);
  const started = path.join(w.base, 'cp-started');
  const flag = path.join(w.base, 'slow-once');
  fakeCp(t, `if [ ! -e ${flag} ]; then : > ${flag}; head -c 1000 "$4" > "$5"; : > ${started}; sleep 60; fi`);
  const ac = new AbortController();
  const poll = setInterval(() => {
    if (fs.existsSync(started)) ac.abort();
  }, 20);
  t.after(() => clearInterval(poll));
  const t0 = Date.now();
  const doc = await w.restore(ac.signal);
  const took = Date.now() - t0;
  assert.equal(doc.interrupted, true);
  assert.ok(took < 30_000, `the run took ${took} ms after its copy was stopped`);
  assert.deepEqual(partsLeft(w.dest), []);
  const again = await w.restore();
  assert.deepEqual(again.errors, []);
  assert.equal(again.remaining, 0);
  assert.deepEqual(compareTrees(w.src, path.join(w.dest, 'data')), []);
});

function spawnMkfifo(p: string): boolean {
  return spawnSync('mkfifo', [p]).status === 0;
}
