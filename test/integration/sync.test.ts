import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { getDiskByName } from '../../src/catalog/disks.js';
import { acquireLock } from '../../src/catalog/lock.js';
import { DistbackupError, ExitCode, RefusedError } from '../../src/core/errors.js';
import { allocatedSize } from '../../src/core/units.js';
import { DISK_CATALOGUE, DISK_LOCK, DISK_MANIFEST, DISK_RESTORE_SCRIPT } from '../../src/disk/layout.js';
import { addDisk, setDisk } from '../../src/disks/disks.js';
import { mapSource } from '../../src/sources/sources.js';
import { runSync } from '../../src/sync/sync.js';
import { runUpdate } from '../../src/update/update.js';
import { writeTree } from '../helpers/tmp.js';
import { bytes, catalogue, copiesPerObject, countedOn, diskObjects, makeWorld, type World } from './sync-helpers.js';

/** 40 files of 4–120 KiB, a few duplicates; returns the total allocated size of distinct objects. */
async function fill(w: World, count = 40, seed = 1): Promise<number> {
  const files: Record<string, Buffer> = {};
  for (let i = 0; i < count; i++) {
    const size = 4096 + ((i * 7919 + seed * 31) % 29) * 4096;
    files[`d${i % 4}/f${seed}-${i}.bin`] = bytes(seed * 1000 + i, size);
  }
  files['dup/a.bin'] = bytes(seed * 1000, 4096 + ((seed * 31) % 29) * 4096);
  writeTree(w.src, files);
  await catalogue(w);
  return totalAllocated(w);
}

function totalAllocated(w: World): number {
  const rows = w.cat.db
    .prepare('SELECT size FROM objects o WHERE EXISTS (SELECT 1 FROM files f WHERE f.object_id = o.id)')
    .pluck()
    .all() as number[];
  return rows.reduce((a, s) => a + allocatedSize(s), 0);
}

function assertObjectsSound(root: string): void {
  for (const [hash, ok] of diskObjects(root)) assert.ok(ok, `${hash} on ${root} does not hash to its name`);
}

test('three disks: one holds everything, two hold ~70 %: every object ends with 2 copies; replanning moves nothing', async (t) => {
  const w = makeWorld(t);
  const total = await fill(w);
  const disks = { a: path.join(w.root, 'a'), b: path.join(w.root, 'b'), c: path.join(w.root, 'c') };
  addDisk(w.cat, 'a', disks.a, { sizeBytes: total + 64 * 1024 });
  addDisk(w.cat, 'b', disks.b, { sizeBytes: Math.floor(total * 0.7) });
  addDisk(w.cat, 'c', disks.c, { sizeBytes: Math.floor(total * 0.7) });
  const ra = await runSync(w.cat, { name: 'a' });
  assert.equal(ra.minCopiesBefore, 0);
  assert.equal(ra.minCopiesAfter, 1);
  assert.equal(ra.skipped.length, 0);
  await runSync(w.cat, { name: 'b' });
  const rc = await runSync(w.cat, { name: 'c' });
  assert.equal(rc.minCopiesAfter, 2);
  for (const [hash, n] of copiesPerObject(w.cat)) assert.ok(n >= 2, `${hash} has ${n} copies`);
  for (const name of ['a', 'b', 'c'] as const) {
    const root = disks[name];
    assertObjectsSound(root);
    // The catalogue counts exactly what is on the disk.
    assert.deepEqual([...countedOn(w.cat, name)].sort(), [...diskObjects(root).keys()].sort());
    for (const f of [DISK_CATALOGUE, DISK_MANIFEST, DISK_RESTORE_SCRIPT]) assert.ok(fs.existsSync(path.join(root, f)));
    assert.equal(fs.statSync(path.join(root, DISK_CATALOGUE)).mode & 0o777, 0o600);
    const plan = await runSync(w.cat, { name, dryRun: true });
    assert.equal(plan.copied + plan.deleted + plan.evicted, 0, `replanning ${name} moves something`);
  }
  const anObject = [...diskObjects(disks.a).keys()][0] ?? '';
  assert.equal(
    fs.statSync(path.join(disks.a, 'distbackup-objects', anObject.slice(0, 3), anObject)).mode & 0o777,
    0o444,
  );
  assert.equal(fs.readdirSync(path.join(disks.a, 'distbackup-objects', '.tmp')).length, 0);
  assert.equal(getDiskByName(w.cat.db, 'a')?.generation, 1);
});

