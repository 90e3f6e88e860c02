/** Disk faults during sync on real filesystems: a full disk (tmpfs), a disk that vanishes mid-run. */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { CATALOGUE_FILE, openCatalog } from '../../src/catalog/db.js';
import { DistbackupError } from '../../src/core/errors.js';
import { DiskRoot } from '../../src/disk/disk-root.js';
import { DISK_CATALOGUE_STALE } from '../../src/disk/layout.js';
import { catalogueMarkedStale, markCatalogueStale } from '../../src/disks/disk-catalogue.js';
import { addDisk } from '../../src/disks/disks.js';
import { runSync } from '../../src/sync/sync.js';
import { tempDir, writeTree } from '../helpers/tmp.js';
import { bytes, catalogue, countedOn, diskObjects, makeWorld } from './sync-helpers.js';

test('ENOSPC on a small tmpfs: stops cleanly, what is durable stays counted, the next sync with room completes', async (t) => {
  const w = makeWorld(t);
  const files: Record<string, Buffer> = {};
  for (let i = 0; i < 24; i++) files[`f${i}.bin`] = bytes(i + 7, 150_000);
  writeTree(w.src, files);
  await catalogue(w);
  const mnt = path.join(w.root, 'mnt');
  fs.mkdirSync(mnt);
  const m = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=1200k', 'tmpfs', mnt], { encoding: 'utf8' });
  if (m.status !== 0) {
    t.skip(`SKIPPED: ENOSPC on tmpfs (mount failed: ${m.stderr.trim() || `exit ${m.status}`})`);
    return;
  }
  try {
    await fullDisk(w, mnt);
  } finally {
    // A lazy unmount as a last resort, so a failed assertion never leaves a mount behind.
    if (spawnSync('umount', [mnt]).status !== 0) spawnSync('umount', ['-l', mnt]);
  }
});

async function fullDisk(w: ReturnType<typeof makeWorld>, mnt: string): Promise<void> {
  const d = path.join(mnt, 'disk');
  addDisk(w.cat, 'd', d, { sizeBytes: 100e6 });
  await assert.rejects(runSync(w.cat, { name: 'd', fsyncBatchFiles: 2 }), (err: unknown) => {
    assert.ok(err instanceof DistbackupError);
    assert.equal(err.code, 'disk-full');
    assert.equal(err.exitCode, 1);
    assert.match(err.message, /is full .*ENOSPC.*objects \(\d+ bytes\) were copied and recorded/);
    return true;
  });
  const onDisk = diskObjects(d);
  for (const [h, ok] of onDisk) assert.ok(ok, `${h} is torn`);
  const counted = countedOn(w.cat, 'd');
  assert.ok(counted.size > 0, 'what was durable is recorded');
  for (const h of counted) assert.ok(onDisk.get(h) === true, `${h} counted but not on the disk`);
  // Room again: the next sync goes on from there.
  assert.equal(spawnSync('mount', ['-o', 'remount,size=16m', mnt]).status, 0);
  const r = await runSync(w.cat, { name: 'd' });
  assert.equal(r.minCopiesAfter, 1);
  assert.equal(r.copied, 24 - counted.size);
  assert.deepEqual([...countedOn(w.cat, 'd')].sort(), [...diskObjects(d).keys()].sort());
  assert.equal(fs.readdirSync(path.join(d, 'distbackup-objects', '.tmp')).length, 0);
}

