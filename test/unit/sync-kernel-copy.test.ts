/**
 * The kernel copies of `sync` (pipeline/copy.ts, files of 8 MiB and more): in-process, real temp
 * folders, real `cp` children. A copy lands under its hash, read-only, with the catalogued bytes;
 * one whose source was rewritten since the update is copied again through the buffered loop,
 * which takes the next source or reports the changed one; `--bwlimit` keeps the loop; a source
 * truncated while it is copied is reported, and the run ends (libuv's copyFile spins forever
 * there); Ctrl-C (the signal) ends the run with every counted object in place, nothing left in
 * `.tmp/` and no descriptor left open.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { DiskRoot } from '../../src/disk/disk-root.js';
import { objectPath } from '../../src/disk/layout.js';
import {
  type CopiedObject,
  type CopyItem,
  type CopyOptions,
  type CopyResult,
  type CopySkip,
  copyObjects,
} from '../../src/pipeline/copy.js';
import { TokenBucket } from '../../src/pipeline/throttle.js';
import { tempDir } from '../helpers/tmp.js';

const MiB = 1024 * 1024;
const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

/** `size` bytes that differ with `seed` (each MiB is stamped, so no two files alike). */
function data(seed: number, size: number): Buffer {
  const b = Buffer.alloc(size, seed & 0xff);
  for (let off = 0; off + 8 <= size; off += MiB) b.writeUInt32LE(seed * 1000 + off / MiB, off);
  return b;
}

interface World {
  readonly root: string;
  readonly disk: DiskRoot;
  readonly diskPath: string;
  /** Catalogue `bytes` as object `index`, held by the files `names` (written with those bytes). */
  item(index: number, bytes: Buffer, ...names: string[]): CopyItem;
}

function world(t: Parameters<typeof tempDir>[0]): World {
  const root = tempDir(t);
  const diskPath = path.join(root, 'disk');
  fs.mkdirSync(path.join(root, 'src'));
  fs.mkdirSync(diskPath);
  const disk = DiskRoot.open(diskPath, { create: true });
  return {
    root,
    disk,
    diskPath,
    item: (index, bytes, ...names) => {
      const sources = names.map((n) => {
        const p = path.join(root, 'src', n);
        fs.writeFileSync(p, bytes);
        return Buffer.from(p);
      });
      return { index, objectId: index + 1, hash: sha(bytes), sizeBytes: bytes.length, sources };
    },
  };
}

async function copy(
  w: World,
  items: CopyItem[],
  extra: Partial<CopyOptions> = {},
): Promise<{ result: CopyResult; done: CopiedObject[]; skips: CopySkip[] }> {
  const done: CopiedObject[] = [];
  const skips: CopySkip[] = [];
  const result = await copyObjects(items, {
    target: w.disk,
    lanes: 1,
    chunkBytes: MiB,
    readAheadChunks: 8,
    fsyncBatchFiles: 64,
    fsyncBatchBytes: 64 * MiB,
    commitFiles: 64,
    commitBytes: 1 << 30,
    batchSyncfs: true,
    readback: false,
    commit: (b) => done.push(...b),
    onSkip: (s) => skips.push(s),
    ...extra,
  });
  return { result, done, skips };
}

function tmpLeft(w: World): string[] {
  return fs.readdirSync(path.join(w.diskPath, 'distbackup-objects', '.tmp'));
}

/** Descriptors of this process open on files under `root` (its sources, its disk). */
function openFiles(root: string): string[] {
  const out: string[] = [];
  for (const f of fs.readdirSync('/proc/self/fd')) {
    try {
      const l = fs.readlinkSync(`/proc/self/fd/${f}`);
      if (l.startsWith(root)) out.push(l);
    } catch {
      // closed meanwhile (the readdir's own descriptor)
    }
  }
  return out.sort();
}

