/**
 * The small-file lane of `sync` (pipeline/small-copy.ts), in-process and through its thread:
 * real temp folders, real files. A copy lands in `.tmp/` with the catalogued bytes, read-only;
 * the prefix folder is made once and reported; a vanished source, one of another size and one
 * whose bytes changed are reported in the main-thread copy's words (the next source tried
 * first); a full disk (a real tmpfs) stops the message at that file, its tmp file removed;
 * reading ahead never fails nor writes.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { DiskRoot } from '../../src/disk/disk-root.js';
import { objectPath } from '../../src/disk/layout.js';
import { type CopiedObject, type CopyItem, copyObjects } from '../../src/pipeline/copy.js';
import {
  copySmallBatch,
  ReadAheadPacer,
  readAhead,
  type SmallCopyTask,
  SmallCopyThread,
  smallCopyState,
  startSmallCopyThread,
} from '../../src/pipeline/small-copy.js';
import { TokenBucket } from '../../src/pipeline/throttle.js';
import { mountTmpfs } from '../helpers/mounts.js';
import { tempDir } from '../helpers/tmp.js';

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

/** A source file of `bytes` and the task copying it into `disk`. */
function task(src: string, disk: string, bytes: Buffer, extra: Partial<SmallCopyTask> = {}): SmallCopyTask {
  fs.writeFileSync(src, bytes);
  const hash = sha(bytes);
  fs.mkdirSync(path.join(disk, '.tmp'), { recursive: true });
  return {
    hash,
    sizeBytes: bytes.length,
    sources: [Buffer.from(src)],
    tmp: path.join(disk, '.tmp', `${hash}.t${Math.random().toString(16).slice(2)}`),
    dir: path.join(disk, hash.slice(0, 3)),
    ...extra,
  };
}

test('copies into .tmp, read-only, making the prefix folder once', (t) => {
  const root = tempDir(t);
  const a = task(path.join(root, 'a'), path.join(root, 'disk'), Buffer.from('first file'));
  const b = { ...a, tmp: `${a.tmp}x` };
  const state = smallCopyState();
  const r = copySmallBatch([a, b], state);
  assert.deepEqual(r, [
    { dir: 'made', ok: 0 },
    { dir: undefined, ok: 0 },
  ]);
  assert.equal(fs.readFileSync(a.tmp, 'utf8'), 'first file');
  assert.equal(fs.statSync(a.tmp).mode & 0o777, 0o444);
  assert.ok(fs.statSync(a.dir ?? '').isDirectory());
  // A folder it did not make is reported for the main thread to check.
  const c = { ...a, tmp: `${a.tmp}y` };
  assert.deepEqual(copySmallBatch([c], smallCopyState()), [{ dir: 'exists', ok: 0 }]);
});

