import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { test } from 'node:test';
import { DiskRoot } from '../../src/disk/disk-root.js';
import { type MountEntry, syncfsDurable } from '../../src/disk/fsinfo.js';
import { openFilesLimit } from '../../src/pipeline/copy-io.js';
import { tempDir } from '../helpers/tmp.js';

const H = `abc${'0'.repeat(61)}`;

test('listing reads names and sizes, ignores bad names and never enters a symlinked prefix folder', (t) => {
  const dir = tempDir(t);
  const root = path.join(dir, 'disk');
  fs.mkdirSync(root);
  const d = DiskRoot.open(root, { create: true });
  fs.mkdirSync(path.join(d.objectsDir, 'abc'));
  fs.writeFileSync(path.join(d.objectsDir, 'abc', H), 'hello');
  fs.writeFileSync(path.join(d.objectsDir, 'abc', 'README'), 'x');
  fs.writeFileSync(path.join(d.objectsDir, 'abc', `def${'0'.repeat(61)}`), 'wrong folder');
  const outside = path.join(dir, 'outside');
  fs.mkdirSync(outside);
  fs.writeFileSync(path.join(outside, `fff${'1'.repeat(61)}`), 'not ours');
  fs.symlinkSync(outside, path.join(d.objectsDir, 'fff'));
  const l = d.listObjects();
  assert.deepEqual(l.objects, [{ hash: H, sizeBytes: 5 }]);
  assert.equal(l.ignored.length, 3);
});

test('unlinkObject deletes only a regular file with a valid name; emptyTmp unlinks links, not their targets', (t) => {
  const dir = tempDir(t);
  const root = path.join(dir, 'disk');
  fs.mkdirSync(root);
  const d = DiskRoot.open(root, { create: true });
  const canary = path.join(dir, 'canary');
  fs.writeFileSync(canary, 'keep');
  fs.mkdirSync(path.join(d.objectsDir, 'abc'));
  fs.symlinkSync(canary, path.join(d.objectsDir, 'abc', H));
  assert.throws(() => d.unlinkObject(H), /not a regular file/);
  assert.throws(() => d.unlinkObject('../../canary'), /not an object name/);
  fs.symlinkSync(canary, path.join(d.tmpDir, 'x'));
  assert.equal(d.emptyTmp(), 1);
  assert.equal(fs.readFileSync(canary, 'utf8'), 'keep');
  fs.rmSync(path.join(d.objectsDir, 'abc', H));
  assert.equal(d.unlinkObject(H), false);
});

test('a symlinked distbackup-objects folder is refused', (t) => {
  const dir = tempDir(t);
  const root = path.join(dir, 'disk');
  fs.mkdirSync(root);
  fs.mkdirSync(path.join(dir, 'elsewhere'));
  fs.symlinkSync(path.join(dir, 'elsewhere'), path.join(root, 'distbackup-objects'));
  assert.throws(() => DiskRoot.open(root, { create: true }), /symlink/);
});

test('checkMounted notices a disk folder replaced by another one', (t) => {
  const dir = tempDir(t);
  const root = path.join(dir, 'disk');
  fs.mkdirSync(root);
  const d = DiskRoot.open(root, { create: true });
  d.checkMounted();
  fs.renameSync(root, path.join(dir, 'moved'));
  assert.throws(() => d.checkMounted(), /vanished/);
  fs.mkdirSync(root);
  assert.throws(() => d.checkMounted(), /vanished/);
});

test('checkMounted with a pinned identity notices another disk in the same place (same device, same root inode)', (t) => {
  const root = tempDir(t);
  const json = (uuid: string): string =>
    JSON.stringify({ format: 1, uuid, name: 'd1', created: '2026-01-02T03:04:05Z', generation: 1 });
  const mine = randomUUID();
  fs.writeFileSync(path.join(root, 'distbackup-disk.json'), json(mine));
  const d = DiskRoot.open(root, { create: true });
  d.pinIdentity(mine);
  d.checkMounted();
  // What another disk mounted there would show: the same folder, another identity.
  fs.writeFileSync(path.join(root, 'distbackup-disk.json'), json(randomUUID()));
  assert.throws(() => d.checkMounted(), /vanished \(another disk, uuid [0-9a-f-]+, is at its place now\)/);
  fs.rmSync(path.join(root, 'distbackup-disk.json'));
  assert.throws(() => d.checkMounted(), /vanished/);
});

test('syncfs batches only on in-kernel filesystems: ext4 and tmpfs yes, FUSE no, unknown no', (t) => {
  const dir = fs.realpathSync(tempDir(t));
  const mount = (fsType: string): MountEntry[] => [
    { majorMinor: '0:1', root: '/', mountPoint: '/', fsType: 'ext4', source: '/dev/vda' },
    { majorMinor: '0:2', root: '/', mountPoint: dir, fsType, source: 'x' },
  ];
  const kernelOk = /^(\d+)\.(\d+)/.exec(os.release());
  const recent =
    kernelOk !== null && (Number(kernelOk[1]) > 5 || (Number(kernelOk[1]) === 5 && Number(kernelOk[2]) >= 8));
  assert.equal(syncfsDurable(dir, mount('ext4')), recent);
  assert.equal(syncfsDurable(dir, mount('tmpfs')), recent);
  for (const fuse of ['fuseblk', 'fuse.exfat', 'fuse.fusefat', 'nfs4', 'cifs']) {
    assert.equal(syncfsDurable(dir, mount(fuse)), false, fuse);
  }
  assert.equal(syncfsDurable(dir, []), false, 'no mountinfo: per-file fsync');
  const saved = process.env.DISTBACKUP_FSYNC;
  process.env.DISTBACKUP_FSYNC = 'file';
  try {
    assert.equal(syncfsDurable(dir, mount('ext4')), false, 'DISTBACKUP_FSYNC=file');
  } finally {
    if (saved === undefined) delete process.env.DISTBACKUP_FSYNC;
    else process.env.DISTBACKUP_FSYNC = saved;
  }
});

test('the open-files limit is read from a limits file; unknown or unlimited is undefined', (t) => {
  const dir = tempDir(t);
  const f = path.join(dir, 'limits');
  fs.writeFileSync(
    f,
    'Limit                     Soft Limit           Hard Limit           Units     \nMax open files            64                   4096                 files     \n',
  );
  assert.equal(openFilesLimit(f), 64);
  fs.writeFileSync(f, 'Max open files            unlimited            unlimited            files\n');
  assert.equal(openFilesLimit(f), undefined);
  assert.equal(openFilesLimit(path.join(dir, 'missing')), undefined);
  const own = openFilesLimit();
  if (fs.existsSync('/proc/self/limits')) assert.ok(own !== undefined && own > 0);
});