test('a dry run changes nothing on the disk or in the catalogue', async (t) => {
  const w = makeWorld(t);
  const total = await fill(w, 10);
  const d = path.join(w.root, 'd');
  addDisk(w.cat, 'd', d, { sizeBytes: total * 2 });
  const plan = await runSync(w.cat, { name: 'd', dryRun: true });
  assert.equal(plan.copied, 11 - 1); // the duplicate shares an object
  assert.equal(plan.dryRun, true);
  assert.equal(diskObjects(d).size, 0);
  assert.equal(countedOn(w.cat, 'd').size, 0);
  assert.ok(!fs.existsSync(path.join(d, DISK_CATALOGUE)));
});

test('orphans are removed after their source files are deleted', async (t) => {
  const w = makeWorld(t);
  const total = await fill(w, 12);
  const d = path.join(w.root, 'd');
  addDisk(w.cat, 'd', d, { sizeBytes: total * 2 });
  await runSync(w.cat, { name: 'd' });
  const before = diskObjects(d).size;
  fs.rmSync(path.join(w.src, 'd1'), { recursive: true });
  await catalogue(w);
  const r = await runSync(w.cat, { name: 'd' });
  assert.equal(r.deleted, 3);
  assert.equal(diskObjects(d).size, before - 3);
  assert.deepEqual([...countedOn(w.cat, 'd')].sort(), [...diskObjects(d).keys()].sort());
  // The manifest lists only what is on the disk.
  const lines = fs.readFileSync(path.join(d, DISK_MANIFEST), 'utf8').trim().split('\n');
  assert.equal(lines.length - 1, 13 - 3);
});

test('evictions trade copies of objects with 2 copies for objects with none, never below 1', async (t) => {
  const w = makeWorld(t);
  const total = await fill(w, 20, 1);
  const a = path.join(w.root, 'a');
  const b = path.join(w.root, 'b');
  addDisk(w.cat, 'a', a, { sizeBytes: total * 4 });
  addDisk(w.cat, 'b', b, { sizeBytes: total + 8192 });
  await runSync(w.cat, { name: 'a' });
  await runSync(w.cat, { name: 'b' });
  assert.equal(countedOn(w.cat, 'b').size, diskObjects(b).size);
  // New files: they have no copy anywhere; b is full of objects that also sit on a.
  writeTree(w.src, { 'new/n1.bin': bytes(777, 40_000), 'new/n2.bin': bytes(778, 50_000) });
  await catalogue(w);
  const r = await runSync(w.cat, { name: 'b' });
  assert.ok(r.evicted > 0, 'something was evicted');
  assert.equal(r.copied, 2);
  assert.equal(r.minCopiesAfter, 1);
  for (const [hash, n] of copiesPerObject(w.cat)) assert.ok(n >= 1, `${hash} lost its last copy`);
  assertObjectsSound(b);
  assert.deepEqual([...countedOn(w.cat, 'b')].sort(), [...diskObjects(b).keys()].sort());
});

test('a disk shrunk below its content keeps every last copy', async (t) => {
  const w = makeWorld(t);
  const total = await fill(w, 10);
  const d = path.join(w.root, 'd');
  addDisk(w.cat, 'd', d, { sizeBytes: total * 2 });
  await runSync(w.cat, { name: 'd' });
  const held = diskObjects(d).size;
  setDisk(w.cat, 'd', { sizeBytes: 16 * 1024 });
  const notes: string[] = [];
  const r = await runSync(w.cat, { name: 'd', onNote: (l) => notes.push(l) });
  assert.equal(r.deleted + r.evicted, 0);
  assert.equal(diskObjects(d).size, held);
  assert.ok(notes.length > 0, 'the user is warned that the disk is over its size');
});

