/**
 * The small-file lane of `restore` (restore/small-files.ts), in-process and through its thread:
 * real temp folders, real files. A file lands at its target with the object's bytes, its mode and
 * its mtime, and no temp file stays; an object that is missing, shorter, longer, changed, a folder
 * or a symlink is refused in the main-thread writer's words and nothing is created; a target that
 * exists is never replaced unless the task says so; a full filesystem (a real tmpfs) is the
 * step, errno and path, the temp file removed; the thread answers every file, in order.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import {
  checkPlaced,
  foldedPath,
  SmallFileLane,
  type SmallFileResult,
  type SmallFileTask,
  SmallFileWriter,
} from '../../src/restore/small-files.js';
import { mountTmpfs } from '../helpers/mounts.js';
import { tempDir } from '../helpers/tmp.js';

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');
const MTIME_NS = 1_600_000_000_123_456_000n;

/** An object of `bytes` under `dir/objects`, and the task restoring it to `dir/out/<name>`. */
function task(dir: string, name: string, bytes: Buffer, extra: Partial<SmallFileTask> = {}): SmallFileTask {
  const hash = sha(bytes);
  const objects = path.join(dir, 'objects');
  fs.mkdirSync(objects, { recursive: true });
  const object = path.join(objects, hash);
  fs.writeFileSync(object, bytes);
  const out = path.join(dir, 'out');
  fs.mkdirSync(out, { recursive: true });
  return {
    hash,
    sizeBytes: bytes.length,
    object,
    tmp: Buffer.from(path.join(out, `.dsb-${name}.part`)).toString('latin1'),
    target: Buffer.from(path.join(out, name)).toString('latin1'),
    replace: false,
    mode: 0o640,
    uid: process.getuid?.() ?? 0,
    gid: process.getgid?.() ?? 0,
    mtimeNs: MTIME_NS,
    checkMode: false,
    ...extra,
  };
}

/** Files in `dir` whose names end in `.part` (temp files left behind). */
function parts(dir: string): string[] {
  return fs.readdirSync(dir).filter((n) => n.endsWith('.part'));
}

test('files land at their targets with the bytes, mode and mtime; an empty file reads nothing', async (t) => {
  const dir = tempDir(t);
  const data = [randomBytes(1), randomBytes(4096), randomBytes(65_537), randomBytes(1024 * 1024 - 1)];
  const tasks = data.map((b, i) => task(dir, `f${i}`, b, { checkMode: i === 0 }));
  tasks.push({ ...task(dir, 'empty', Buffer.alloc(0)), object: null });
  const results = await new SmallFileWriter().write(tasks);
  assert.equal(results.length, tasks.length);
  for (const [i, r] of results.entries()) assert.deepEqual(r, { placed: {} }, `file ${i}: ${JSON.stringify(r)}`);
  const out = path.join(dir, 'out');
  for (const [i, b] of data.entries()) {
    const p = path.join(out, `f${i}`);
    assert.ok(fs.readFileSync(p).equals(b), `f${i} bytes`);
    const st = fs.statSync(p, { bigint: true });
    assert.equal(Number(st.mode & 0o777n), 0o640);
    assert.equal(Number(st.mtimeNs / 1000n), Number(MTIME_NS / 1000n), 'mtime to the microsecond');
  }
  assert.equal(fs.statSync(path.join(out, 'empty')).size, 0);
  assert.deepEqual(parts(out), []);
});

test('a missing, shorter, longer or changed object, a folder and a symlink are refused; nothing is created', async (t) => {
  const dir = tempDir(t);
  const good = randomBytes(5000);
  const missing = task(dir, 'missing', randomBytes(100));
  fs.rmSync(missing.object as string);
  const shorter = task(dir, 'shorter', randomBytes(3000));
  fs.truncateSync(shorter.object as string, 2999);
  const longer = task(dir, 'longer', randomBytes(3000));
  fs.appendFileSync(longer.object as string, 'x');
  const changed = task(dir, 'changed', randomBytes(3000));
  const flipped = fs.readFileSync(changed.object as string);
  flipped[100] = (flipped[100] as number) ^ 1;
  fs.writeFileSync(changed.object as string, flipped);
  const folder = task(dir, 'folder', randomBytes(10));
  fs.rmSync(folder.object as string);
  fs.mkdirSync(folder.object as string);
  const link = task(dir, 'link', good);
  const linkObject = `${link.object as string}.via-link`;
  fs.symlinkSync(link.object as string, linkObject);
  const tasks = [missing, shorter, longer, changed, folder, { ...link, object: linkObject }, task(dir, 'ok', good)];
  const r = await new SmallFileWriter().write(tasks);
  assert.deepEqual(r[0], { missing: true });
  assert.match(r[1]?.bad ?? '', /^object [0-9a-f]{64} has 2999 bytes, not 3000: damaged \(run 'distbackup verify'\)$/);
  assert.match(r[2]?.bad ?? '', /^object [0-9a-f]{64} has more than 3000 bytes: damaged/);
  assert.match(r[3]?.bad ?? '', /^object [0-9a-f]{64} reads back as [0-9a-f]{64}: damaged .*; not restored$/);
  assert.match(r[4]?.bad ?? '', /^object [0-9a-f]{64}: EISDIR/);
  assert.match(r[5]?.bad ?? '', /^object [0-9a-f]{64}: ELOOP/, 'a symlinked object is never followed');
  assert.deepEqual(r[6], { placed: {} });
  const out = path.join(dir, 'out');
  assert.deepEqual(fs.readdirSync(out), ['ok'], 'only the good file, no temp file');
});

