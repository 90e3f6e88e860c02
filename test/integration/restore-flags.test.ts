/**
 * restore's flags and edges on real folders, a real catalogue and real disks: --filter,
 * --existing, --link, dry runs, paths longer than PATH_MAX, big files (kernel copy and chunked
 * copy, both checked against the hash), and an abort that keeps what was durable.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { type TestContext, test } from 'node:test';
import { openCatalog } from '../../src/catalog/db.js';
import { FileKind } from '../../src/catalog/schema.js';
import { objectPath } from '../../src/disk/layout.js';
import { openDeep } from '../../src/pipeline/deep-path.js';
import { type DryRunEntry, runRestore } from '../../src/restore/restore.js';
import { addPoolDisk, catalogueSource, compareTrees, makeSourceTree, putObjects } from '../helpers/pool.js';
import { tempDir } from '../helpers/tmp.js';

const B = (s: string): Buffer => Buffer.from(s);
const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

/** One disk holding every object of a varied tree (plus `extra` files written into the source first). */
function oneDisk(t: TestContext, extra: Record<string, Buffer> = {}) {
  const base = tempDir(t);
  const src = path.join(base, 'src');
  const home = path.join(base, 'home');
  fs.mkdirSync(src);
  makeSourceTree(src);
  for (const [rel, content] of Object.entries(extra)) {
    fs.mkdirSync(path.dirname(path.join(src, rel)), { recursive: true });
    fs.writeFileSync(path.join(src, rel), content);
  }
  const cat = openCatalog(home);
  const c = catalogueSource(cat, '/data', src);
  const disk = path.join(base, 'd1');
  addPoolDisk(cat, 'd1', disk);
  putObjects(cat, c, 'd1');
  return { base, src, home, cat, disk };
}

/** Relative paths of every entry under `dir` (files, links, folders; names as latin1), sorted. */
function listTree(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: Buffer, rel: string): void => {
    for (const e of fs.readdirSync(d, { withFileTypes: true, encoding: 'buffer' })) {
      const name = e.name.toString('latin1');
      if (rel === '' && name === '.distbackup-restore') continue;
      const r = rel === '' ? name : `${rel}/${name}`;
      out.push(r);
      if (e.isDirectory()) walk(Buffer.concat([d, B('/'), e.name]), r);
    }
  };
  if (fs.existsSync(dir)) walk(B(dir), '');
  return out.sort();
}

test('--filter restores only matching paths and subtrees, and counts only them as missing', async (t) => {
  const { base, home, cat, disk } = oneDisk(t);
  cat.close();
  const dest = path.join(base, 'out');
  const doc = await runRestore({
    dest,
    vpaths: [],
    diskPath: disk,
    dataDir: home,
    catalogue: 'home',
    filters: ['/data/docs/deep', 'img-00[12].jpg'],
  });
  assert.equal(doc.remaining, 0, JSON.stringify(doc));
  assert.deepEqual(listTree(path.join(dest, 'data')), [
    'docs',
    'docs/deep',
    'docs/deep/er',
    'docs/deep/er/script.sh',
    'photos',
    'photos/img-001.jpg',
    'photos/img-002.jpg',
  ]);
  assert.equal(doc.restored, 3);
  // Without the filter, the rest is still to do: the state did not count filtered-out files.
  const all = await runRestore({ dest, vpaths: [], diskPath: disk, dataDir: home, catalogue: 'home' });
  assert.equal(all.remaining, 0);
  assert.equal(all.restored > 10, true, `${all.restored} files restored by the second run`);
});