test('the wrong disk is refused with exit code 2', async (t) => {
  const w = makeWorld(t);
  await fill(w, 3);
  const d1 = path.join(w.root, 'd1');
  const d2 = path.join(w.root, 'd2');
  addDisk(w.cat, 'd1', d1, { sizeBytes: 1e8 });
  addDisk(w.cat, 'd2', d2, { sizeBytes: 1e8 });
  await assert.rejects(runSync(w.cat, { name: 'd1', diskPath: d2 }), (err: unknown) => {
    assert.ok(err instanceof RefusedError);
    assert.equal(err.exitCode, ExitCode.refused);
    assert.match(err.message, /wrong disk/);
    return true;
  });
  // A folder that is not a disk (an empty mount point) is refused too.
  fs.mkdirSync(path.join(w.root, 'empty'));
  await assert.rejects(runSync(w.cat, { diskPath: path.join(w.root, 'empty') }), RefusedError);
  assert.equal(diskObjects(d2).size, 0);
});

test('sync refuses while files have no hash, saying how many', async (t) => {
  const w = makeWorld(t);
  await fill(w, 3);
  addDisk(w.cat, 'd', path.join(w.root, 'd'), { sizeBytes: 1e8 });
  w.cat.db.prepare('UPDATE files SET object_id = NULL WHERE id IN (SELECT id FROM files WHERE kind = 0 LIMIT 2)').run();
  await assert.rejects(runSync(w.cat, { name: 'd' }), (err: unknown) => {
    assert.ok(err instanceof RefusedError);
    assert.match(err.message, /^2 catalogued files have no hash yet.*update/);
    return true;
  });
});

test('a source whose bytes changed since update is skipped and never stored under the old hash', async (t) => {
  const w = makeWorld(t);
  await fill(w, 5);
  const d = path.join(w.root, 'd');
  addDisk(w.cat, 'd', d, { sizeBytes: 1e8 });
  const victim = path.join(w.src, 'd1', 'f1-1.bin');
  const size = fs.statSync(victim).size;
  fs.writeFileSync(victim, bytes(4242, size)); // same size, new bytes
  const r = await runSync(w.cat, { name: 'd' });
  assert.equal(r.skipped.length, 1);
  assert.match(r.skipped[0]?.path ?? '', /f1-1\.bin$/);
  assert.match(r.skipped[0]?.error ?? '', /changed since the last update/);
  assertObjectsSound(d);
  assert.ok(r.minCopiesAfter === 0);
});

test('a file rewritten under its old size and mtime, then renamed, is read again by update and stored with its new content', async (t) => {
  const w = makeWorld(t);
  writeTree(w.src, { 'a/one.bin': bytes(1, 8192), 'a/two.bin': bytes(2, 8192) });
  // A whole-millisecond mtime, which utimes can put back exactly.
  const mtime = new Date('2021-03-04T05:06:07.123Z');
  fs.utimesSync(path.join(w.src, 'a', 'one.bin'), mtime, mtime);
  // The scan clock 10 s ahead: nothing written here is within update's racy window.
  const later = { jobs: 0, now: () => Date.now() + 10_000 };
  await runUpdate(w.cat, later);
  const before = path.join(w.src, 'a', 'one.bin');
  fs.writeFileSync(before, bytes(3, 8192));
  fs.utimesSync(before, mtime, mtime);
  fs.renameSync(before, path.join(w.src, 'a', 'renamed.bin'));
  // Same inode, size and mtime as a file hashed before, but not the same ctime: read again.
  assert.equal((await runUpdate(w.cat, later)).bytesHashed, 8192);
  const d = path.join(w.root, 'd');
  addDisk(w.cat, 'd', d, { sizeBytes: 1e8 });
  const r = await runSync(w.cat, { name: 'd' });
  assert.equal(r.skipped.length, 0);
  assert.equal(r.minCopiesAfter, 1);
  assert.equal(diskObjects(d).get(createHash('sha256').update(bytes(3, 8192)).digest('hex')), true);
  assertObjectsSound(d);
});

test('a source gone since update is skipped and not marked to be read again (update sees it gone itself)', async (t) => {
  const w = makeWorld(t);
  writeTree(w.src, { 'a/one.bin': bytes(1, 8192), 'a/two.bin': bytes(2, 8192) });
  await runUpdate(w.cat, { jobs: 0, now: () => Date.now() + 10_000 });
  fs.rmSync(path.join(w.src, 'a', 'one.bin'));
  addDisk(w.cat, 'd', path.join(w.root, 'd'), { sizeBytes: 1e8 });
  const r = await runSync(w.cat, { name: 'd' });
  assert.equal(r.skipped.length, 1);
  const ctime = w.cat.db.prepare(`SELECT ctime_ns FROM files WHERE vpath = CAST('/data/a/one.bin' AS BLOB)`).pluck();
  assert.notEqual(ctime.get(), 0);
});

