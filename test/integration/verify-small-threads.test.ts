/**
 * verify's small-object threads (src/verify/small-check.ts): with them, both profiles find the
 * same damage as the checks on the calling thread, honour the budget, the deadline and Ctrl-C,
 * and start no thread when little is planned. `checkSmallBatch`, their logic, runs in-process
 * here on real files. Real objects in temp folders, real worker threads, real SQLite; the
 * thresholds are set by the tests (0 or Infinity), so nothing depends on the machine's speed.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { type TestContext, test } from 'node:test';
import { type Catalog, openCatalog } from '../../src/catalog/db.js';
import { objectPath } from '../../src/disk/layout.js';
import { checkSmallBatch, fromAnswer, inodesOf, smallBatch, smallChecker } from '../../src/verify/small-check.js';
import { runVerify, type VerifyOptions } from '../../src/verify/verify.js';
import { onePoolDisk, sourceTreeIn } from '../helpers/pool.js';
import { tempDir } from '../helpers/tmp.js';
import { bigOnes, damage, findings, stamps } from '../helpers/verify.js';

/** A pool of one disk with `files` small objects (1–71 KB) and four damaged ones. */
function damagedPool(t: TestContext, files = 40) {
  const base = tempDir(t);
  const src = sourceTreeIn(base, files);
  const cat = openCatalog(path.join(base, 'home'));
  t.after(() => cat.close());
  const disk = path.join(base, 'disk');
  const hashes = onePoolDisk(cat, src, disk);
  const [flipped, truncated, missing] = damage(disk, hashes);
  // The biggest object left whole (the truncated one is 10 bytes now).
  const fifo = bigOnes(
    disk,
    hashes.filter((h) => h !== missing),
  )[1] as string;
  fs.rmSync(objectPath(disk, fifo));
  const mkfifo = spawnSync('mkfifo', [objectPath(disk, fifo)]);
  return { base, cat, disk, hashes, flipped, truncated, missing, fifo, hasFifo: mkfifo.status === 0 };
}

/** Copies on the disk that carry a stamp. */
function stamped(cat: Catalog): number {
  return [...stamps(cat).values()].filter((v) => v !== null).length;
}

test('with the small-object threads both profiles find what the calling thread finds, and quarantine it', async (t) => {
  const runs: [string, VerifyOptions][] = [
    ['hdd, threads', { profile: 'hdd', smallThreadsMinObjects: 0 }],
    ['ssd, threads', { profile: 'ssd', smallThreadsMinObjects: 0 }],
    ['hdd, calling thread', { profile: 'hdd', smallThreadsMinObjects: Number.POSITIVE_INFINITY }],
    ['ssd, calling thread', { profile: 'ssd', smallThreadsMinObjects: Number.POSITIVE_INFINITY }],
  ];
  const seen = new Map<string, ReturnType<typeof findings>>();
  for (const [label, opts] of runs) {
    const p = damagedPool(t);
    const doc = await runVerify(p.cat, { name: 'd1', ...opts });
    const threads = opts.smallThreadsMinObjects === 0 ? (opts.profile === 'ssd' ? 2 : 1) : 0;
    assert.equal(doc.workerThreads, threads, label);
    assert.equal(doc.checked, p.hashes.length, label);
    const bad = p.hasFifo ? [p.flipped, p.truncated, p.fifo] : [p.flipped, p.truncated];
    assert.deepEqual([...doc.bad].sort(), bad.sort(), label);
    assert.deepEqual(doc.missing, [p.missing], label);
    if (p.hasFifo) {
      assert.match(doc.badDetails.find((b) => b.hash === p.fifo)?.problem ?? '', /not a regular file/, label);
    }
    assert.ok(!fs.existsSync(objectPath(p.disk, p.flipped)), `${label}: moved to quarantine`);
    assert.equal(stamped(p.cat), p.hashes.length - bad.length - 1, `${label}: every good copy stamped`);
    seen.set(label, findings(doc));
  }
  const hashesOf = (f: ReturnType<typeof findings>) => ({
    ...f,
    bad: f.bad.length,
    missing: f.missing.length,
    problems: f.problems.length,
  });
  const [first, ...rest] = [...seen.values()];
  for (const f of rest) assert.deepEqual(hashesOf(f), hashesOf(first as ReturnType<typeof findings>));
});

test('with the small-object threads --percent checks its share, least recently verified first, and the next run the rest', async (t) => {
  for (const profile of ['hdd', 'ssd'] as const) {
    const p = damagedPool(t, 60);
    const half = await runVerify(p.cat, { name: 'd1', profile, percent: 50, smallThreadsMinObjects: 0 });
    assert.equal(half.stoppedBy, 'percent', profile);
    assert.equal(half.checked, Math.ceil((p.hashes.length * 50) / 100), profile);
    const first = stamps(p.cat);
    const other = await runVerify(p.cat, { name: 'd1', profile, percent: 50, smallThreadsMinObjects: 0 });
    const second = stamps(p.cat);
    const again = [...second].filter(([h, v]) => v !== first.get(h)).map(([h]) => h);
    assert.equal(again.length, other.checked - other.bad.length - other.missing.length, profile);
    for (const h of again) assert.equal(first.get(h), null, `${profile}: ${h} was not checked by the first half`);
    // Never checked: what the second half's budget (of the copies still counted) left over.
    const never = [...second.values()].filter((v) => v === null).length;
    assert.equal(never, p.hashes.length - half.checked - other.checked, profile);
  }
});

