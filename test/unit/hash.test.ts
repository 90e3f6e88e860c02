import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { EMPTY_SHA256, HASH_CHUNK_BYTES, type HashTask, hashBatch, hashFile } from '../../src/pipeline/hash.js';
import { createHashPool } from '../../src/pipeline/hash-pool.js';
import { tempDir } from '../helpers/tmp.js';

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

function task(p: string | Buffer, follow = false): HashTask {
  const st = fs.lstatSync(p, { bigint: true });
  return { path: Buffer.isBuffer(p) ? p : Buffer.from(p), dev: st.dev, ino: st.ino, follow };
}

test('hashFile streams through one small buffer and matches a one-shot SHA-256', (t) => {
  const dir = tempDir(t);
  const data = Buffer.alloc(3 * 4096 + 17);
  for (let i = 0; i < data.length; i++) data[i] = (i * 31) & 0xff;
  const p = path.join(dir, 'f');
  fs.writeFileSync(p, data);
  const r = hashFile(task(p), Buffer.alloc(4096));
  assert.equal(r.ok, true);
  if (!r.ok) return;
  assert.equal(r.hash, sha(data));
  assert.equal(r.sizeBytes, data.length);
  assert.equal(r.mtimeNs, fs.statSync(p, { bigint: true }).mtimeNs);
});

test('the empty file hashes to the SHA-256 of nothing', (t) => {
  const p = path.join(tempDir(t), 'empty');
  fs.writeFileSync(p, '');
  const r = hashFile(task(p), Buffer.alloc(HASH_CHUNK_BYTES));
  assert.deepEqual(r.ok && r.hash, EMPTY_SHA256);
  assert.equal(sha(Buffer.alloc(0)), EMPTY_SHA256);
});

test('a non-UTF-8 name is opened byte-exact, never a look-alike', (t) => {
  const dir = Buffer.from(tempDir(t));
  const ff = Buffer.concat([dir, Buffer.from('/x-'), Buffer.from([0xff])]);
  const fffd = Buffer.concat([dir, Buffer.from('/x-\ufffd')]);
  fs.writeFileSync(ff, 'ff bytes');
  fs.writeFileSync(fffd, 'replacement char');
  const r = hashFile(task(ff), Buffer.alloc(1024));
  assert.equal(r.ok && r.hash, sha(Buffer.from('ff bytes')));
});

test('a file replaced after the scan (other inode) is refused, not hashed under the old identity', (t) => {
  const dir = tempDir(t);
  const p = path.join(dir, 'f');
  fs.writeFileSync(p, 'old');
  const seen = task(p);
  // The new file is made while the old one still exists and renamed over it, so it cannot get
  // the old inode back (deleting first let the filesystem reuse it when other tests ran beside).
  fs.writeFileSync(path.join(dir, 'f.new'), 'new');
  fs.renameSync(path.join(dir, 'f.new'), p);
  assert.notEqual(fs.statSync(p, { bigint: true }).ino, seen.ino);
  const r = hashFile(seen, Buffer.alloc(1024));
  assert.equal(r.ok, false);
  assert.equal(!r.ok && r.code, 'replaced');
});

test('a symlink swapped in after the scan is not followed', (t) => {
  const dir = tempDir(t);
  const p = path.join(dir, 'f');
  fs.writeFileSync(path.join(dir, 'secret'), 'not for the backup');
  fs.writeFileSync(p, 'x');
  const seen = task(p);
  fs.rmSync(p);
  fs.symlinkSync('secret', p);
  const r = hashFile(seen, Buffer.alloc(1024));
  assert.equal(!r.ok && r.code, 'replaced');
});

test('a FIFO swapped in is opened without blocking and refused', (t) => {
  const dir = tempDir(t);
  const p = path.join(dir, 'f');
  fs.writeFileSync(p, 'x');
  const seen = task(p);
  fs.rmSync(p);
  execFileSync('mkfifo', [p]);
  const r = hashFile(seen, Buffer.alloc(1024));
  assert.equal(r.ok, false);
  assert.ok(!r.ok && (r.code === 'not-file' || r.code === 'replaced'), JSON.stringify(r));
});

test('bytes read that do not match the size are reported as changed while read', () => {
  // /proc files say size 0 and then return bytes: the same signal as a file growing under us.
  const p = '/proc/self/status';
  const r = hashFile(task(p), Buffer.alloc(1024));
  assert.equal(!r.ok && r.code, 'changed');
});

test('a missing file is an error in its slot', (t) => {
  const dir = tempDir(t);
  const p = path.join(dir, 'f');
  fs.writeFileSync(p, 'x');
  const seen = task(p);
  fs.rmSync(p);
  const [r] = hashBatch([seen], Buffer.alloc(1024));
  assert.equal(r?.ok === false && r.code, 'ENOENT');
});

test('the worker pool hashes batches off the main thread and exits cleanly', async (t) => {
  const dir = tempDir(t);
  const tasks: HashTask[] = [];
  const expected: string[] = [];
  for (let i = 0; i < 20; i++) {
    const p = path.join(dir, `f${i}`);
    const data = Buffer.from(`file ${i}\n`.repeat(i * 100 + 1));
    fs.writeFileSync(p, data);
    tasks.push(task(p));
    expected.push(sha(data));
  }
  const pool = createHashPool(2, { workers: 'at-once' });
  try {
    const [a, b] = await Promise.all([pool.hash(tasks.slice(0, 10)), pool.hash(tasks.slice(10))]);
    assert.deepEqual(
      [...(a ?? []), ...(b ?? [])].map((r) => (r.ok ? r.hash : r.error)),
      expected,
    );
  } finally {
    await pool.destroy();
  }
});
