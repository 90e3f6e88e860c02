/**
 * SmallFilePrefetch, the read-ahead of small sources in the sync copy: a regular file comes back
 * open and read whole; anything else (a link, a FIFO, a shorter file, a missing one) comes back
 * undefined, at once and with nothing left open, so the copy opens it itself and reports it.
 * Buffers go out in call order. Real files, FIFOs and links in a temp folder.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { SmallFilePrefetch } from '../../src/pipeline/copy-io.js';
import { tempDir } from '../helpers/tmp.js';

/**
 * Descriptors of this process open on something under `dir` (a count of all descriptors was
 * flaky: the runner and libuv open and close their own meanwhile).
 */
const openUnder = (dir: string): string[] =>
  fs
    .readdirSync('/proc/self/fd')
    .map((fd) => {
      try {
        return fs.readlinkSync(`/proc/self/fd/${fd}`);
      } catch {
        return '';
      }
    })
    .filter((target) => target.startsWith(`${dir}/`));

test('a regular file comes back open, with its stat and its bytes', async (t) => {
  const dir = tempDir(t);
  const f = path.join(dir, 'a');
  fs.writeFileSync(f, 'hello world');
  const p = new SmallFilePrefetch(2, 64);
  const got = await p.fetch(Buffer.from(f), 5);
  assert.ok(got !== undefined);
  assert.equal(got.n, 5);
  assert.equal(got.buf.subarray(0, 5).toString(), 'hello');
  assert.ok(got.stat.isFile());
  assert.equal(got.stat.size, 11);
  fs.closeSync(got.fd);
  got.release();
});

test('a link, a FIFO, a shorter file, a missing one: undefined, no descriptor left open, no wait', {
  skip: process.platform !== 'linux',
}, async (t) => {
  const dir = tempDir(t);
  const target = path.join(dir, 'target');
  fs.writeFileSync(target, 'x'.repeat(100));
  fs.symlinkSync(target, path.join(dir, 'link'));
  execFileSync('mkfifo', [path.join(dir, 'fifo')]);
  fs.writeFileSync(path.join(dir, 'short'), 'abc');
  fs.mkdirSync(path.join(dir, 'folder'));
  const p = new SmallFilePrefetch(1, 256);
  for (const name of ['link', 'fifo', 'short', 'missing', 'folder']) {
    assert.equal(await p.fetch(Buffer.from(path.join(dir, name)), 50), undefined, name);
  }
  // Closes run on libuv's pool: give them a turn.
  await new Promise((resolve) => setTimeout(resolve, 50));
  assert.deepEqual(openUnder(fs.realpathSync(dir)), []);
  // The one buffer came back each time: a regular file still goes through.
  const ok = await p.fetch(Buffer.from(target), 50);
  assert.ok(ok !== undefined);
  fs.closeSync(ok.fd);
  ok.release();
});

test('buffers are handed out in call order: a later fetch waits until one is released', async (t) => {
  const dir = tempDir(t);
  const files = ['a', 'b', 'c'].map((n) => {
    const f = path.join(dir, n);
    fs.writeFileSync(f, n.repeat(10));
    return Buffer.from(f);
  });
  const p = new SmallFilePrefetch(1, 16);
  const first = await p.fetch(files[0] as Buffer, 10);
  assert.ok(first !== undefined);
  const order: string[] = [];
  const second = p.fetch(files[1] as Buffer, 10).then((g) => {
    order.push('b');
    return g;
  });
  const third = p.fetch(files[2] as Buffer, 10).then((g) => {
    order.push('c');
    return g;
  });
  await new Promise((resolve) => setTimeout(resolve, 50));
  assert.deepEqual(order, [], 'no buffer free yet');
  fs.closeSync(first.fd);
  first.release();
  first.release(); // idempotent: still one buffer
  const b = await second;
  assert.ok(b !== undefined);
  assert.equal(b.buf.subarray(0, 10).toString(), 'b'.repeat(10));
  assert.deepEqual(order, ['b']);
  fs.closeSync(b.fd);
  b.release();
  const c = await third;
  assert.ok(c !== undefined);
  assert.deepEqual(order, ['b', 'c']);
  fs.closeSync(c.fd);
  c.release();
});