test('--existing skips files an existing folder holds with the same content, restores the others', async (t) => {
  const { base, src, home, cat, disk } = oneDisk(t);
  cat.close();
  // An older copy of the tree: one file identical (same size and mtime), one with the same size
  // and mtime but other bytes, one missing.
  const old = path.join(base, 'old');
  fs.cpSync(path.join(src, 'photos'), path.join(old, 'data', 'photos'), { recursive: true, preserveTimestamps: true });
  const same = path.join(old, 'data', 'photos', 'img-000.jpg');
  const changed = path.join(old, 'data', 'photos', 'img-001.jpg');
  const st = fs.statSync(changed);
  const bytes = fs.readFileSync(changed);
  bytes[10] = (bytes[10] ?? 0) ^ 1;
  fs.writeFileSync(changed, bytes);
  fs.utimesSync(changed, st.atime, st.mtime);
  fs.rmSync(path.join(old, 'data', 'photos', 'img-002.jpg'));
  const dest = path.join(base, 'out');
  const withExisting = () =>
    runRestore({ dest, vpaths: ['/data/photos'], diskPath: disk, dataDir: home, catalogue: 'home', existing: [old] });
  const doc = await withExisting();
  assert.equal(doc.remaining, 0);
  assert.equal(doc.foundElsewhere, 10, JSON.stringify(doc));
  const restored = listTree(path.join(dest, 'data', 'photos'));
  assert.deepEqual(restored, ['img-001.jpg', 'img-002.jpg'], 'only the changed and the missing file are written');
  assert.ok(fs.existsSync(same), 'the existing folder is never changed');
  assert.deepEqual(
    fs.readFileSync(path.join(dest, 'data', 'photos', 'img-001.jpg')),
    fs.readFileSync(path.join(src, 'photos', 'img-001.jpg')),
  );
  // A run with --existing again, after a file found there went away: that one is restored now.
  fs.rmSync(same);
  const next = await withExisting();
  assert.equal(next.restored, 1);
  assert.equal(next.remaining, 0);
  assert.ok(fs.existsSync(path.join(dest, 'data', 'photos', 'img-000.jpg')));
  // A later run without --existing restores what was only found elsewhere.
  const again = await runRestore({ dest, vpaths: ['/data/photos'], diskPath: disk, dataDir: home, catalogue: 'home' });
  assert.equal(again.restored, 9);
  assert.deepEqual(compareTrees(path.join(src, 'photos'), path.join(dest, 'data', 'photos')), []);
});

test('--link hard-links objects without changing them; refused across filesystems', async (t) => {
  const { base, home, cat, disk } = oneDisk(t);
  cat.close();
  const dest = path.join(base, 'out');
  const objectStat = new Map<string, fs.Stats>();
  const doc = await runRestore({
    dest,
    vpaths: ['/data/photos'],
    diskPath: disk,
    dataDir: home,
    catalogue: 'home',
    link: true,
  });
  assert.equal(doc.remaining, 0);
  assert.equal(doc.linked, doc.restored);
  assert.equal(doc.restored, 12);
  for (const name of fs.readdirSync(path.join(dest, 'data', 'photos'))) {
    const p = path.join(dest, 'data', 'photos', name);
    const h = sha(fs.readFileSync(p));
    const o = fs.statSync(objectPath(disk, h));
    assert.equal(fs.statSync(p).ino, o.ino, `${name} shares the object's inode`);
    objectStat.set(h, o);
  }
  // The objects keep their mode and mtime (nothing was set through the links).
  for (const [h, o] of objectStat) {
    const now = fs.statSync(objectPath(disk, h));
    assert.equal(now.mode, o.mode);
    assert.equal(now.mtimeMs, o.mtimeMs);
    assert.equal(sha(fs.readFileSync(objectPath(disk, h))), h);
  }
  // A writable object (one adopted from elsewhere) is not linked: an edit in DEST would change it.
  const [writable] = [...objectStat.keys()] as [string];
  const holders = fs
    .readdirSync(path.join(dest, 'data', 'photos'))
    .filter((n) => sha(fs.readFileSync(path.join(dest, 'data', 'photos', n))) === writable).length;
  fs.chmodSync(objectPath(disk, writable), 0o644);
  const two = await runRestore({
    dest: path.join(base, 'out2'),
    vpaths: ['/data/photos'],
    diskPath: disk,
    dataDir: home,
    catalogue: 'home',
    link: true,
  });
  assert.equal(two.restored, 12 - holders);
  assert.ok(JSON.stringify(two).includes('is writable on the disk; not linked'), JSON.stringify(two).slice(0, 400));
  fs.chmodSync(objectPath(disk, writable), 0o444);
  const shm = fs.mkdtempSync(path.join(fs.existsSync('/dev/shm') ? '/dev/shm' : os.tmpdir(), 'dsb-link-'));
  t.after(() => fs.rmSync(shm, { recursive: true, force: true }));
  if (fs.statSync(shm).dev === fs.statSync(disk).dev) {
    t.diagnostic('no second filesystem here: the cross-device refusal is not checked');
    return;
  }
  await assert.rejects(
    runRestore({
      dest: path.join(shm, 'out'),
      vpaths: [],
      diskPath: disk,
      dataDir: home,
      catalogue: 'home',
      link: true,
    }),
    (err: Error & { exitCode?: number }) =>
      /--link needs the restore folder on the disk's filesystem/.test(err.message) && err.exitCode === 2,
  );
  assert.deepEqual(listTree(path.join(shm, 'out')), [], 'nothing restored across filesystems');
});