test('a disk that vanishes mid-run ends the sync with a clear error and nothing counted that is not there', async (t) => {
  const w = makeWorld(t);
  const files: Record<string, Buffer> = {};
  for (let i = 0; i < 20; i++) files[`f${i}.bin`] = bytes(i + 100, 60_000);
  writeTree(w.src, files);
  await catalogue(w);
  const d = path.join(w.root, 'disk');
  addDisk(w.cat, 'd', d, { sizeBytes: 100e6 });
  const moved = path.join(w.root, 'unplugged');
  let pulled = false;
  await assert.rejects(
    runSync(w.cat, {
      name: 'd',
      fsyncBatchFiles: 3,
      progress: () => ({
        update: (_b: number, files: number) => {
          // "Unplug" once the first batch is in: the folder is gone from its path.
          if (!pulled && files >= 3) {
            pulled = true;
            fs.renameSync(d, moved);
            fs.mkdirSync(d); // an empty mount point left behind
          }
        },
        setTotals: () => {},
        note: () => {},
        stop: () => {},
      }),
    }),
    (err: unknown) => {
      assert.ok(err instanceof DistbackupError);
      assert.match(err.message, /vanished/);
      return true;
    },
  );
  assert.deepEqual(fs.readdirSync(d), [], 'nothing was written to the empty mount point');
  const onDisk = diskObjects(moved);
  for (const h of countedOn(w.cat, 'd')) assert.ok(onDisk.get(h) === true, `${h} counted but not on the disk`);
  assert.ok(countedOn(w.cat, 'd').size >= 3);
});

/** Two files catalogued and synced to disk `d` (in `disk/` of the world's root). */
async function twoFilesSynced(
  t: import('node:test').TestContext,
): Promise<{ w: ReturnType<typeof makeWorld>; d: string }> {
  const w = makeWorld(t);
  writeTree(w.src, { 'a.bin': bytes(1, 5000), 'b.bin': bytes(2, 7000) });
  await catalogue(w);
  const d = path.join(w.root, 'disk');
  addDisk(w.cat, 'd', d, { sizeBytes: 100e6 });
  await runSync(w.cat, { name: 'd' });
  return { w, d };
}

test('a disk unplugged before it is reconciled: nothing uncounted, nothing written where it was', async (t) => {
  const { w, d } = await twoFilesSynced(t);
  // An older image of the disk: the run says so before it lists the disk, and that is when the
  // disk goes. At its path: first an empty mount point, then (another run) a folder with an
  // empty objects folder, whose listing reads as a disk that lost every object.
  const json = path.join(d, 'distbackup-disk.json');
  fs.writeFileSync(json, JSON.stringify({ ...JSON.parse(fs.readFileSync(json, 'utf8')), generation: 0 }));
  const counted = countedOn(w.cat, 'd');
  assert.equal(counted.size, 2);
  for (const left of [[], ['distbackup-objects']]) {
    const moved = path.join(w.root, `unplugged-${left.length}`);
    await assert.rejects(
      runSync(w.cat, {
        name: 'd',
        onNote: (text: string) => {
          if (/older image/.test(text) && !fs.existsSync(moved)) {
            fs.renameSync(d, moved);
            fs.mkdirSync(d);
            for (const f of left) fs.mkdirSync(path.join(d, f));
          }
        },
      }),
      (err: unknown) => {
        assert.ok(err instanceof DistbackupError, String(err));
        assert.match(err.message, /vanished/);
        return true;
      },
    );
    assert.ok(fs.existsSync(moved), 'the disk was unplugged during the run');
    assert.deepEqual(fs.readdirSync(d, { recursive: true }), left, 'nothing was written where the disk was');
    assert.deepEqual(countedOn(w.cat, 'd'), counted, 'no copy uncounted from the listing of another folder');
    // Plugged in again: the next sync takes it.
    fs.rmSync(d, { recursive: true });
    fs.renameSync(moved, d);
  }
  const again = await runSync(w.cat, { name: 'd' });
  assert.equal(again.reconcile.uncounted, 0);
});

test('Ctrl-C while the disk is listed changes nothing, and the next sync of the same catalogue runs', async (t) => {
  const { w, d: disk } = await twoFilesSynced(t);
  const before = [...countedOn(w.cat, 'd')].sort();
  assert.equal(before.length, 2);
  const ac = new AbortController();
  ac.abort();
  for (const dryRun of [false, true]) {
    await assert.rejects(
      runSync(w.cat, { name: 'd', signal: ac.signal, dryRun }),
      (err: unknown) => err instanceof DistbackupError && err.code === 'interrupted',
    );
    assert.deepEqual([...countedOn(w.cat, 'd')].sort(), before, 'an interrupted listing uncounts nothing');
  }
  const again = await runSync(w.cat, { name: 'd' });
  assert.equal(again.interrupted, false);
  assert.equal(again.copied, 0);
  assert.deepEqual([...countedOn(w.cat, 'd')].sort(), before);
  for (const [h, ok] of diskObjects(disk)) assert.ok(ok, h);
});

