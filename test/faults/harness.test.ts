/**
 * The harness checks itself: a checker that never fails proves nothing. Each invariant is shown
 * to catch a planted violation, and each fault tool is shown to produce the errno the other
 * tests rely on (ENOSPC, inode exhaustion, EROFS, a targeted EIO, FUSE name limits).
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import Database from 'better-sqlite3';
import { countFault, rngFor } from '../helpers/faults.js';
import { seededBytes, writeSourceTree } from '../helpers/faults-fixture.js';
import { checkClean, checkInvariants, plantCanaries, scanDisk } from '../helpers/invariants.js';
import {
  faultDir,
  mountBtrfsWithBadFile,
  mountExt4,
  mountFuse,
  mountTmpfs,
  remount,
  sweepStaleMounts,
} from '../helpers/mounts.js';

sweepStaleMounts();

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

function putObject(disk: string, content: Buffer, name = sha(content), prefix = name.slice(0, 3)): string {
  const dir = path.join(disk, 'distbackup-objects', prefix);
  fs.mkdirSync(dir, { recursive: true });
  const p = path.join(dir, name);
  fs.writeFileSync(p, content);
  return p;
}

test('the invariant checker catches every planted violation', { timeout: 30_000 }, (t) => {
  const root = faultDir(t, 'inv');
  const disk = path.join(root, 'd1');
  const dataDir = path.join(root, 'home');
  fs.mkdirSync(dataDir);
  const good = seededBytes('good', 10_000);
  const lost = seededBytes('lost', 5_000);
  putObject(disk, good);
  // A home catalogue with the product's tables, counting `good` and `lost` on d1.
  const db = new Database(path.join(dataDir, 'distbackup.sqlite'));
  db.pragma('journal_mode = WAL');
  db.exec(`CREATE TABLE objects (id INTEGER PRIMARY KEY, hash TEXT, size INTEGER);
    CREATE TABLE files (id INTEGER PRIMARY KEY, vpath BLOB, kind INTEGER, object_id INTEGER);
    CREATE TABLE disks (id INTEGER PRIMARY KEY, name TEXT);
    CREATE TABLE copies (object_id INTEGER, disk_id INTEGER);`);
  db.prepare('INSERT INTO objects VALUES (1, ?, ?), (2, ?, ?)').run(sha(good), good.length, sha(lost), lost.length);
  db.exec(`INSERT INTO files VALUES (1, X'2f61', 0, 1), (2, X'2f62', 0, 2);
    INSERT INTO disks VALUES (1, 'd1'); INSERT INTO copies VALUES (1, 1), (2, 1);`);
  db.close();
  const world = { dataDir, disks: [{ name: 'd1', path: disk }] };
  const clean = checkInvariants(world);
  assert.deepEqual(
    clean.violations.map((v) => v.slice(0, 2)),
    ['I2'],
    clean.violations.join('\n'),
  );
  // I3: `lost` was on the disk before, gone after.
  const lostPath = putObject(disk, lost);
  const before = checkInvariants(world).truth;
  fs.rmSync(lostPath);
  const after = checkInvariants(world, { before });
  assert.ok(
    after.violations.some((v) => v.startsWith('I3')),
    after.violations.join('\n'),
  );
  // I1: torn object, wrong folder, symlink.
  putObject(disk, lost.subarray(0, 100), sha(lost));
  putObject(disk, seededBytes('x', 100), sha(seededBytes('x', 100)), 'fff');
  fs.symlinkSync('/etc', path.join(disk, 'distbackup-objects', 'abc'));
  const i1 = checkInvariants(world).violations.filter((v) => v.startsWith('I1'));
  assert.equal(i1.length, 3, i1.join('\n'));
  // I4: a WAL catalogue copy on the disk.
  const copy = new Database(path.join(disk, 'distbackup.sqlite'));
  copy.pragma('journal_mode = WAL');
  copy.exec('CREATE TABLE t (x)');
  copy.close();
  assert.ok(checkInvariants(world).violations.some((v) => v.includes('WAL mode')));
  // I5: leftovers in .tmp/.
  fs.mkdirSync(path.join(disk, 'distbackup-objects', '.tmp'));
  fs.writeFileSync(path.join(disk, 'distbackup-objects', '.tmp', 'partial'), 'x');
  assert.equal(
    checkClean({ disks: [scanDisk(world.disks[0] ?? { name: '', path: '' })], home: null, trueCopies: new Map() })
      .length,
    1,
  );
  // I6: canaries.
  const canaries = plantCanaries([path.join(root, 'beside')]);
  assert.deepEqual(canaries.check(), []);
  fs.writeFileSync(path.join(root, 'beside', 'intruder'), 'x');
  assert.equal(canaries.check().length, 1);
});

test('the source tree is seeded: same seed, same bytes', { timeout: 30_000 }, (t) => {
  const root = faultDir(t, 'tree');
  const a = writeSourceTree(path.join(root, 'a'), rngFor('tree'), { scale: 0.2 });
  const b = writeSourceTree(path.join(root, 'b'), rngFor('tree'), { scale: 0.2 });
  assert.deepEqual([...a.keys()], [...b.keys()]);
  for (const [k, v] of a) assert.ok(v.equals(b.get(k) ?? Buffer.alloc(1)), k);
  assert.ok(a.size > 50);
});

test('fault tools work here: tmpfs ENOSPC and inode exhaustion', { timeout: 30_000 }, (t) => {
  const m = mountTmpfs(t, { sizeBytes: 1 << 20, inodes: 20 });
  if (m === null) return;
  assert.throws(() => fs.writeFileSync(path.join(m.dir, 'big'), Buffer.alloc(2 << 20)), { code: 'ENOSPC' });
  fs.rmSync(path.join(m.dir, 'big'), { force: true });
  assert.throws(
    () => {
      for (let i = 0; i < 40; i++) fs.writeFileSync(path.join(m.dir, `f${i}`), '');
    },
    { code: 'ENOSPC' },
  );
  countFault('harness: tmpfs ENOSPC', 'tmpfs size= / nr_inodes=', 2);
});

test('fault tools work here: ext4 loop remount,ro gives EROFS', { timeout: 30_000 }, (t) => {
  const m = mountExt4(t, { sizeBytes: 16 << 20 });
  if (m === null) return;
  fs.writeFileSync(path.join(m.dir, 'f'), 'x');
  remount(m, 'ro');
  assert.throws(() => fs.writeFileSync(path.join(m.dir, 'g'), 'x'), { code: 'EROFS' });
  assert.equal(fs.readFileSync(path.join(m.dir, 'f'), 'utf8'), 'x');
  remount(m, 'rw');
  m.cleanup();
  assert.ok(!fs.readFileSync('/proc/self/mounts', 'utf8').includes(m.dir), 'unmounted by cleanup');
});

test('fault tools work here: a btrfs image with one flipped byte gives EIO on that file only', {
  timeout: 30_000,
}, (t) => {
  const files = { 'good.bin': seededBytes('g', 100_000), 'bad.bin': seededBytes('b', 100_000) };
  const m = mountBtrfsWithBadFile(t, files, 'bad.bin');
  if (m === null) return;
  assert.ok(fs.readFileSync(path.join(m.dir, 'good.bin')).equals(files['good.bin']));
  assert.throws(() => fs.readFileSync(path.join(m.dir, 'bad.bin')), { code: 'EIO' });
});

for (const kind of ['exfat', 'vfat', 'ntfs'] as const) {
  test(`fault tools work here: FUSE ${kind} mounts, writes and unmounts`, { timeout: 30_000 }, (t) => {
    const m = mountFuse(t, kind, 32 << 20);
    if (m === null) return;
    fs.writeFileSync(path.join(m.dir, 'abc.txt'), 'x');
    if (kind !== 'ntfs') {
      // Case-insensitive: a second name differing only in case collides.
      assert.throws(() => fs.writeFileSync(path.join(m.dir, 'ABC.txt'), 'y', { flag: 'wx' }), { code: 'EEXIST' });
    }
    m.cleanup();
    assert.ok(!fs.readFileSync('/proc/self/mounts', 'utf8').includes(m.dir));
  });
}
