/**
 * restore/fetch.ts on real files in a temp folder: an object of the expected size is read whole,
 * one that grew shows the byte too many, one that shrank the bytes it holds, a missing one and a
 * folder give their errno (ENOENT, EISDIR) as a value, a symlink is not followed, and a fetcher
 * with fewer slots than fetches settles every one.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { sha256Hex } from '../../src/core/sha256.js';
import { type Fetched, fetchObject, ObjectFetcher } from '../../src/restore/fetch.js';
import { tempDir } from '../helpers/tmp.js';

function okBytes(f: Fetched): Buffer {
  assert.ok(f.ok, f.ok ? '' : `fetch failed: ${f.err.code}`);
  return f.bytes;
}

function errCode(f: Fetched): string | undefined {
  assert.ok(!f.ok, 'the fetch should have failed');
  return f.err.code;
}

test('an object of the expected size is read whole, byte for byte', async (t) => {
  const dir = tempDir(t);
  for (const size of [1, 4095, 4096, 65_537, 1024 * 1024 - 1]) {
    const p = path.join(dir, `exact-${size}`);
    const data = randomBytes(size);
    fs.writeFileSync(p, data);
    const got = okBytes(await fetchObject(p, size));
    assert.equal(got.length, size);
    assert.ok(got.equals(data), `${size} bytes read back`);
    assert.equal(sha256Hex(got), createHash('sha256').update(data).digest('hex'));
  }
});

test('a grown object reads one byte too many; a shrunk one reads what it holds', async (t) => {
  const dir = tempDir(t);
  const grown = path.join(dir, 'grown');
  fs.writeFileSync(grown, randomBytes(10_000));
  assert.equal(okBytes(await fetchObject(grown, 9_999)).length, 10_000, 'one byte more than expected');
  assert.equal(okBytes(await fetchObject(grown, 100)).length, 101, 'never more than size + 1 bytes');
  const shrunk = path.join(dir, 'shrunk');
  const data = randomBytes(5_000);
  fs.writeFileSync(shrunk, data);
  const got = okBytes(await fetchObject(shrunk, 8_000));
  assert.equal(got.length, 5_000);
  assert.ok(got.equals(data));
  const empty = path.join(dir, 'empty');
  fs.writeFileSync(empty, '');
  assert.equal(okBytes(await fetchObject(empty, 10)).length, 0);
});

test('a missing object is ENOENT, a folder EISDIR, a symlink is not followed (ELOOP): values, never thrown', async (t) => {
  const dir = tempDir(t);
  assert.equal(errCode(await fetchObject(path.join(dir, 'nope'), 10)), 'ENOENT');
  const sub = path.join(dir, 'a-folder');
  fs.mkdirSync(sub);
  assert.equal(errCode(await fetchObject(sub, 10)), 'EISDIR');
  const target = path.join(dir, 'target');
  fs.writeFileSync(target, '0123456789');
  const link = path.join(dir, 'link');
  fs.symlinkSync(target, link);
  assert.equal(errCode(await fetchObject(link, 10)), 'ELOOP');
  assert.equal(errCode(await fetchObject(Buffer.from(path.join(dir, 'nope')), 10)), 'ENOENT', 'a Buffer path too');
});

test('a fetcher of 3 slots given 20 fetches settles every one with its own bytes or its error', async (t) => {
  const dir = tempDir(t);
  const files: { p: string; data: Buffer }[] = [];
  for (let i = 0; i < 20; i++) {
    const p = path.join(dir, `f${i}`);
    const data = randomBytes(1000 + i);
    if (i !== 7) fs.writeFileSync(p, data); // one missing among them
    files.push({ p, data });
  }
  const fetcher = new ObjectFetcher(3);
  const settled: number[] = [];
  const all = files.map(({ p, data }, i) =>
    fetcher.fetch(p, data.length).then((r) => {
      settled.push(i);
      return r;
    }),
  );
  const results = await Promise.all(all);
  assert.equal(settled.length, files.length, 'every fetch settled');
  for (const [i, r] of results.entries()) {
    if (i === 7) assert.equal(errCode(r), 'ENOENT');
    else assert.ok(okBytes(r).equals(files[i]?.data as Buffer), `file ${i}`);
  }
});