test('a vanished source, another size, other bytes: skipped in the copy words; the next source is tried', (t) => {
  const root = tempDir(t);
  const disk = path.join(root, 'disk');
  const gone = task(path.join(root, 'gone'), disk, Buffer.from('will vanish'));
  fs.rmSync(path.join(root, 'gone'));
  const shrunk = task(path.join(root, 'shrunk'), disk, Buffer.from('twelve bytes'));
  fs.writeFileSync(path.join(root, 'shrunk'), 'short');
  const changed = task(path.join(root, 'changed'), disk, Buffer.from('same length A'));
  fs.writeFileSync(path.join(root, 'changed'), 'same length B');
  const second = task(path.join(root, 'good'), disk, Buffer.from('good copy'), {});
  const twoSources = {
    ...second,
    sources: [Buffer.from(path.join(root, 'missing')), Buffer.from(path.join(root, 'good'))],
  };
  const r = copySmallBatch([gone, shrunk, changed, twoSources], smallCopyState());
  assert.deepEqual(r[0], { dir: 'made', skip: { src: 0, error: 'ENOENT (no such file or directory)' } });
  assert.deepEqual(r[1]?.skip, {
    src: 0,
    error: "changed since the last update (5 bytes, catalogued 12); run 'distbackup update'",
  });
  assert.match(r[2]?.skip?.error ?? '', /^content changed since the last update \(hash [0-9a-f]{12}…, catalogued/);
  // Only other bytes under the catalogued size mark the files to be read again (sync.ts).
  assert.deepEqual(
    r.slice(0, 3).map((x) => x.skip?.changed === true),
    [false, false, true],
  );
  assert.equal(r[3]?.ok, 1);
  for (const x of [gone, shrunk, changed]) assert.equal(fs.existsSync(x.tmp), false);
  assert.equal(fs.readFileSync(twoSources.tmp, 'utf8'), 'good copy');
});

test('a full disk ends the message at that file, its tmp file removed', (t) => {
  const m = mountTmpfs(t, { sizeBytes: 256 * 1024 });
  if (m === null) return;
  const root = tempDir(t);
  const big = Buffer.alloc(200 * 1024, 7);
  const a = task(path.join(root, 'a'), m.dir, big);
  const b = task(path.join(root, 'b'), m.dir, Buffer.alloc(200 * 1024, 8));
  const c = task(path.join(root, 'c'), m.dir, Buffer.from('never started'));
  const r = copySmallBatch([a, b, c], smallCopyState());
  assert.equal(r.length, 2);
  assert.equal(r[0]?.ok, 0);
  assert.equal(r[1]?.disk?.code, 'ENOSPC');
  assert.equal(r[1]?.disk?.what, 'write');
  assert.equal(r[1]?.disk?.file, b.tmp);
  assert.equal(fs.existsSync(b.tmp), false);
  assert.equal(fs.existsSync(c.tmp), false);
});

test('the thread answers each message in order', async (t) => {
  const root = tempDir(t);
  const disk = path.join(root, 'disk');
  const files = Array.from({ length: 40 }, (_, i) =>
    task(path.join(root, `f${i}`), disk, Buffer.from(`file number ${i}`)),
  );
  const th = new SmallCopyThread();
  t.after(() => th.close());
  const [r1, r2] = await Promise.all([th.run(files.slice(0, 25)), th.run(files.slice(25))]);
  assert.equal(r1.length, 25);
  assert.equal(r2.length, 15);
  for (const [i, f] of files.entries()) {
    assert.equal((i < 25 ? r1[i] : r2[i - 25])?.ok, 0);
    assert.equal(fs.readFileSync(f.tmp, 'utf8'), `file number ${i}`);
  }
  await th.close();
  await assert.rejects(th.run(files.slice(0, 1)), /closed/);
});

test('reading ahead ignores a source that is gone or not a file, and changes nothing', (t) => {
  const root = tempDir(t);
  const a = task(path.join(root, 'a'), path.join(root, 'disk'), Buffer.from('read ahead'));
  const state = smallCopyState();
  readAhead(a, state);
  readAhead({ ...a, sources: [Buffer.from(path.join(root, 'missing'))] }, state);
  readAhead({ ...a, sources: [Buffer.from(root)] }, state);
  readAhead({ ...a, sources: [] }, state);
  assert.equal(fs.existsSync(a.tmp), false);
  assert.equal(fs.existsSync(a.dir ?? ''), false);
});

test('a thread started before the copy is used and closed by it, with or without read-back; one started for a throttled copy is closed unused', async (t) => {
  const root = tempDir(t);
  const diskPath = path.join(root, 'disk');
  fs.mkdirSync(diskPath);
  const disk = DiskRoot.open(diskPath, { create: true });
  const items = (prefix: string): CopyItem[] =>
    Array.from({ length: 6 }, (_, i) => {
      const bytes = Buffer.from(`${prefix} file ${i}`);
      const src = path.join(root, `${prefix}${i}`);
      fs.writeFileSync(src, bytes);
      return { index: i, objectId: i + 1, hash: sha(bytes), sizeBytes: bytes.length, sources: [Buffer.from(src)] };
    });
  const copy = async (list: CopyItem[], thread: SmallCopyThread, mode: string): Promise<CopiedObject[]> => {
    const done: CopiedObject[] = [];
    await copyObjects(list, {
      target: disk,
      lanes: 2,
      chunkBytes: 1 << 20,
      readAheadChunks: 4,
      fsyncBatchFiles: 64,
      fsyncBatchBytes: 1 << 30,
      commitFiles: 64,
      commitBytes: 1 << 30,
      batchSyncfs: true,
      smallFileThread: thread,
      readback: mode === 'readback',
      throttle: mode === 'throttle' ? new TokenBucket(1e9) : undefined,
      commit: (b) => done.push(...b),
      onSkip: (s) => assert.fail(`skipped: ${s.error}`),
    });
    return done;
  };
  for (const mode of ['plain', 'readback', 'throttle']) {
    const th = startSmallCopyThread();
    assert.ok(th !== undefined, 'the thread starts');
    t.after(() => th.close());
    const list = items(mode);
    const done = await copy(list, th, mode);
    assert.equal(done.length, list.length, `${mode}: every file copied`);
    for (const it of list) assert.ok(fs.existsSync(objectPath(diskPath, it.hash)), `${it.hash} in place`);
    // Closed either way: nothing keeps the process alive after the run.
    await assert.rejects(th.run([]), /closed/);
  }
});

test('the reading thread reads one message in eight while the sources come back at page-cache speed, every one otherwise', () => {
  const p = new ReadAheadPacer(8, 30_000, 2);
  const pattern = (n: number, nsEach: (i: number) => number): string => {
    let out = '';
    for (let i = 0; i < n; i++) {
      if (p.shouldRead()) {
        out += 'r';
        p.done(32, 32 * 8192, nsEach(i));
      } else out += '.';
    }
    return out;
  };
  // Cold: 32 files took 100 µs each: every message is read.
  assert.equal(
    pattern(10, () => 32 * 100_000),
    'rrrrrrrrrr',
  );
  // Cached: 10 µs each: one in eight, looking again after seven.
  assert.equal(
    pattern(17, () => 32 * 10_000),
    'r.......r.......r',
  );
  // The sources turn cold again: the next look finds it, and every message is read from then on.
  assert.equal(
    pattern(12, () => 32 * 100_000),
    '.......rrrrr',
  );
  // Large files read at memory speed count as cached too; an empty message says nothing.
  const q = new ReadAheadPacer(4, 30_000, 2);
  q.done(1, 8 << 20, 3_000_000);
  assert.deepEqual([q.shouldRead(), q.shouldRead(), q.shouldRead(), q.shouldRead()], [false, false, false, true]);
  q.done(0, 0, 0);
  assert.equal(q.shouldRead(), true);
});