test('-n/--dry-run lists what a run would restore and writes nothing', async (t) => {
  const { base, src, home, cat, disk } = oneDisk(t);
  cat.close();
  const dest = path.join(base, 'out');
  const seen: DryRunEntry[] = [];
  const dry = await runRestore({
    dest,
    vpaths: [],
    diskPath: disk,
    dataDir: home,
    catalogue: 'home',
    dryRun: true,
    onDryRun: (e) => seen.push(e),
  });
  assert.ok(!fs.existsSync(dest), 'a dry run creates nothing, not even DEST');
  assert.equal(dry.dryRun, true);
  assert.equal(dry.restored, 0);
  const files = seen.filter((e) => e.kind === 'file');
  assert.equal(files.length, dry.wouldRestore.files);
  assert.ok(files.every((e) => e.action === 'restore'));
  const real = await runRestore({ dest, vpaths: [], diskPath: disk, dataDir: home, catalogue: 'home' });
  assert.equal(real.restored, dry.wouldRestore.files);
  assert.equal(real.bytesRestored, dry.wouldRestore.bytes);
  assert.equal(real.symlinks, dry.wouldRestore.symlinks);
  assert.deepEqual(compareTrees(src, path.join(dest, 'data')), []);
  // Now everything is there: a second dry run has nothing to restore.
  const after: DryRunEntry[] = [];
  const dry2 = await runRestore({
    dest,
    vpaths: [],
    diskPath: disk,
    dataDir: home,
    catalogue: 'home',
    dryRun: true,
    onDryRun: (e) => after.push(e),
  });
  assert.equal(dry2.wouldRestore.files, 0);
  assert.equal(dry2.remaining, 0);
  assert.deepEqual(after, []);
});

test('paths longer than PATH_MAX are restored through folder descriptors', async (t) => {
  const { base, home, cat, disk } = oneDisk(t);
  // Catalogue entries 24 folders of 200 bytes deep (4.8 kB), reusing an object on the disk.
  const one = cat.db.prepare('SELECT * FROM files WHERE kind = 0 AND size > 1000 LIMIT 1').get() as Record<
    string,
    unknown
  >;
  const content = fs.readFileSync(
    objectPath(disk, cat.db.prepare('SELECT hash FROM objects WHERE id = ?').pluck().get(one.object_id) as string),
  );
  const deepDir = `/data/deep${`/${'d'.repeat(200)}`.repeat(24)}`;
  const ins = cat.db.prepare(
    `INSERT INTO files (vpath, parent, source_id, kind, size, mtime_ns, ctime_ns, mode, uid, gid, dev, ino, link_target, object_id)
     VALUES (?, ?, ?, ?, ?, ?, 0, ?, 0, 0, 0, 0, ?, ?)`,
  );
  const mtimeNs = 1_500_000_000_123_456_000n;
  ins.run(
    B(`${deepDir}/deep.bin`),
    B(deepDir),
    one.source_id,
    FileKind.file,
    one.size,
    mtimeNs,
    0o640,
    null,
    one.object_id,
  );
  ins.run(B(`${deepDir}/link`), B(deepDir), one.source_id, FileKind.symlink, 0, mtimeNs, 0o777, B('deep.bin'), null);
  ins.run(B(deepDir), B(path.dirname(deepDir)), one.source_id, FileKind.dir, 0, mtimeNs, 0o750, null, null);
  cat.close();
  const dest = path.join(base, 'out');
  try {
    fs.mkdirSync(dest);
    const dry = await runRestore({
      dest,
      vpaths: ['/data/deep'],
      diskPath: disk,
      dataDir: home,
      catalogue: 'home',
      dryRun: true,
    });
    assert.deepEqual([dry.wouldRestore.files, dry.wouldRestore.symlinks], [1, 1], 'a dry run sees the deep entries');
    const doc = await runRestore({ dest, vpaths: ['/data/deep'], diskPath: disk, dataDir: home, catalogue: 'home' });
    assert.deepEqual([doc.errors, doc.refused], [[], []]);
    assert.equal(doc.remaining, 0);
    const target = B(`${dest}${deepDir}/deep.bin`);
    assert.ok(target.length > 4096);
    const fd = openDeep(target, fs.constants.O_RDONLY);
    try {
      const st = fs.fstatSync(fd, { bigint: true });
      assert.equal(Number(st.mode & 0o777n), 0o640);
      assert.equal(st.mtimeNs / 1000n, mtimeNs / 1000n);
      const got = Buffer.alloc(content.length);
      fs.readSync(fd, got, 0, got.length, 0);
      assert.deepEqual(got, content);
    } finally {
      fs.closeSync(fd);
    }
    const dirFd = openDeep(B(`${dest}${deepDir}`), fs.constants.O_RDONLY | fs.constants.O_DIRECTORY);
    try {
      assert.equal(fs.fstatSync(dirFd).mode & 0o777, 0o750, 'the deep folder gets its mode');
      assert.equal(fs.readlinkSync(`/proc/self/fd/${dirFd}/link`), 'deep.bin');
    } finally {
      fs.closeSync(dirFd);
    }
    // A second run finds everything done (the log keeps the long paths).
    const again = await runRestore({ dest, vpaths: ['/data/deep'], diskPath: disk, dataDir: home, catalogue: 'home' });
    assert.equal(again.restored, 0);
    assert.equal(again.remaining, 0);
  } finally {
    // GNU rm walks with openat: it removes what Node's rmSync cannot reach.
    spawnSync('rm', ['-rf', path.join(dest, 'data', 'deep')]);
  }
});

