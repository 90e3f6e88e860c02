import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { fsReader, ObjectChecker, type ObjectReader } from '../../src/disk/check-object.js';
import { tempDir } from '../helpers/tmp.js';

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

test('the checker tells ok, truncated, grown, altered and missing apart, across buffer boundaries', (t) => {
  const dir = tempDir(t);
  const data = Buffer.alloc(10_000, 7);
  data[9_999] = 1;
  const hash = sha(data);
  const p = path.join(dir, hash);
  // A 4 KiB buffer: the object spans three reads.
  const c = new ObjectChecker(undefined, 4096);
  fs.writeFileSync(p, data);
  assert.deepEqual(c.check(p, hash, data.length), { status: 'ok', bytesRead: 10_000 });
  fs.writeFileSync(p, data.subarray(0, 5000));
  const short = c.check(p, hash, data.length);
  assert.equal(short.status, 'bad');
  assert.match(short.status === 'bad' ? short.problem : '', /5000 bytes instead of 10000/);
  fs.writeFileSync(p, Buffer.concat([data, Buffer.from('x')]));
  assert.equal(c.check(p, hash, data.length).status, 'bad');
  const altered = Buffer.from(data);
  altered[4096] = 0;
  fs.writeFileSync(p, altered);
  const bad = c.check(p, hash, data.length);
  assert.equal(bad.status, 'bad');
  assert.match(bad.status === 'bad' ? bad.problem : '', /hashes to/);
  assert.equal(bad.bytesRead, 20_000, 'read twice before being called bad');
  fs.rmSync(p);
  assert.equal(c.check(p, hash, data.length).status, 'missing');
});

test('an object that fits the buffer is read with one call when its length is right, and to its end when not', (t) => {
  const dir = tempDir(t);
  const data = Buffer.alloc(7000, 3);
  const hash = sha(data);
  const p = path.join(dir, hash);
  let reads = 0;
  const counting: ObjectReader = {
    ...fsReader,
    read: (fd, buf, pos) => {
      reads += 1;
      return fsReader.read(fd, buf, pos);
    },
  };
  const c = new ObjectChecker(counting, 64 * 1024);
  fs.writeFileSync(p, data);
  assert.deepEqual(c.check(p, hash, data.length), { status: 'ok', bytesRead: 7000 });
  assert.equal(reads, 1, 'no read that only finds the end');
  // Grown by one byte, or cut short: fstat's length differs, so it is read to the end and judged.
  for (const wrong of [Buffer.concat([data, Buffer.from('x')]), data.subarray(0, 6999)]) {
    fs.writeFileSync(p, wrong);
    const r = c.check(p, hash, data.length);
    assert.equal(r.status, 'bad');
    assert.match(r.status === 'bad' ? r.problem : '', new RegExp(`${wrong.length} bytes instead of 7000`));
  }
  // The right length with other bytes: still one read a check, and bad after the second check.
  const other = Buffer.alloc(7000, 4);
  fs.writeFileSync(p, other);
  reads = 0;
  const bad = c.check(p, hash, data.length);
  assert.equal(bad.status, 'bad');
  assert.match(bad.status === 'bad' ? bad.problem : '', /hashes to/);
  assert.equal(reads, 2, 'one read for each of the two checks');
});

test('a symlink in place of an object is never followed', (t) => {
  const dir = tempDir(t);
  const data = Buffer.from('content');
  const hash = sha(data);
  fs.writeFileSync(path.join(dir, 'elsewhere'), data);
  fs.symlinkSync(path.join(dir, 'elsewhere'), path.join(dir, hash));
  const r = new ObjectChecker().check(path.join(dir, hash), hash, data.length);
  assert.equal(r.status, 'bad');
  assert.match(r.status === 'bad' ? r.problem : '', /ELOOP/);
});

test('the overlapped check reads across buffer boundaries and tells the same cases apart as the plain one', async (t) => {
  const dir = tempDir(t);
  const data = Buffer.alloc(50_000);
  for (let i = 0; i < data.length; i++) data[i] = (i * 31) & 0xff;
  const hash = sha(data);
  const p = path.join(dir, hash);
  // 4 KiB buffers: the object spans thirteen reads, each read into the other buffer.
  const c = new ObjectChecker(undefined, 4096);
  fs.writeFileSync(p, data);
  assert.deepEqual(await c.checkAsync(p, hash, data.length), { status: 'ok', bytesRead: 50_000 });
  assert.deepEqual(c.check(p, hash, data.length), { status: 'ok', bytesRead: 50_000 });
  fs.writeFileSync(p, data.subarray(0, 40_000));
  const short = await c.checkAsync(p, hash, data.length);
  assert.match(short.status === 'bad' ? short.problem : '', /40000 bytes instead of 50000/);
  fs.writeFileSync(p, Buffer.concat([data, Buffer.from('x')]));
  assert.equal((await c.checkAsync(p, hash, data.length)).status, 'bad');
  const altered = Buffer.from(data);
  altered[8192] = (altered[8192] ?? 0) ^ 1;
  fs.writeFileSync(p, altered);
  const bad = await c.checkAsync(p, hash, data.length);
  assert.match(bad.status === 'bad' ? bad.problem : '', /hashes to/);
  assert.equal(bad.bytesRead, 100_000, 'read twice before being called bad');
  fs.rmSync(p);
  assert.equal((await c.checkAsync(p, hash, data.length)).status, 'missing');
});

test('a FIFO or a folder in place of an object is bad at once, never read (a FIFO would block)', async (t) => {
  const dir = tempDir(t);
  const hash = sha(Buffer.from('x'));
  const fifo = path.join(dir, hash);
  if (spawnSync('mkfifo', [fifo]).status !== 0) {
    t.skip('mkfifo is not available');
    return;
  }
  const r = await new ObjectChecker().checkAsync(fifo, hash, 1);
  assert.equal(r.status, 'bad');
  assert.match(r.status === 'bad' ? r.problem : '', /not a regular file/);
  fs.rmSync(fifo);
  fs.mkdirSync(fifo);
  const d = new ObjectChecker().check(fifo, hash, 1);
  assert.match(d.status === 'bad' ? d.problem : '', /not a regular file/);
});

test('the overlapped check stops when its signal aborts, and a wrong first read is read again', async (t) => {
  const dir = tempDir(t);
  const data = Buffer.alloc(64 * 1024, 5);
  const hash = sha(data);
  const p = path.join(dir, hash);
  fs.writeFileSync(p, data);
  const ac = new AbortController();
  let reads = 0;
  let flips = 0;
  // The real reader; its third read aborts the signal, or flips a bit of the first read once.
  const reader: ObjectReader = {
    ...fsReader,
    readAsync: async (fd, buf, pos) => {
      const n = await (fsReader.readAsync as NonNullable<ObjectReader['readAsync']>)(fd, buf, pos);
      reads += 1;
      if (reads === 3 && flips < 0) ac.abort(new Error('stop'));
      if (pos === 0 && flips === 0) {
        buf[0] = (buf[0] ?? 0) ^ 1;
        flips += 1;
      }
      return n;
    },
  };
  const c = new ObjectChecker(reader, 4096);
  const r = await c.checkAsync(p, hash, data.length);
  assert.equal(r.status, 'ok-second-read');
  flips = -1;
  reads = 0;
  await assert.rejects(c.checkAsync(p, hash, data.length, ac.signal), /stop/);
  assert.ok(reads < 16, 'stopped before the end of the object');
});