test('a source folder gone since update: every copy is counted and listed as skipped', async (t) => {
  const w = makeWorld(t);
  const files: Record<string, Buffer> = {};
  for (let i = 0; i < 1005; i++) files[`gone/f${i}`] = bytes(5000 + i, 64);
  writeTree(w.src, files);
  await runUpdate(w.cat, { jobs: 0, now: () => Date.now() + 10_000 });
  fs.rmSync(path.join(w.src, 'gone'), { recursive: true });
  addDisk(w.cat, 'd', path.join(w.root, 'd'), { sizeBytes: 1e8 });
  const r = await runSync(w.cat, { name: 'd' });
  assert.equal(r.skippedCount, 1005);
  assert.equal(r.skipped.length, 1005, '--json lists every skipped path (RELIABILITY.md I6)');
  assert.equal(r.copied, 0);
});

test('an object whose first source changed is copied from another file with the same content', async (t) => {
  const w = makeWorld(t);
  await fill(w, 5); // dup/a.bin has the content of d0/f1-0.bin
  const d = path.join(w.root, 'd');
  addDisk(w.cat, 'd', d, { sizeBytes: 1e8 });
  const victim = path.join(w.src, 'd0', 'f1-0.bin');
  fs.writeFileSync(victim, bytes(4242, fs.statSync(victim).size));
  const r = await runSync(w.cat, { name: 'd' });
  assert.equal(r.skipped.length, 0);
  assert.equal(r.minCopiesAfter, 1);
  assertObjectsSound(d);
});

test('--limit, --max-copies and --no-evict shape the plan', async (t) => {
  const w = makeWorld(t);
  const total = await fill(w, 10);
  const a = path.join(w.root, 'a');
  const b = path.join(w.root, 'b');
  addDisk(w.cat, 'a', a, { sizeBytes: total * 2 });
  addDisk(w.cat, 'b', b, { sizeBytes: total * 2 });
  const limited = await runSync(w.cat, { name: 'a', limitBytes: 40_000 });
  assert.ok(limited.bytesCopied <= 40_000);
  assert.ok(limited.copied > 0);
  await runSync(w.cat, { name: 'a' });
  const capped = await runSync(w.cat, { name: 'b', maxCopies: 1, dryRun: true });
  assert.equal(capped.copied, 0);
  const noEvict = await runSync(w.cat, { name: 'b', noEvict: true, dryRun: true });
  assert.equal(noEvict.evicted, 0);
});

test('a disk written by the Python distbackup is adopted: its objects count, nothing is copied again', async (t) => {
  const w = makeWorld(t);
  const total = await fill(w, 6);
  const first = path.join(w.root, 'first');
  addDisk(w.cat, 'first', first, { sizeBytes: total * 2 });
  await runSync(w.cat, { name: 'first' });
  // Make it look like a Python-written disk: only uuid and name in its json, unknown to this catalogue.
  const py = path.join(w.root, 'py');
  fs.cpSync(path.join(first, 'distbackup-objects'), path.join(py, 'distbackup-objects'), { recursive: true });
  fs.writeFileSync(
    path.join(py, 'distbackup-disk.json'),
    JSON.stringify({ uuid: '0b8f8a4e-8d3c-4f53-9d1a-2a9e9c1f0c11', name: 'oldpy' }),
  );
  const doc = addDisk(w.cat, 'py', py, { sizeBytes: total * 2 });
  assert.equal(doc.adopted, true);
  assert.equal(doc.uuid, '0b8f8a4e-8d3c-4f53-9d1a-2a9e9c1f0c11');
  assert.equal(doc.objectsAdopted, diskObjects(first).size);
  const r = await runSync(w.cat, { name: 'py' });
  assert.equal(r.copied, 0);
  const json = JSON.parse(fs.readFileSync(path.join(py, 'distbackup-disk.json'), 'utf8')) as Record<string, unknown>;
  assert.equal(json.name, 'py');
  assert.equal(json.catalogue, w.cat.id);
});

