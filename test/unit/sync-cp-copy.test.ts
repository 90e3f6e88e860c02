/**
 * The copies by `cp` of `sync` (pipeline/copy.ts, files of 16 MiB and more, copied by `cp` run
 * from one shell): in-process, real temp folders, real processes. A copy lands under its hash,
 * read-only, with the catalogued bytes; one whose source was rewritten since the update is
 * copied again through the buffered loop, which takes the next source or reports the changed
 * one; `--bwlimit` keeps the loop; a source truncated during the copy is reported (libuv's
 * copyFile spins forever there); a full disk stops the run naming the file; no `cp` means the
 * loop; Ctrl-C (the signal) kills the copy in flight and ends the run at once, with every counted
 * object in place, nothing left in `.tmp/` and no descriptor left open. Some tests put a `cp` of
 * their own first on PATH, which does its part and then runs the real one.
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
import { CpRunner } from '../../src/pipeline/copy-io.js';
import { TokenBucket } from '../../src/pipeline/throttle.js';
import { fakeCp } from '../helpers/fake-cp.js';
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

test('files of 16 MiB and more are copied by `cp`: in place, read-only, the catalogued bytes', async (t) => {
  const w = world(t);
  const items = [
    w.item(0, data(1, 16 * MiB), 'a'),
    w.item(1, data(2, 17 * MiB + 3), 'b'),
    w.item(2, data(3, 40 * MiB), 'c'),
    // Below: the loop.
    w.item(3, data(9, 3 * MiB), 'd'),
  ];
  const { result, done, skips } = await copy(w, items);
  assert.deepEqual(skips, []);
  assert.equal(result.copiedByCp, 3);
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
  const again = [w2.item(0, data(1, 16 * MiB), 'a')];
  const r2 = await copy(w2, again, { throttle: new TokenBucket(1e10) });
  assert.equal(r2.result.copiedByCp, 0);
  assert.equal(r2.result.copied, 1);
  assert.equal(sha(fs.readFileSync(objectPath(w2.diskPath, again[0]?.hash ?? ''))), again[0]?.hash);
});

test('a source rewritten since the update: the loop takes its twin, or reports it changed; nothing stored under a wrong name', async (t) => {
  const w = world(t);
  const twin = w.item(0, data(4, 16 * MiB), 'first', 'second');
  const alone = w.item(1, data(5, 18 * MiB), 'alone');
  const intact = w.item(2, data(6, 20 * MiB), 'intact');
  // Same sizes, other bytes: the copy by `cp` of these hashes to something else.
  fs.writeFileSync(path.join(w.root, 'src', 'first'), data(40, 16 * MiB));
  fs.writeFileSync(path.join(w.root, 'src', 'alone'), data(50, 18 * MiB));
  const { result, done, skips } = await copy(w, [twin, alone, intact]);
  assert.equal(result.copiedByCp, 1, 'only the intact file passed the check of its copy by `cp`');
  assert.deepEqual(done.map((d) => d.hash).sort(), [twin.hash, intact.hash].sort());
  assert.equal(skips.length, 1);
  assert.equal(skips[0]?.item.hash, alone.hash);
  assert.equal(skips[0]?.changed, true);
  assert.match(skips[0]?.error ?? '', /^content changed since the last update/);
  assert.equal(sha(fs.readFileSync(objectPath(w.diskPath, twin.hash))), twin.hash);
  assert.equal(fs.existsSync(objectPath(w.diskPath, alone.hash)), false);
  assert.deepEqual(tmpLeft(w), []);
});

test('a source truncated during the copy: reported, and the run ends', { timeout: 60_000 }, async (t) => {
  const w = world(t);
  const big = w.item(0, data(7, 32 * MiB), 'shrinking');
  const after = w.item(1, data(8, 16 * MiB), 'after');
  // The first copy finds its source cut down after the reader checked its size.
  const flag = path.join(w.root, 'cut-once');
  fakeCp(t, `if [ ! -e ${flag} ]; then : > ${flag}; truncate -s 2M "$4"; fi`);
  const { done, skips } = await copy(w, [big, after]);
  assert.deepEqual(
    done.map((d) => d.hash),
    [after.hash],
  );
  assert.equal(skips.length, 1);
  assert.equal(skips[0]?.item.hash, big.hash);
  assert.match(skips[0]?.error ?? '', /^shorter than catalogued \(2097152 of 33554432 bytes\)/);
  assert.deepEqual(tmpLeft(w), []);
});

test('a full disk stops the run naming the file; no cp means the loop', async (t) => {
  const w = world(t);
  const items = [w.item(0, data(10, 16 * MiB), 'a'), w.item(1, data(11, 16 * MiB), 'b')];
  // Done as coreutils says it, in the C locale the copier asks for.
  fakeCp(t, `echo "cp: error writing '$5': No space left on device" >&2; exit 1`);
  await assert.rejects(copy(w, items), (err: NodeJS.ErrnoException) => {
    assert.equal(err.code, 'ENOSPC');
    assert.match(err.message, /distbackup-objects\/\.tmp\/[0-9a-f]{64}\.[0-9a-f]+/);
    return true;
  });
  assert.deepEqual(tmpLeft(w), []);
  const w2 = world(t);
  const more = [w2.item(0, data(12, 16 * MiB), 'a'), w2.item(1, data(13, 16 * MiB), 'b')];
  fakeCp(t, 'exit 127');
  const { result, skips } = await copy(w2, more);
  assert.deepEqual(skips, []);
  assert.equal(result.copiedByCp, 0);
  assert.equal(result.copied, 2);
  for (const it of more) assert.equal(sha(fs.readFileSync(objectPath(w2.diskPath, it.hash))), it.hash);
});

test('progress moves while `cp` copies a file, and ends at the bytes copied', { timeout: 60_000 }, async (t) => {
  const w = world(t);
  const big = w.item(0, data(30, 24 * MiB), 'big');
  // 6 MiB written, then a pause longer than the progress poll, then the whole file.
  fakeCp(t, `head -c ${6 * MiB} "$4" > "$5" && sleep 2`);
  const seen: [number, number][] = [];
  const { result, done } = await copy(w, [big], { onProgress: (b, f) => seen.push([b, f]) });
  assert.equal(result.copiedByCp, 1);
  assert.deepEqual(
    done.map((d) => d.hash),
    [big.hash],
  );
  const during = seen.filter(([b]) => b >= 6 * MiB && b < 24 * MiB);
  assert.ok(during.length > 0, `no progress between 6 and 24 MiB while cp ran: ${JSON.stringify(seen)}`);
  for (let i = 1; i < seen.length; i++) {
    assert.ok((seen[i]?.[0] ?? 0) >= (seen[i - 1]?.[0] ?? 0), `progress went back: ${JSON.stringify(seen)}`);
  }
  assert.equal(seen[seen.length - 1]?.[0], 24 * MiB);
});

test('Ctrl-C kills the copy in flight: the run ends at once, every counted object in place, .tmp empty', async (t) => {
  const w = world(t);
  const first = w.item(0, data(20, 16 * MiB), 'first');
  const slow = w.item(1, data(21, 16 * MiB), 'slow');
  // The second copy would take a minute.
  fakeCp(
    t,
    `case "$4" in */fd/*) [ -e ${path.join(w.root, 'one-done')} ] && sleep 60; : > ${path.join(w.root, 'one-done')};; esac`,
  );
  const stop = new AbortController();
  const counted: CopiedObject[] = [];
  const t0 = Date.now();
  // Ctrl-C once the first is counted: by then the second copy has long begun (the reader moves
  // on as soon as it has handed the first one over).
  const { result } = await copy(w, [first, slow], {
    signal: stop.signal,
    commitFiles: 1,
    commit: (b) => {
      counted.push(...b);
      stop.abort();
    },
  });
  const took = Date.now() - t0;
  assert.ok(took < 20_000, `ended ${took} ms after its start, not after the minute of the copy in flight`);
  assert.deepEqual(
    counted.map((c) => c.hash),
    [first.hash],
  );
  assert.equal(result.copied, 1);
  assert.equal(sha(fs.readFileSync(objectPath(w.diskPath, first.hash))), first.hash);
  assert.deepEqual(tmpLeft(w), []);
  assert.deepEqual(openFiles(w.root), [], 'no descriptor left open');
});

test('the shell of the copies killed alone: the cp it ran ends with it, the copy is rejected', async (t) => {
  const w = world(t);
  const marker = path.join(w.root, 'cp-pid');
  fakeCp(t, `echo $$ > ${marker}; sleep 60`);
  const src = path.join(w.root, 'src', 'a');
  fs.writeFileSync(src, data(30, MiB));
  const dst = path.join(w.root, 'b');
  const inFd = fs.openSync(src, 'r');
  const outFd = fs.openSync(dst, fs.constants.O_RDONLY | fs.constants.O_CREAT | fs.constants.O_EXCL, 0o600);
  t.after(() => {
    fs.closeSync(inFd);
    fs.closeSync(outFd);
  });
  const r = new CpRunner();
  t.after(() => r.close());
  const copy = r.copy(inFd, outFd);
  for (let i = 0; i < 200 && !fs.existsSync(marker); i++) await new Promise((res) => setTimeout(res, 25));
  const cpPid = Number(fs.readFileSync(marker, 'utf8'));
  // Someone (the OOM killer, a `kill PID`) ends the shell only, not its group.
  process.kill(r.pid ?? 0, 'SIGKILL');
  await assert.rejects(copy, { code: 'ECOPY' });
  // The cp it ran is gone too: it could otherwise open a descriptor number reused since.
  let alive = true;
  for (let i = 0; i < 100 && alive; i++) {
    try {
      process.kill(cpPid, 0);
      await new Promise((res) => setTimeout(res, 20));
    } catch {
      alive = false;
    }
  }
  assert.equal(alive, false, 'the cp of the killed shell still runs');
});