test('a disk full to its last block still takes the stale mark of its catalogue copy (an empty one)', (t) => {
  const root = tempDir(t);
  const mnt = path.join(root, 'mnt');
  fs.mkdirSync(mnt);
  const m = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=256k', 'tmpfs', mnt], { encoding: 'utf8' });
  if (m.status !== 0) {
    t.skip(`mount failed: ${m.stderr.trim() || `exit ${m.status}`}`);
    return;
  }
  try {
    const disk = DiskRoot.open(mnt, { create: true });
    // Every block taken.
    const fill = fs.openSync(path.join(mnt, 'fill'), 'w');
    const chunk = Buffer.alloc(4096, 1);
    try {
      for (;;) fs.writeSync(fill, chunk);
    } catch (err) {
      assert.equal((err as NodeJS.ErrnoException).code, 'ENOSPC');
    } finally {
      fs.closeSync(fill);
    }
    markCatalogueStale(disk);
    assert.equal(catalogueMarkedStale(mnt), true);
    assert.equal(fs.statSync(path.join(mnt, DISK_CATALOGUE_STALE)).size, 0);
  } finally {
    if (spawnSync('umount', [mnt]).status !== 0) spawnSync('umount', ['-l', mnt]);
  }
});

test('orphans on a disk too full for a second catalogue copy are deleted: the copy is marked stale first, then written at the end', async (t) => {
  const w = makeWorld(t);
  const files: Record<string, Buffer> = {};
  for (let i = 0; i < 6; i++) files[`f${i}.bin`] = bytes(i + 40, 150_000);
  writeTree(w.src, files);
  await catalogue(w);
  const mnt = path.join(w.root, 'mnt');
  fs.mkdirSync(mnt);
  const m = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=2m', 'tmpfs', mnt], { encoding: 'utf8' });
  if (m.status !== 0) {
    t.skip(`SKIPPED: a full tmpfs (mount failed: ${m.stderr.trim() || `exit ${m.status}`})`);
    return;
  }
  try {
    const d = path.join(mnt, 'disk');
    addDisk(w.cat, 'd', d, { sizeBytes: 100e6 });
    await runSync(w.cat, { name: 'd' });
    assert.equal(countedOn(w.cat, 'd').size, 6);
    // Three files go: their objects are orphans on the disk. Then the disk fills up, all but a
    // few blocks: no room for a second catalogue copy beside the first.
    for (let i = 0; i < 3; i++) fs.rmSync(path.join(w.src, `f${i}.bin`));
    await catalogue(w);
    const st = fs.statfsSync(mnt);
    fs.writeFileSync(path.join(mnt, 'filler'), Buffer.alloc(Math.max(0, (st.bavail - 2) * st.bsize)));
    const notes: string[] = [];
    const r = await runSync(w.cat, { name: 'd', onNote: (text: string) => notes.push(text) });
    assert.equal(r.deleted, 3);
    assert.ok(
      notes.some((n) =>
        /no room on the disk to write its catalogue copy before deleting .*marked stale instead/.test(n),
      ),
      notes.join('\n'),
    );
    assert.equal(countedOn(w.cat, 'd').size, 3);
    assert.equal(diskObjects(d).size, 3, 'the orphans are gone from the disk');
    // The deletions made room: the copy was written at the end, and the mark is gone.
    assert.ok(!fs.existsSync(path.join(d, DISK_CATALOGUE_STALE)));
  } finally {
    if (spawnSync('umount', [mnt]).status !== 0) spawnSync('umount', ['-l', mnt]);
  }
});