test('big files: the kernel copy and the chunked copy are both checked against the hash', async (t) => {
  const big = Buffer.alloc(5 * 1024 * 1024 + 17);
  for (let i = 0; i < big.length; i += 4096) big.writeUInt32LE((i * 2654435761) >>> 0, i);
  const bigger = Buffer.concat([big, big.subarray(0, 3 * 1024 * 1024)]);
  const { base, src, home, cat, disk } = oneDisk(t, { 'big/a.bin': big, 'big/b.bin': bigger });
  cat.close();
  // Kernel copy for a (5 MiB), chunks for b (8 MiB > 6 MiB).
  const dest = path.join(base, 'out');
  const doc = await runRestore({
    dest,
    vpaths: ['/data/big'],
    diskPath: disk,
    dataDir: home,
    catalogue: 'home',
    kernelCopyMaxBytes: 6 << 20,
  });
  assert.equal(doc.restored, 2);
  assert.deepEqual(compareTrees(path.join(src, 'big'), path.join(dest, 'data', 'big')), []);
  // One flipped byte in each object: neither is restored, both are reported, no temp file left.
  for (const b of [big, bigger]) {
    const p = objectPath(disk, sha(b));
    fs.chmodSync(p, 0o644);
    const fd = fs.openSync(p, 'r+');
    fs.writeSync(fd, Buffer.from([(b[4_000_000] ?? 0) ^ 0x40]), 0, 1, 4_000_000);
    fs.closeSync(fd);
  }
  const dest2 = path.join(base, 'out2');
  const bad = await runRestore({
    dest: dest2,
    vpaths: ['/data/big'],
    diskPath: disk,
    dataDir: home,
    catalogue: 'home',
    kernelCopyMaxBytes: 6 << 20,
  });
  assert.equal(bad.restored, 0);
  assert.equal(bad.errors.length, 2, JSON.stringify(bad.errors));
  for (const e of bad.errors) assert.match(e.error, /damaged/);
  assert.deepEqual(listTree(path.join(dest2, 'data', 'big')), []);
});

test('an abort keeps what was restored; the next run restores only the rest', async (t) => {
  const { base, src, home, cat, disk } = oneDisk(t);
  cat.close();
  const dest = path.join(base, 'out');
  const ac = new AbortController();
  let calls = 0;
  const doc = await runRestore({
    dest,
    vpaths: [],
    diskPath: disk,
    dataDir: home,
    catalogue: 'home',
    signal: ac.signal,
    // Abort after the third file, from inside the run (as a SIGINT handler would).
    progress: {
      setTotals: () => {},
      update: () => {
        calls += 1;
        if (calls === 3) ac.abort();
      },
      stop: () => {},
    } as never,
  });
  assert.equal(doc.interrupted, true);
  assert.equal(doc.restored, 3);
  assert.ok(doc.planned.files > 3);
  const next = await runRestore({ dest, vpaths: [], diskPath: disk, dataDir: home, catalogue: 'home' });
  assert.equal(next.interrupted, false);
  assert.equal(next.restored, doc.planned.files - 3, 'the files of the interrupted run are not written again');
  assert.equal(next.alreadyRestored, 0);
  assert.deepEqual(compareTrees(src, path.join(dest, 'data')), []);
});

test('a file that failed for a reason of DEST (another file in the way) is still on the disk used: no "cannot be restored"', async (t) => {
  const { base, home, cat, disk } = oneDisk(t);
  cat.close();
  const dest = path.join(base, 'out');
  fs.mkdirSync(path.join(dest, 'data', 'docs'), { recursive: true });
  fs.writeFileSync(path.join(dest, 'data', 'docs', 'readme.txt'), 'the user wrote this');
  const doc = await runRestore({ dest, vpaths: [], diskPath: disk, dataDir: home, catalogue: 'home' });
  assert.equal(doc.remaining, 1);
  assert.equal(doc.unavailable, 0, 'the disk used still holds it');
  assert.equal(doc.next?.disk, 'd1');
  assert.equal(fs.readFileSync(path.join(dest, 'data', 'docs', 'readme.txt'), 'utf8'), 'the user wrote this');
});
