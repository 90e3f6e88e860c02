import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import type { HashTask } from '../../src/pipeline/hash.js';
import { createHashPool } from '../../src/pipeline/hash-pool.js';
import { tempDir } from '../helpers/tmp.js';

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

function task(p: string): HashTask {
  const st = fs.lstatSync(p, { bigint: true });
  return { path: Buffer.from(p), dev: st.dev, ino: st.ino, follow: false, sizeBytes: Number(st.size) };
}

test('the worker threads alone hash batches in order, and report a file gone since the scan', async (t) => {
  const dir = tempDir(t);
  const tasks: HashTask[] = [];
  const expected: string[] = [];
  for (let i = 0; i < 12; i++) {
    const p = path.join(dir, `f${i}`);
    const data = Buffer.from(`content ${i}\n`.repeat(i * 500 + 1));
    fs.writeFileSync(p, data);
    tasks.push(task(p));
    expected.push(sha(data));
  }
  const gone = path.join(dir, 'gone');
  fs.writeFileSync(gone, 'x');
  tasks.push(task(gone));
  fs.rmSync(gone);
  const pool = createHashPool(3, { workers: 'at-once', callerHashes: false });
  try {
    const batches = await Promise.all([
      pool.hash(tasks.slice(0, 5)),
      pool.hash(tasks.slice(5, 9)),
      pool.hash(tasks.slice(9)),
    ]);
    const results = batches.flat();
    assert.deepEqual(
      results.slice(0, 12).map((r) => (r.ok ? r.hash : r.error)),
      expected,
    );
    const last = results[12];
    assert.equal(last?.ok, false);
    assert.equal(last?.ok === false && last.code, 'ENOENT');
  } finally {
    await pool.destroy();
  }
});

test('one small batch on a pool of on-demand workers is hashed', async (t) => {
  const dir = tempDir(t);
  const p = path.join(dir, 'small');
  fs.writeFileSync(p, 'small file\n');
  const pool = createHashPool(4);
  try {
    const [r] = await pool.hash([task(p)]);
    assert.equal(r?.ok && r.hash, sha(Buffer.from('small file\n')));
  } finally {
    await pool.destroy();
  }
});