test('reconcile: the disk wins (missing copies uncounted, unknown objects adopted, .tmp emptied)', async (t) => {
  const w = makeWorld(t);
  const total = await fill(w, 6);
  const d = path.join(w.root, 'd');
  addDisk(w.cat, 'd', d, { sizeBytes: total * 2 });
  await runSync(w.cat, { name: 'd' });
  const [gone] = [...diskObjects(d).keys()];
  assert.ok(gone !== undefined);
  fs.rmSync(path.join(d, 'distbackup-objects', gone.slice(0, 3), gone));
  fs.writeFileSync(path.join(d, 'distbackup-objects', '.tmp', 'leftover'), 'x');
  fs.writeFileSync(path.join(d, 'distbackup-objects', 'not-a-prefix'), 'x');
  const r = await runSync(w.cat, { name: 'd' });
  assert.equal(r.reconcile.uncounted, 1);
  assert.equal(r.reconcile.tmpRemoved, 1);
  assert.equal(r.reconcile.ignored, 1);
  assert.equal(r.copied, 1);
  assert.ok(diskObjects(d).get(gone));
});

test('a symlinked .tmp on a hostile disk is refused, and nothing outside the disk is deleted', async (t) => {
  const w = makeWorld(t);
  await fill(w, 3);
  const d = path.join(w.root, 'd');
  addDisk(w.cat, 'd', d, { sizeBytes: 1e8 });
  const outside = path.join(w.root, 'outside');
  fs.mkdirSync(outside);
  fs.writeFileSync(path.join(outside, 'canary'), 'keep me');
  fs.rmSync(path.join(d, 'distbackup-objects', '.tmp'), { recursive: true });
  fs.symlinkSync(outside, path.join(d, 'distbackup-objects', '.tmp'));
  await assert.rejects(runSync(w.cat, { name: 'd' }), (err: unknown) => {
    assert.ok(err instanceof DistbackupError);
    assert.match(err.message, /symlink/);
    return true;
  });
  assert.equal(fs.readFileSync(path.join(outside, 'canary'), 'utf8'), 'keep me');
});

