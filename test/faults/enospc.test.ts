/**
 * Fault 2: ENOSPC (RELIABILITY.md test 4, failure mode 10). The disk's filesystem fills before
 * the size the disk was registered with: a size-limited tmpfs, an ext4 loop image with a reserve
 * file beside the disk folder, an inode-exhausted tmpfs, and a disk where the objects fit but
 * the new catalogue copy does not. The sync must stop with exit 1 and one line naming ENOSPC;
 * no partial object is counted (I1, I2); the disk's catalogue copy is the old one or the new
 * one, never torn (I4); after space is freed the next sync completes (I5).
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { type TestContext, test } from 'node:test';
import { countFault, countViolations, expectExit, rngFor, sh } from '../helpers/faults.js';
import { type Fixture, makeFixture, seededBytes } from '../helpers/faults-fixture.js';
import { skipUnlessCommands } from '../helpers/faults-kill.js';
import {
  checkClean,
  checkHonestExit,
  checkInvariants,
  type DiskRef,
  groundTruth,
  plantCanaries,
} from '../helpers/invariants.js';
import { type Mounted, mountExt4, mountTmpfs, sweepStaleMounts } from '../helpers/mounts.js';

sweepStaleMounts();

const FAULT = 'ENOSPC';

/** Register a disk folder on `m` with a declared size larger than the filesystem. */
function addDisk(fx: Fixture, name: string, m: Mounted): DiskRef {
  const d = { name, path: path.join(m.dir, 'backup') };
  fs.mkdirSync(d.path);
  expectExit(fx.run(['disk', 'add', name, d.path, '--size', String(fx.allocatedBytes * 2)]), 0, `disk add ${name}`);
  fx.disks.push(d);
  return d;
}

/** Sync `name` into a full filesystem, check I1–I4 and I6, free space with `free`, re-sync, check I5. */
function fillThenFree(fx: Fixture, d: DiskRef, m: Mounted, label: string, free: () => void): string[] {
  const canaries = plantCanaries([m.dir, fx.outside], [d.path]);
  const before = groundTruth(fx);
  const r = fx.run(['sync', d.name, '--quiet', '--fsync-batch', '4']);
  countFault(FAULT, 'tmpfs size= / nr_inodes=, ext4 loop with a reserve file, catalogue copy that does not fit');
  const v: string[] = [];
  v.push(...checkHonestExit(r, [1], [/ENOSPC/, d.path]));
  v.push(...checkInvariants(fx, { before }).violations);
  free();
  const again = fx.run(['sync', d.name, '--quiet']);
  if (again.code !== 0) v.push(`re-sync after freeing space exited ${again.code}: ${again.stderr.slice(0, 300)}`);
  const after = checkInvariants(fx, { before, disksWithCatalogue: [d.name] });
  v.push(...after.violations, ...checkClean(after.truth));
  const held = after.truth.disks.find((x) => x.name === d.name)?.objects.size ?? 0;
  const referenced = after.truth.home?.referenced.size ?? 0;
  if (held < referenced) v.push(`after freeing space ${d.name} holds ${held} of ${referenced} objects`);
  v.push(...canaries.check().filter((x) => !x.includes('reserve')));
  return v.map((x) => `${label}: ${x}`);
}

function setup(t: TestContext, name: string): Fixture | null {
  if (skipUnlessCommands(t, ['update', 'sync'])) return null;
  // Only the disk each test mounts is registered (d1–d3 would be three CLI runs for nothing).
  const fx = makeFixture(t, { rng: rngFor(name), scale: 0.2, only: [] });
  if (fx === null) return null;
  fx.update();
  return fx;
}

test('ENOSPC on a tmpfs smaller than the declared disk size: stops cleanly, resumes after it grows', {
  timeout: 90_000,
}, (t) => {
  const fx = setup(t, 'enospc-tmpfs');
  if (fx === null) return;
  const m = mountTmpfs(t, { sizeBytes: Math.floor(fx.allocatedBytes / 3) });
  if (m === null) return;
  const d = addDisk(fx, 'small', m);
  const v = fillThenFree(fx, d, m, 'tmpfs', () => sh(`mount -o remount,size=${fx.allocatedBytes * 3} ${m.dir}`));
  countViolations(FAULT, v);
  assert.deepEqual(v, []);
});

function ext4WithReserve(t: TestContext, name: string, imageBytes: (fx: Fixture) => number): void {
  const fx = setup(t, name);
  if (fx === null) return;
  const m = mountExt4(t, { sizeBytes: imageBytes(fx) });
  if (m === null) return;
  const st = fs.statfsSync(m.dir);
  const freeBytes = st.bavail * st.bsize;
  // Leave room for about half of the objects.
  const reserve = path.join(m.dir, 'reserve');
  fs.writeFileSync(reserve, Buffer.alloc(Math.max(0, freeBytes - Math.floor(fx.allocatedBytes / 2))));
  const d = addDisk(fx, 'small', m);
  const v = fillThenFree(fx, d, m, 'ext4', () => fs.rmSync(reserve));
  countViolations(FAULT, v);
  assert.deepEqual(v, []);
}