test('nothing is evicted for copies whose sources are gone since update (an unmounted source folder)', async (t) => {
  const w = makeWorld(t);
  const old: Record<string, Buffer> = {};
  for (let i = 0; i < 20; i++) old[`old/f${i}.bin`] = bytes(i + 300, 20_000);
  writeTree(w.src, old);
  await catalogue(w);
  const a = path.join(w.root, 'a');
  const b = path.join(w.root, 'b');
  addDisk(w.cat, 'a', a, { sizeBytes: 50e6 });
  addDisk(w.cat, 'b', b, { sizeBytes: 300_000 });
  await runSync(w.cat, { name: 'a' });
  await runSync(w.cat, { name: 'b' });
  const before = countedOn(w.cat, 'b');
  assert.ok(before.size > 5, 'b holds second copies');
  // New files, with no copy anywhere: the plan for b evicts second copies to make room. Then
  // their folder goes away before the sync.
  const added: Record<string, Buffer> = {};
  for (let i = 0; i < 8; i++) added[`new/n${i}.bin`] = bytes(i + 500, 30_000);
  writeTree(w.src, added);
  await catalogue(w);
  const plan = await runSync(w.cat, { name: 'b', dryRun: true });
  assert.ok(plan.plan.evictions > 0, 'the plan evicts for the new files');
  fs.renameSync(path.join(w.src, 'new'), path.join(w.root, 'new-elsewhere'));
  const r = await runSync(w.cat, { name: 'b' });
  assert.equal(r.copied, 0);
  assert.equal(r.skipped.length, 8);
  assert.equal(r.evicted, 0, 'no copy was evicted for files that could not be read');
  assert.deepEqual([...countedOn(w.cat, 'b')].sort(), [...before].sort());
});

test('a catalogue restored from a backup: the disk found ahead of it, and every sync after, delete nothing until each disk is synced again', async (t) => {
  const w = makeWorld(t);
  writeTree(w.src, { 'a.bin': bytes(1, 5000), 'b.bin': bytes(2, 7000), 'c.bin': bytes(3, 9000) });
  await catalogue(w);
  const da = path.join(w.root, 'a');
  const db = path.join(w.root, 'b');
  addDisk(w.cat, 'a', da, { sizeBytes: 100e6 });
  addDisk(w.cat, 'b', db, { sizeBytes: 100e6 });
  await runSync(w.cat, { name: 'a' });
  await runSync(w.cat, { name: 'b' });
  // The backup; then disk a is synced once more, and the backup is put back.
  const backup = path.join(w.root, 'backup.sqlite');
  w.cat.db.exec(`VACUUM INTO '${backup}'`);
  await runSync(w.cat, { name: 'a' });
  w.cat.close();
  for (const f of ['', '-wal', '-shm']) fs.rmSync(path.join(w.home, `${CATALOGUE_FILE}${f}`), { force: true });
  fs.copyFileSync(backup, path.join(w.home, CATALOGUE_FILE));
  const cat = openCatalog(w.home);
  t.after(() => cat.close());
  const w2 = { ...w, cat };
  // A file goes: its object is an orphan on both disks.
  fs.rmSync(path.join(w.src, 'a.bin'));
  await catalogue(w2);
  const notes: string[] = [];
  const onNote = (n: string) => notes.push(n);
  const first = await runSync(cat, { name: 'a', onNote });
  assert.equal(first.deleted, 0, 'the disk found ahead: nothing deleted');
  assert.ok(
    notes.some((n) => /ahead of the catalogue \(\d+\): the catalogue is older than this disk's last sync/.test(n)),
  );
  assert.ok(
    notes.some((n) =>
      /syncs delete nothing until every disk holding copies is synced again \(left after this one: b\)/.test(n),
    ),
  );
  assert.equal((await runSync(cat, { name: 'a' })).deleted, 0, 'b is not synced yet');
  assert.equal((await runSync(cat, { name: 'b' })).deleted, 0, 'b, the last, is reconciled first');
  // Every disk synced since: deletions again.
  assert.equal((await runSync(cat, { name: 'a' })).deleted, 1);
  assert.equal((await runSync(cat, { name: 'b' })).deleted, 1);
  assert.equal(countedOn(cat, 'a').size, 2);
});