test('with the small-object threads a deadline already past starts nothing and leaves the run open', async (t) => {
  const p = damagedPool(t);
  const doc = await runVerify(p.cat, { name: 'd1', profile: 'ssd', maxTimeMs: 0, smallThreadsMinObjects: 0 });
  assert.equal(doc.stoppedBy, 'max-time');
  assert.equal(doc.checked, 0);
  assert.equal(doc.remaining, p.hashes.length);
  const next = await runVerify(p.cat, { name: 'd1', profile: 'ssd', smallThreadsMinObjects: 0 });
  assert.equal(next.checked, p.hashes.length);
});

test('with the small-object threads Ctrl-C stops the batches in flight, commits what was checked, and the next run checks only the rest', async (t) => {
  for (const profile of ['hdd', 'ssd'] as const) {
    const p = damagedPool(t, 1200);
    const ac = new AbortController();
    // Ctrl-C once the first 100 results are in: the batches in flight stop before their next object.
    const progress = {
      update: (_bytes: number, files: number): void => {
        if (files === 100) ac.abort(new Error('interrupted'));
      },
      setTotals: (): void => {},
      note: (): void => {},
      stop: (): void => {},
    };
    const first = await runVerify(p.cat, {
      name: 'd1',
      profile,
      signal: ac.signal,
      progress,
      smallThreadsMinObjects: 0,
    });
    assert.equal(first.stoppedBy, 'interrupted', profile);
    assert.ok(first.checked >= 100 && first.checked < p.hashes.length, `${profile}: checked ${first.checked}`);
    const gone = first.bad.length + first.missing.length;
    assert.equal(stamped(p.cat), first.checked - gone, `${profile}: what was checked is recorded`);
    const next = await runVerify(p.cat, { name: 'd1', profile, smallThreadsMinObjects: 0 });
    assert.ok(next.resumedPassMs !== null, profile);
    assert.equal(first.checked + next.checked, p.hashes.length, `${profile}: the rest, and only the rest`);
  }
});

test('the small-object threads do not start for a run that plans fewer objects than the threshold', async (t) => {
  const p = damagedPool(t);
  const doc = await runVerify(p.cat, { name: 'd1', profile: 'ssd', threadMinMs: Number.POSITIVE_INFINITY });
  assert.equal(doc.workerThreads, 0, 'a default run of 40-odd objects checks them on the calling thread');
  assert.equal(doc.checked, p.hashes.length);
});

test('checkSmallBatch checks in order, reads a bad object twice, and stops at the stop flag or the deadline', (t) => {
  const p = damagedPool(t, 8);
  const objectsDir = path.dirname(path.dirname(objectPath(p.disk, p.flipped)));
  const sizes = new Map(
    p.hashes.map((h) => [h, h === p.missing || h === p.fifo ? 0 : fs.statSync(objectPath(p.disk, h)).size]),
  );
  const good = p.hashes.filter((h) => ![p.flipped, p.truncated, p.missing, p.fifo].includes(h));
  const order = [good[0] as string, p.flipped, p.truncated, p.missing, good[1] as string];
  // The catalogued size of the truncated one is its size before (10 bytes now).
  const tasks = order.map((hash) => ({ hash, sizeBytes: hash === p.truncated ? 10_000_000 : (sizes.get(hash) ?? 0) }));
  const checker = smallChecker(256 * 1024);
  const answers = checkSmallBatch(smallBatch(objectsDir, tasks, null), checker).map(fromAnswer);
  assert.deepEqual(
    answers.map((r) => r.status),
    ['ok', 'bad', 'bad', 'missing', 'ok'],
  );
  assert.equal(answers[1]?.bytesRead, 2 * (sizes.get(p.flipped) ?? 0), 'a bad object is read twice');
  const stop = new Int32Array(new SharedArrayBuffer(4));
  Atomics.store(stop, 0, 1);
  assert.deepEqual(checkSmallBatch(smallBatch(objectsDir, tasks, null), checker, stop), []);
  assert.deepEqual(checkSmallBatch(smallBatch(objectsDir, tasks, Date.now() - 1), checker), []);
});

test('inodesOf gives each object its inode number, never following a link; missing ones and those after the stop flag sort last', (t) => {
  const p = damagedPool(t, 8);
  const good = p.hashes.filter((h) => ![p.flipped, p.truncated, p.missing, p.fifo].includes(h));
  const link = path.join(path.dirname(objectPath(p.disk, p.flipped)), 'a-link');
  fs.symlinkSync(objectPath(p.disk, good[0] as string), link);
  const paths = [objectPath(p.disk, good[0] as string), objectPath(p.disk, p.missing), link];
  const inos = inodesOf(paths);
  assert.equal(inos[0], fs.lstatSync(paths[0] as string).ino);
  assert.equal(inos[1], Number.MAX_SAFE_INTEGER);
  assert.equal(inos[2], fs.lstatSync(link).ino, 'the link itself, not its target');
  assert.notEqual(inos[2], inos[0]);
  const stop = new Int32Array(new SharedArrayBuffer(4));
  Atomics.store(stop, 0, 1);
  assert.deepEqual(
    [...inodesOf(paths, stop)],
    [Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER],
  );
});