test('ENOSPC on an ext4 loop image with a reserve file beside the disk folder', { timeout: 90_000 }, (t) => {
  // 16 MiB more than the data: room for the 4096 prefix folders sync makes (4 KiB each on ext4).
  ext4WithReserve(t, 'enospc-ext4', (fx) => Math.ceil(fx.allocatedBytes * 1.6) + (20 << 20));
});

test('ENOSPC on an 8 MiB ext4 disk: the data fits once the reserve is freed', {
  timeout: 90_000,
}, (t) => {
  ext4WithReserve(t, 'enospc-ext4-8m', () => 8 << 20);
});

test('inode exhaustion on a tmpfs (nr_inodes): stops cleanly, resumes with more inodes', { timeout: 90_000 }, (t) => {
  const fx = setup(t, 'enospc-inodes');
  if (fx === null) return;
  const m = mountTmpfs(t, { sizeBytes: fx.allocatedBytes * 3, inodes: 30 });
  if (m === null) return;
  const d = addDisk(fx, 'small', m);
  const v = fillThenFree(fx, d, m, 'inodes', () => sh(`mount -o remount,nr_inodes=100000 ${m.dir}`));
  countViolations(FAULT, v);
  assert.deepEqual(v, []);
});

test('the objects fit but the new catalogue copy does not: the old copy stays whole', { timeout: 90_000 }, (t) => {
  const fx = setup(t, 'enospc-catalogue');
  if (fx === null) return;
  const m = mountTmpfs(t, { sizeBytes: fx.allocatedBytes * 3 });
  if (m === null) return;
  const d = addDisk(fx, 'small', m);
  fx.sync('small');
  const oldCopy = fs.readFileSync(path.join(d.path, 'distbackup.sqlite'));
  // One new small file; then shrink the tmpfs to what is used plus room for its object only.
  fs.writeFileSync(path.join(fx.src, 'late.bin'), seededBytes('late', 3000));
  fx.update();
  const st = fs.statfsSync(m.dir);
  const used = (st.blocks - st.bfree) * st.bsize;
  sh(`mount -o remount,size=${used + 3 * 4096} ${m.dir}`);
  const v = fillThenFree(fx, d, m, 'catalogue copy', () =>
    sh(`mount -o remount,size=${fx.allocatedBytes * 3} ${m.dir}`),
  );
  // Between the two runs the copy on the disk was the old one or a new one: checked by I4 in
  // fillThenFree. The old bytes are no longer needed after the successful re-run.
  assert.ok(oldCopy.length > 0);
  countViolations(FAULT, v);
  assert.deepEqual(v, []);
});

test('a disk filled to its last block by the leftovers of an interrupted sync can still be locked: the next sync empties them and completes', {
  timeout: 90_000,
}, (t) => {
  const fx = setup(t, 'enospc-full-lock');
  if (fx === null) return;
  const m = mountTmpfs(t, { sizeBytes: fx.allocatedBytes * 3 });
  if (m === null) return;
  const d = addDisk(fx, 'full', m);
  expectExit(fx.run(['sync', d.name, '--quiet']), 0, 'first sync');
  const before = groundTruth(fx);
  // A temp object as an interrupted sync leaves it, grown until the filesystem has no block left.
  const litter = path.join(d.path, 'distbackup-objects', '.tmp', 'interrupted');
  fs.mkdirSync(path.dirname(litter), { recursive: true });
  const fd = fs.openSync(litter, 'w');
  const chunk = Buffer.alloc(64 * 1024, 1);
  try {
    for (;;) fs.writeSync(fd, chunk);
  } catch (err) {
    assert.equal((err as NodeJS.ErrnoException).code, 'ENOSPC');
  }
  for (;;) {
    try {
      fs.writeSync(fd, chunk.subarray(0, 512));
    } catch {
      break;
    }
  }
  fs.closeSync(fd);
  countFault(FAULT, 'a disk with no block left before the sync takes its lock');
  const r = fx.run(['sync', d.name, '--quiet']);
  const v: string[] = [];
  if (r.code !== 0) v.push(`sync of a full disk exited ${r.code}: ${r.stderr.slice(0, 300)}`);
  if (fs.existsSync(litter)) v.push('the leftover temp object is still there');
  const after = checkInvariants(fx, { before, disksWithCatalogue: [d.name] });
  v.push(...after.violations, ...checkClean(after.truth));
  // The empty lock file an older build left, on a disk as full: the one write the lock needs
  // fails with a message that says what to do, and the sync after room is made completes.
  fs.truncateSync(path.join(d.path, '.distbackup-lock'), 0);
  const fill = path.join(m.dir, 'fill');
  try {
    fs.writeFileSync(fill, Buffer.alloc(fx.allocatedBytes * 4));
  } catch (err) {
    assert.equal((err as NodeJS.ErrnoException).code, 'ENOSPC');
  }
  const full = fx.run(['sync', d.name, '--quiet']);
  if (full.code !== 1 || !/the filesystem is full.*free some room/.test(full.stderr))
    v.push(`sync with an empty lock file on a full disk: exit ${full.code}: ${full.stderr.slice(0, 300)}`);
  fs.rmSync(fill);
  const freed = fx.run(['sync', d.name, '--quiet']);
  if (freed.code !== 0) v.push(`sync after room was made: exit ${freed.code}: ${freed.stderr.slice(0, 300)}`);
  countViolations(FAULT, v);
  assert.deepEqual(v, []);
});
