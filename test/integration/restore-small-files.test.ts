/**
 * Restore with the small-file lane (restore/small-files.ts) on, whatever the number of files
 * (`smallFileLaneMinFiles: 0`): real temp folders, real SQLite, the real worker thread. The tree
 * comes back equal to the source (bytes, modes, mtimes, symlinks, names that are not UTF-8) and a
 * second run adds nothing; a missing object, a file in the way and `--overwrite` behave as on the
 * main thread; on a full destination (a real tmpfs) the file that does not fit is one line with
 * its errno, no temp file stays, every file the state records is in DEST byte-exact, and a run
 * into a folder with room completes.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { type TestContext, test } from 'node:test';
import { openCatalog } from '../../src/catalog/db.js';
import { FileKind } from '../../src/catalog/schema.js';
import { objectPath } from '../../src/disk/layout.js';
import { DestTree } from '../../src/restore/dest-tree.js';
import { type RestoreOptions, runRestore } from '../../src/restore/restore.js';
import { hashFile } from '../helpers/invariants.js';
import { cannotMount, mountFuse, mountTmpfs, sweepStaleMounts } from '../helpers/mounts.js';
import { compareTrees, onePoolDisk, sourceTreeIn } from '../helpers/pool.js';
import { recorded } from '../helpers/restore-faults.js';
import { tempDir } from '../helpers/tmp.js';

/** `src` catalogued under /data with every object on disk d1 (`base/d1`), and a restore from d1 with the lane on. */
function pool(base: string, src: string) {
  const home = path.join(base, 'home');
  const d1 = path.join(base, 'd1');
  const cat = openCatalog(home);
  const hashes = onePoolDisk(cat, src, d1);
  cat.close();
  const restore = (dest: string, more: Partial<RestoreOptions> = {}) =>
    runRestore({ dest, vpaths: [], diskPath: d1, dataDir: home, catalogue: 'home', smallFileLaneMinFiles: 0, ...more });
  return { d1, hashes, restore };
}

/** A source tree of `files` photos (and `huge` bytes more in one file) catalogued under /data, every object on disk d1. */
function setup(t: TestContext, files?: number, huge = 0) {
  const base = tempDir(t);
  const src = sourceTreeIn(base, files);
  if (huge > 0) fs.writeFileSync(path.join(src, 'photos/huge.bin'), randomBytes(huge));
  return { base, src, ...pool(base, src) };
}

/** `files` (relative path → bytes) written under `src` and catalogued as `pool` does; its restore. */
function catalogueFiles(base: string, src: string, files: ReadonlyMap<string, Buffer>) {
  for (const [rel, bytes] of files) {
    fs.mkdirSync(path.join(src, path.dirname(rel)), { recursive: true });
    fs.writeFileSync(path.join(src, rel), bytes);
  }
  return pool(base, src).restore;
}

function partFiles(dir: string): string[] {
  return fs.readdirSync(dir, { recursive: true, encoding: 'utf8' }).filter((n) => n.endsWith('.part'));
}

// ssd: two threads, each given messages of its own (300 files make ten messages or more).
for (const [profile, files] of [
  ['hdd', undefined],
  ['ssd', 300],
] as const) {
  test(`the lane (${profile} profile) restores the tree equal to the source; a second run adds nothing`, async (t) => {
    const { base, src, restore } = setup(t, files);
    const dest = path.join(base, 'out');
    const doc = await restore(dest, { profile });
    assert.equal(doc.profile, profile);
    assert.deepEqual(doc.errors, []);
    assert.deepEqual(doc.refused, []);
    assert.equal(doc.remaining, 0);
    assert.equal(doc.symlinks, 3);
    assert.ok(doc.restored >= (files ?? 20), JSON.stringify(doc));
    assert.deepEqual(compareTrees(src, path.join(dest, 'data')), []);
    assert.deepEqual(partFiles(dest), []);
    const again = await restore(dest, { profile });
    assert.equal(again.restored, 0);
    assert.equal(again.remaining, 0);
    assert.deepEqual(compareTrees(src, path.join(dest, 'data')), []);
  });
}