test('hostile lock files and restore script: a linked lock is refused, a linked journal removed, a FIFO script replaced; nothing outside written', {
  timeout: 60_000,
}, async (t) => {
  const w = makeWorld(t);
  await fill(w, 3);
  const d = path.join(w.root, 'd');
  addDisk(w.cat, 'd', d, { sizeBytes: 1e8 });
  const canary = path.join(w.root, 'canary');
  fs.writeFileSync(canary, 'keep me');
  const lock = path.join(d, DISK_LOCK);
  fs.rmSync(lock, { force: true });
  fs.symlinkSync(canary, lock);
  await assert.rejects(runSync(w.cat, { name: 'd' }), (err: unknown) => {
    assert.ok(err instanceof RefusedError, String(err));
    assert.match(err.message, /\.distbackup-lock: not a regular file/);
    return true;
  });
  assert.equal(fs.readFileSync(canary, 'utf8'), 'keep me');
  assert.deepEqual(
    fs.readdirSync(w.root).filter((n) => n.startsWith('canary')),
    ['canary'],
  );
  // A link where SQLite writes the lock's journal, a FIFO where the restore script goes.
  fs.rmSync(lock);
  fs.symlinkSync(canary, `${lock}-journal`);
  const script = path.join(d, DISK_RESTORE_SCRIPT);
  fs.rmSync(script, { force: true });
  assert.equal(spawnSync('mkfifo', [script]).status, 0);
  const r = await runSync(w.cat, { name: 'd' });
  assert.equal(r.copied, 3);
  assert.equal(fs.readFileSync(canary, 'utf8'), 'keep me');
  assert.ok(fs.lstatSync(script).isFile());
  assert.match(fs.readFileSync(script, 'utf8'), /^#!\/bin\/sh/);
});

test('a disk put back from an older image is reconciled first: nothing it lost is counted, and it is brought up to date', async (t) => {
  const w = makeWorld(t);
  const total = await fill(w, 8);
  const d = path.join(w.root, 'd');
  addDisk(w.cat, 'd', d, { sizeBytes: total * 4 });
  await runSync(w.cat, { name: 'd' });
  const image = path.join(w.root, 'image');
  fs.cpSync(d, image, { recursive: true });
  writeTree(w.src, { 'later/x.bin': bytes(501, 30_000), 'later/y.bin': bytes(502, 20_000) });
  await catalogue(w);
  await runSync(w.cat, { name: 'd' });
  assert.equal(getDiskByName(w.cat.db, 'd')?.generation, 2);
  // The disk is replaced by its older image (generation 1): it lacks the two new objects.
  fs.rmSync(d, { recursive: true, force: true });
  fs.renameSync(image, d);
  const notes: string[] = [];
  const r = await runSync(w.cat, { name: 'd', onNote: (l) => notes.push(l) });
  assert.ok(notes.some((n) => /generation 1, the catalogue expected 2/.test(n)));
  assert.equal(r.reconcile.uncounted, 2);
  assert.equal(r.copied, 2);
  assert.equal(r.generation, 3);
  assert.deepEqual([...countedOn(w.cat, 'd')].sort(), [...diskObjects(d).keys()].sort());
  const json = JSON.parse(fs.readFileSync(path.join(d, 'distbackup-disk.json'), 'utf8')) as { generation: number };
  assert.equal(json.generation, 3);
});

test('a clone of a registered disk cannot be added as a new disk (it would be counted twice)', async (t) => {
  const w = makeWorld(t);
  await fill(w, 3);
  const d = path.join(w.root, 'd');
  addDisk(w.cat, 'd', d, { sizeBytes: 1e8 });
  await runSync(w.cat, { name: 'd' });
  const clone = path.join(w.root, 'clone');
  fs.cpSync(d, clone, { recursive: true });
  assert.throws(() => addDisk(w.cat, 'clone', clone), /already registered as 'd'/);
});

test('disk set --rename while another run holds the disk: refused (exit 2) before the catalogue changes', async (t) => {
  const w = makeWorld(t);
  const d = path.join(w.root, 'd');
  addDisk(w.cat, 'd', d, { sizeBytes: 1e8 });
  const held = acquireLock(path.join(d, DISK_LOCK), 'the test');
  t.after(() => held.release());
  assert.throws(
    () => setDisk(w.cat, 'd', { rename: 'e' }),
    (err: unknown) => err instanceof RefusedError && /in use by another distbackup process/.test(err.message),
  );
  assert.ok(getDiskByName(w.cat.db, 'd') !== undefined, 'still named d in the catalogue');
  assert.match(fs.readFileSync(path.join(d, 'distbackup-disk.json'), 'utf8'), /"name":"d"/);
  held.release();
  setDisk(w.cat, 'd', { rename: 'e' });
  assert.match(fs.readFileSync(path.join(d, 'distbackup-disk.json'), 'utf8'), /"name":"e"/);
});

test('files behind links that update followed (--follow-symlinks) are copied, small and large', async (t) => {
  const w = makeWorld(t);
  const outside = path.join(w.root, 'outside');
  const linked = path.join(w.root, 'linked');
  fs.mkdirSync(outside);
  fs.mkdirSync(linked);
  const small = bytes(71, 3000);
  const large = bytes(72, 9 << 20);
  fs.writeFileSync(path.join(outside, 'small.bin'), small);
  fs.writeFileSync(path.join(outside, 'large.bin'), large);
  fs.symlinkSync(path.join(outside, 'small.bin'), path.join(linked, 'small.bin'));
  fs.symlinkSync(path.join(outside, 'large.bin'), path.join(linked, 'large.bin'));
  mapSource(w.cat, '/linked', linked, { followSymlinks: true });
  await catalogue(w);
  const d = path.join(w.root, 'd');
  addDisk(w.cat, 'd', d, { sizeBytes: 1e8 });
  const r = await runSync(w.cat, { name: 'd' });
  assert.deepEqual(r.skipped, []);
  const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
  assert.equal(diskObjects(d).get(sha(small)), true);
  assert.equal(diskObjects(d).get(sha(large)), true);
  assertObjectsSound(d);
});

/**
 * Disk x (13 blocks) holds E (8 blocks), which y and z hold too; L (5 blocks) is on y and z; H
 * (5 blocks) is new, on no disk. Syncing x: evict E, copy H, copy L (L fits in what is left
 * after H). L's source comes before H's in inode order (written first).
 */
async function evictionWorld(t: import('node:test').TestContext) {
  const w = makeWorld(t);
  const K = 4096;
  const E = bytes(31, 8 * K);
  const L = bytes(32, 5 * K);
  const H = bytes(33, 5 * K);
  const [x, y, z] = ['x', 'y', 'z'].map((n) => path.join(w.root, n)) as [string, string, string];
  writeTree(w.src, { 'e.bin': E });
  await catalogue(w);
  addDisk(w.cat, 'x', x, { sizeBytes: 13 * K });
  addDisk(w.cat, 'y', y, { sizeBytes: 1e8 });
  await runSync(w.cat, { name: 'x' });
  await runSync(w.cat, { name: 'y' });
  writeTree(w.src, { 'l.bin': L });
  await catalogue(w);
  addDisk(w.cat, 'z', z, { sizeBytes: 1e8 });
  await runSync(w.cat, { name: 'y' });
  await runSync(w.cat, { name: 'z' });
  writeTree(w.src, { 'h.bin': H });
  await catalogue(w);
  const dry = await runSync(w.cat, { name: 'x', dryRun: true });
  assert.equal(dry.evicted, 1, JSON.stringify(dry));
  assert.equal(dry.copied, 2, JSON.stringify(dry));
  const hash = (b: Buffer): string => createHash('sha256').update(b).digest('hex');
  return { w, x, e: hash(E), l: hash(L), h: hash(H) };
}

test('an eviction planned to make room for one object is never spent on an object that needs a copy less (its source gone, the other copy waits)', async (t) => {
  const { w, x, e, l } = await evictionWorld(t);
  // H's source goes before the copy: the room planned for it must not go to L.
  fs.rmSync(path.join(w.src, 'h.bin'));
  const r = await runSync(w.cat, { name: 'x' });
  assert.equal(r.skipped.length, 1, JSON.stringify(r));
  assert.equal(r.evicted, 0, 'nothing evicted for an object that needs a copy less');
  assert.ok(diskObjects(x).has(e), 'E keeps its copy on x');
  assert.ok(!diskObjects(x).has(l), 'L waits');
  assert.equal(copiesPerObject(w.cat).get(e), 3);
});

test('a copy that comes before the one its room was planned for waits for it, and is made in the same run', async (t) => {
  const { w, x, e, l, h } = await evictionWorld(t);
  const r = await runSync(w.cat, { name: 'x' });
  assert.equal(r.copied, 2, JSON.stringify(r));
  assert.equal(r.evicted, 1);
  assert.deepEqual([...diskObjects(x).keys()].sort(), [h, l].sort());
  assert.equal(copiesPerObject(w.cat).get(e), 2);
  const again = await runSync(w.cat, { name: 'x', dryRun: true });
  assert.equal(again.copied + again.evicted + again.deleted, 0, 'a re-plan moves nothing');
});

test('a copy is not evicted on the strength of copies elsewhere that were not verified for 90 days', async (t) => {
  const { w, x, e } = await evictionWorld(t);
  const old = Date.now() - 100 * 86_400_000;
  const objectE = w.cat.db.prepare('SELECT id FROM objects WHERE hash = ?').pluck().get(e) as number;
  const xId = w.cat.db.prepare("SELECT id FROM disks WHERE name = 'x'").pluck().get() as number;
  const age = w.cat.db.prepare(
    'UPDATE copies SET verified_ms = ?, written_ms = ? WHERE object_id = ? AND disk_id != ?',
  );
  age.run(old, old, objectE, xId);
  const dry = await runSync(w.cat, { name: 'x', dryRun: true });
  assert.equal(dry.evicted, 0, JSON.stringify(dry));
  assert.ok(
    dry.plan.warnings.some((m) =>
      /kept although other disks hold that object: none of those copies was verified lately/.test(m),
    ),
    JSON.stringify(dry.plan.warnings),
  );
  // One of them verified since: E may go, as planned before.
  w.cat.db
    .prepare(
      "UPDATE copies SET verified_ms = ? WHERE object_id = ? AND disk_id = (SELECT id FROM disks WHERE name = 'y')",
    )
    .run(Date.now(), objectE);
  const r = await runSync(w.cat, { name: 'x' });
  assert.equal(r.evicted, 1, JSON.stringify(r));
  assert.ok(!diskObjects(x).has(e));
});