test('files of 8 MiB and more are copied by the kernel: in place, read-only, the catalogued bytes', async (t) => {
  const w = world(t);
  // Below, at, and above 16 MiB (those are fsynced on their own, the smaller in a syncfs batch).
  const items = [
    w.item(0, data(1, 8 * MiB), 'a'),
    w.item(1, data(2, 9 * MiB + 3), 'b'),
    w.item(2, data(3, 20 * MiB), 'c'),
  ];
  const { result, done, skips } = await copy(w, items);
  assert.deepEqual(skips, []);
  assert.equal(result.kernelCopied, 3);
  assert.deepEqual(done.map((d) => d.hash).sort(), items.map((i) => i.hash).sort());
  for (const it of items) {
    const p = objectPath(w.diskPath, it.hash);
    assert.equal(sha(fs.readFileSync(p)), it.hash);
    assert.equal(fs.statSync(p).mode & 0o777, 0o444);
  }
  assert.deepEqual(tmpLeft(w), []);
  assert.deepEqual(openFiles(w.root), [], 'no descriptor left open');
  // --bwlimit: the buffered loop, same result.
  const w2 = world(t);
  const again = [w2.item(0, data(1, 8 * MiB), 'a')];
  const r2 = await copy(w2, again, { throttle: new TokenBucket(1e10) });
  assert.equal(r2.result.kernelCopied, 0);
  assert.equal(r2.result.copied, 1);
  assert.equal(sha(fs.readFileSync(objectPath(w2.diskPath, again[0]?.hash ?? ''))), again[0]?.hash);
});

test('a source rewritten since the update: the loop takes its twin, or reports it changed; nothing stored under a wrong name', async (t) => {
  const w = world(t);
  const twin = w.item(0, data(4, 8 * MiB), 'first', 'second');
  const alone = w.item(1, data(5, 10 * MiB), 'alone');
  const intact = w.item(2, data(6, 12 * MiB), 'intact');
  // Same sizes, other bytes: the kernel's copy of these hashes to something else.
  fs.writeFileSync(path.join(w.root, 'src', 'first'), data(40, 8 * MiB));
  fs.writeFileSync(path.join(w.root, 'src', 'alone'), data(50, 10 * MiB));
  const { result, done, skips } = await copy(w, [twin, alone, intact]);
  assert.equal(result.kernelCopied, 1, 'only the intact file passed its kernel copy check');
  assert.deepEqual(done.map((d) => d.hash).sort(), [twin.hash, intact.hash].sort());
  assert.equal(skips.length, 1);
  assert.equal(skips[0]?.item.hash, alone.hash);
  assert.equal(skips[0]?.changed, true);
  assert.match(skips[0]?.error ?? '', /^content changed since the last update/);
  assert.equal(sha(fs.readFileSync(objectPath(w.diskPath, twin.hash))), twin.hash);
  assert.equal(fs.existsSync(objectPath(w.diskPath, alone.hash)), false);
  assert.deepEqual(tmpLeft(w), []);
});

test('a source truncated while it is copied: reported, and the run ends', { timeout: 60_000 }, async (t) => {
  const w = world(t);
  const big = w.item(0, data(7, 96 * MiB), 'shrinking');
  const after = w.item(1, data(8, 8 * MiB), 'after');
  const file = path.join(w.root, 'src', 'shrinking');
  // Cut it down while the copy runs (or just before it starts: either way it ends reported).
  const cut = setTimeout(() => fs.truncateSync(file, 2 * MiB), 15);
  t.after(() => clearTimeout(cut));
  const { done, skips } = await copy(w, [big, after]);
  assert.deepEqual(
    done.map((d) => d.hash),
    [after.hash],
  );
  assert.equal(skips.length, 1);
  assert.equal(skips[0]?.item.hash, big.hash);
  assert.match(skips[0]?.error ?? '', /shorter than catalogued|changed since the last update/);
  assert.deepEqual(tmpLeft(w), []);
});

test('Ctrl-C during kernel copies: every counted object in place, .tmp empty, no descriptor left', async (t) => {
  const w = world(t);
  const items = Array.from({ length: 12 }, (_, i) => w.item(i, data(100 + i, 24 * MiB), `f${i}`));
  const stop = new AbortController();
  const counted: CopiedObject[] = [];
  const { result } = await copy(w, items, {
    signal: stop.signal,
    fsyncBatchBytes: 24 * MiB,
    commitFiles: 1,
    commit: (b) => {
      counted.push(...b);
      stop.abort();
    },
  });
  assert.ok(counted.length >= 1 && counted.length < items.length, `stopped early: ${counted.length} counted`);
  assert.equal(result.copied, counted.length);
  for (const c of counted) assert.equal(sha(fs.readFileSync(objectPath(w.diskPath, c.hash))), c.hash);
  assert.deepEqual(tmpLeft(w), []);
  assert.deepEqual(openFiles(w.root), [], 'no descriptor left open');
});