test('the lane: a missing object is listed and stays missing, a file in the way is kept, --overwrite replaces it', async (t) => {
  const { base, src, d1, hashes, restore } = setup(t);
  const gone = hashes.find((h) => fs.statSync(objectPath(d1, h)).size > 1000) as string;
  fs.rmSync(objectPath(d1, gone));
  const dest = path.join(base, 'out');
  fs.mkdirSync(path.join(dest, 'data/docs'), { recursive: true });
  fs.writeFileSync(path.join(dest, 'data/docs/readme.txt'), 'mine, not the backup');
  const doc = await restore(dest);
  const missing = doc.errors.filter((e) => e.error.includes(gone));
  assert.ok(missing.length >= 1, JSON.stringify(doc.errors));
  for (const e of missing)
    assert.match(e.error, /^object [0-9a-f]{64} is not on this disk \(run 'distbackup disk refresh'\)$/);
  assert.equal(doc.errors.length, missing.length, JSON.stringify(doc.errors));
  assert.deepEqual(doc.existing, [
    { path: '/data/docs/readme.txt', error: 'exists; not overwritten (use --overwrite)' },
  ]);
  assert.equal(fs.readFileSync(path.join(dest, 'data/docs/readme.txt'), 'utf8'), 'mine, not the backup');
  assert.equal(doc.remaining, missing.length + 1);
  assert.deepEqual(partFiles(dest), []);
  const over = await restore(dest, { overwrite: true });
  assert.equal(fs.readFileSync(path.join(dest, 'data/docs/readme.txt'), 'utf8'), 'hello\n');
  assert.deepEqual(over.existing, []);
  assert.equal(over.remaining, missing.length);
  const diffs = compareTrees(src, path.join(dest, 'data'));
  assert.equal(diffs.length, missing.length, diffs.join('\n'));
});