test('an existing target is never replaced unless the task says so', async (t) => {
  const dir = tempDir(t);
  const out = path.join(dir, 'out');
  const keep = task(dir, 'keep', randomBytes(2000));
  fs.writeFileSync(path.join(out, 'keep'), 'mine');
  const again = task(dir, 'again', randomBytes(2000));
  fs.writeFileSync(path.join(out, 'again'), 'old');
  const replaced = { ...again, replace: true };
  const r = await new SmallFileWriter().write([keep, replaced]);
  assert.deepEqual(r[0], { exists: 'exists; not overwritten (use --overwrite)' });
  assert.equal(fs.readFileSync(path.join(out, 'keep'), 'utf8'), 'mine');
  assert.deepEqual(r[1], { placed: {} });
  assert.equal(sha(fs.readFileSync(path.join(out, 'again'))), again.hash);
  assert.deepEqual(parts(out), []);
});

test('a full filesystem names the step, the errno and the file, and removes the temp file', async (t) => {
  const m = mountTmpfs(t, { sizeBytes: 256 * 1024 });
  if (m === null) return;
  const dir = tempDir(t);
  const big = task(dir, 'big', randomBytes(512 * 1024));
  const out = path.join(m.dir, 'out');
  fs.mkdirSync(out);
  const onTmpfs = (x: SmallFileTask, name: string): SmallFileTask => ({
    ...x,
    tmp: path.join(out, `.dsb-${name}.part`),
    target: path.join(out, name),
  });
  const small = task(dir, 'small', randomBytes(1000));
  const r = await new SmallFileWriter().write([onTmpfs(big, 'big'), onTmpfs(small, 'small')]);
  assert.equal(r[0]?.failed?.step, 'write', JSON.stringify(r[0]));
  assert.equal(r[0]?.failed?.code, 'ENOSPC');
  assert.equal(r[0]?.failed?.file, path.join(out, '.dsb-big.part'));
  assert.deepEqual(r[1], { placed: {} }, 'the next file still fits and is written');
  assert.deepEqual(fs.readdirSync(out), ['small']);
});

test('through the thread: every file answered in order, across messages; close ends it', async (t) => {
  const dir = tempDir(t);
  const seen: { i: number; r: SmallFileResult }[] = [];
  const lane = new SmallFileLane<number>((i, _task, r) => seen.push({ i, r }));
  try {
    const n = 100;
    for (let i = 0; i < n; i++) {
      const x = task(dir, `f${i}`, randomBytes(100 + i));
      if (i === 40) fs.rmSync(x.object as string);
      await lane.add(i, x);
    }
    await lane.drain();
    assert.deepEqual(
      seen.map((s) => s.i),
      [...Array(n).keys()],
    );
    for (const { i, r } of seen) assert.deepEqual(r, i === 40 ? { missing: true } : { placed: {} }, `file ${i}`);
    assert.equal(fs.readdirSync(path.join(dir, 'out')).length, n - 1);
  } finally {
    await lane.close();
  }
});

test('names a case-folding folder could take for one fold alike, so the lane gives them to one thread', () => {
  assert.equal(foldedPath('/dest/Dir/A.txt'), foldedPath('/dest/dir/a.txt'));
  assert.equal(foldedPath('/dest/Photos./x'), foldedPath('/dest/photos/x'));
  assert.equal(foldedPath('/dest/a b /x.'), foldedPath('/dest/A B/X'));
  // Other names, even in one folder, may go to either thread.
  assert.notEqual(foldedPath('/dest/one/x'), foldedPath('/dest/one/y'));
  assert.notEqual(foldedPath('/dest/one/x'), foldedPath('/dest/two/x'));
  assert.notEqual(foldedPath('/dest/a/bx'), foldedPath('/dest/ab/x'));
});

test('checkPlaced: the file placed must be the one written, else its name is removed and the file not counted', (t) => {
  const dir = tempDir(t);
  const mine = path.join(dir, 'mine');
  const other = path.join(dir, 'other');
  fs.writeFileSync(mine, 'written here');
  fs.writeFileSync(other, 'written by another thread');
  const fd = fs.openSync(mine, 'r');
  t.after(() => fs.closeSync(fd));
  // Placed under a second name (a hard link): the same file, kept.
  fs.linkSync(mine, path.join(dir, 'placed'));
  checkPlaced(fd, Buffer.from(path.join(dir, 'placed')));
  assert.equal(fs.readFileSync(path.join(dir, 'placed'), 'utf8'), 'written here');
  // Another file under the target: refused, and the name removed.
  assert.throws(
    () => checkPlaced(fd, Buffer.from(other)),
    (err: Error & { code?: string }) => err.code === 'ESTALE' && /other than the one written/.test(err.message),
  );
  assert.ok(!fs.existsSync(other));
  // Nothing there at all: refused too.
  assert.throws(() => checkPlaced(fd, Buffer.from(path.join(dir, 'gone'))), /other than the one written/);
});