for (const profile of ['hdd', 'ssd'] as const) {
  test(`the lane (${profile} profile) on a full destination: the file that does not fit is one line with its errno, no temp file, the rest is restored and recorded`, async (t) => {
    // 512 KiB: the tree (about 150 KB), its folders and the restore state fit; a file of 700 KiB
    // (still below 1 MiB, so on the lane) does not.
    const m = mountTmpfs(t, { sizeBytes: 512 * 1024 });
    if (m === null) return;
    const { base, src, restore } = setup(t, 4, 700 * 1024);
    const dest = path.join(m.dir, 'out');
    const doc = await restore(dest, { profile });
    // With two writing threads (ssd) a small file written while the other thread's huge one
    // fills the disk, before that one fails and is removed, can meet ENOSPC too: one line each.
    const huge = { path: '/data/photos/huge.bin', error: 'ENOSPC (no space left on device)' };
    if (profile === 'hdd') assert.deepEqual(doc.errors, [huge]);
    else {
      assert.ok(
        doc.errors.some((e) => e.path === huge.path),
        JSON.stringify(doc.errors),
      );
      for (const e of doc.errors) assert.equal(e.error, huge.error, JSON.stringify(e));
    }
    assert.equal(doc.remaining, doc.errors.length);
    assert.deepEqual(partFiles(dest), [], 'no temp file left');
    assert.ok(!fs.existsSync(path.join(dest, 'data/photos/huge.bin')));
    const files = recorded(dest).filter((r) => r.kind === FileKind.file);
    assert.equal(files.length, doc.restored);
    for (const r of files) {
      const inSrc = path.join(src, r.vpath.replace(/^\/data\//, ''));
      assert.equal(hashFile(path.join(dest, r.vpath)), hashFile(inSrc), `${r.vpath} recorded and byte-exact`);
    }
    const diffs = compareTrees(src, path.join(dest, 'data'));
    assert.equal(diffs.length, doc.errors.length, diffs.join('\n'));
    // With room, everything comes back.
    const roomy = path.join(base, 'roomy');
    const all = await restore(roomy, { profile });
    assert.equal(all.remaining, 0, JSON.stringify(all.errors));
    assert.deepEqual(compareTrees(src, path.join(roomy, 'data')), []);
  });
}

// Onto FAT the lane does not run (restore.ts): the main thread writes one file at a time. Small:
// fusefat loses the entries of a folder past its first cluster (about 60 long names).
for (const profile of ['hdd', 'ssd'] as const) {
  test(`restore (${profile} profile, no lane there) onto FAT: of two names FAT takes for one, one file is placed and the other kept out, never one holding the other's bytes`, {
    timeout: 180_000,
  }, async (t) => {
    sweepStaleMounts();
    const m = mountFuse(t, 'vfat', 32 << 20);
    if (m === null) return;
    const base = tempDir(t);
    const src = path.join(base, 'src');
    // Twins in one folder (f7 / F7), and folders that are one folder on FAT (Dir / dir).
    const files = new Map<string, Buffer>();
    for (let i = 0; i < 12; i++) {
      files.set(`pairs/f${i}`, randomBytes(100 + i));
      files.set(`pairs/F${i}`, randomBytes(100 + i));
      files.set(`Dir/x${i}`, randomBytes(50 + i));
      files.set(`dir/x${i}`, randomBytes(50 + i));
    }
    const restore = catalogueFiles(base, src, files);
    const dest = path.join(m.dir, 'out');
    const doc = await restore(dest, { profile });
    const keptOut = new Set([...doc.existing, ...doc.errors].map((e) => e.path.replace(/^\/data\//, '')));
    // Of each pair FAT folds together, exactly one was kept out; the file there holds the other's bytes.
    for (let i = 0; i < 12; i++) {
      for (const [a, b] of [
        [`pairs/f${i}`, `pairs/F${i}`],
        [`Dir/x${i}`, `dir/x${i}`],
      ] as const) {
        const winners = [a, b].filter((n) => !keptOut.has(n));
        assert.equal(
          winners.length,
          1,
          `${a} / ${b}: ${JSON.stringify([...keptOut].filter((n) => n === a || n === b))}`,
        );
        const won = winners[0] as string;
        const there = fs.readFileSync(path.join(dest, 'data', won));
        assert.ok(there.equals(files.get(won) as Buffer), `${won} holds its own bytes`);
      }
    }
    assert.equal(doc.restored, 24);
  });
}

test('a filesystem mounted below DEST: its folders are told apart, and the restore into both is whole', async (t) => {
  const why = cannotMount();
  if (why !== null) {
    t.skip(why);
    return;
  }
  const { base, src, restore } = setup(t);
  const dest = path.join(base, 'out');
  const below = path.join(dest, 'data', 'photos');
  fs.mkdirSync(below, { recursive: true });
  const m = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=16m', 'tmpfs', below], { encoding: 'utf8' });
  if (m.status !== 0) {
    t.skip(`mount -t tmpfs failed: ${m.stderr}`);
    return;
  }
  // Unmounted before the temp folder is removed (an after hook would run too late).
  try {
    await restoreAcross(dest, below, src, restore);
  } finally {
    spawnSync('umount', ['-l', below]);
  }
});

async function restoreAcross(
  dest: string,
  below: string,
  src: string,
  restore: (dest: string, more?: Partial<RestoreOptions>) => ReturnType<typeof runRestore>,
): Promise<void> {
  const tree = new DestTree(Buffer.from(dest));
  const data = Buffer.from('data');
  assert.equal(tree.foreign(tree.ensureDirs([data], 1)), false);
  assert.equal(tree.foreign(tree.ensureDirs([data, Buffer.from('photos')], 2)), true);
  assert.equal(tree.foreign(tree.ensureDirs([data, Buffer.from('photos'), Buffer.from('sub')], 3)), true);
  fs.rmdirSync(path.join(below, 'sub'));
  for (const profile of ['hdd', 'ssd'] as const) {
    fs.rmSync(path.join(dest, '.distbackup-restore'), { recursive: true, force: true });
    for (const e of fs.readdirSync(below)) fs.rmSync(path.join(below, e), { recursive: true, force: true });
    for (const e of fs.readdirSync(path.join(dest, 'data'))) {
      if (e !== 'photos') fs.rmSync(path.join(dest, 'data', e), { recursive: true, force: true });
    }
    const doc = await restore(dest, { profile });
    assert.deepEqual(doc.errors, [], profile);
    assert.equal(doc.remaining, 0, profile);
    assert.deepEqual(compareTrees(src, path.join(dest, 'data')), [], profile);
  }
}

// A bind mount shows one folder under two names, as a filesystem that folds case shows Dir and
// dir: before temp names came from the whole path, the clean-up of dir/x's temp name removed
// Dir/x's temp file while it waited for its check, and Dir/x was placed with dir/x's bytes.
for (const profile of ['hdd', 'ssd'] as const) {
  test(`one folder under two names (${profile} profile): every file recorded holds its own bytes`, {
    timeout: 120_000,
  }, async (t) => {
    const why = cannotMount();
    if (why !== null) {
      t.skip(why);
      return;
    }
    const base = tempDir(t);
    const src = path.join(base, 'src');
    const files = new Map<string, Buffer>([
      ['Dir/big', randomBytes(3 << 20)],
      ['dir/big', randomBytes((3 << 20) + 1)],
    ]);
    for (let i = 0; i < 40; i++) {
      files.set(`Dir/s${i}`, randomBytes(500 + i));
      files.set(`dir/s${i}`, randomBytes(600 + i));
    }
    const restore = catalogueFiles(base, src, files);
    const dest = path.join(base, 'out');
    const one = path.join(dest, 'data', 'Dir');
    const other = path.join(dest, 'data', 'dir');
    fs.mkdirSync(one, { recursive: true });
    fs.mkdirSync(other, { recursive: true });
    const m = spawnSync('mount', ['--bind', one, other], { encoding: 'utf8' });
    if (m.status !== 0) {
      t.skip(`mount --bind failed: ${m.stderr}`);
      return;
    }
    try {
      const doc = await restore(dest, { profile });
      const kept = recorded(dest)
        .filter((r) => r.kind === FileKind.file)
        .map((r) => r.vpath.replace(/^\/data\//, ''));
      // One of each pair is recorded, and the file under the shared name is that one.
      assert.equal(kept.length, 41, JSON.stringify({ kept, errors: doc.errors, existing: doc.existing }));
      for (const rel of kept) {
        const there = fs.readFileSync(path.join(one, path.basename(rel)));
        assert.ok(there.equals(files.get(rel) as Buffer), `${rel} is recorded and holds its own bytes`);
      }
    } finally {
      spawnSync('umount', ['-l', other]);
    }
  });
}
