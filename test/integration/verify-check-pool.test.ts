/**
 * The ssd profile's worker thread starts only when enough checking is left (check-pool.ts):
 * a pool told that much is planned starts it and checks on it; one told that little is planned
 * never does; and a verify gives the same findings with the thread, without it, and with the
 * hdd profile. Real objects in temp folders, the real piscina worker, real SQLite. The start is
 * decided from the bytes left over the measured rate; the tests choose the bytes, the clock or
 * the threshold (0 or Infinity), so that no result depends on the machine's speed.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { type TestContext, test } from 'node:test';
import { openCatalog } from '../../src/catalog/db.js';
import { objectPath } from '../../src/disk/layout.js';
import {
  type CheckPool,
  type CheckTask,
  createInlineCheckPool,
  createThreadCheckPool,
  INLINE_BELOW_BYTES,
  PRIOR_BYTES_PER_MS,
  THREAD_MIN_MS,
} from '../../src/verify/check-pool.js';
import { runVerify, type VerifyDoc } from '../../src/verify/verify.js';
import { onePoolDisk, sourceTreeIn } from '../helpers/pool.js';
import { tempDir } from '../helpers/tmp.js';
import { findings } from '../helpers/verify.js';

/** A source tree of `files` files; each run below catalogues it afresh (never-verified copies). */
function setup(t: TestContext, files = 16) {
  const base = tempDir(t);
  return { base, src: sourceTreeIn(base, files) };
}

/** A fresh pool of one disk holding `src`'s files, with one flipped byte and one missing object. */
function damagedPool(t: TestContext, base: string, src: string, name: string) {
  const cat = openCatalog(path.join(base, `home-${name}`));
  t.after(() => cat.close());
  const disk = path.join(base, `disk-${name}`);
  const hashes = onePoolDisk(cat, src, disk);
  const sizes = new Map(hashes.map((h) => [h, fs.statSync(objectPath(disk, h)).size]));
  const [flipped, missing] = [...hashes].sort((a, b) => (sizes.get(b) ?? 0) - (sizes.get(a) ?? 0)) as [string, string];
  const fp = objectPath(disk, flipped);
  const bytes = fs.readFileSync(fp);
  bytes[7] = (bytes[7] ?? 0) ^ 0x10;
  fs.writeFileSync(fp, bytes);
  fs.rmSync(objectPath(disk, missing));
  return { cat, disk, hashes, sizes, flipped, missing };
}

/** Check `tasks` two at a time, as verify's two lanes do; the status of each by hash. */
async function checkAll(pool: CheckPool, tasks: CheckTask[]): Promise<Map<string, string>> {
  const got = new Map<string, string>();
  for (let i = 0; i < tasks.length; i += 2) {
    const pair = tasks.slice(i, i + 2);
    const rs = await Promise.all(pair.map((task) => pool.check(task)));
    for (const [k, task] of pair.entries()) got.set(task.hash, rs[k]?.status ?? '?');
  }
  return got;
}

test('a pool with a lot left to check starts its worker thread and checks there, with the same results; with little left it never does', {
  timeout: 120_000,
}, async (t) => {
  const { base, src } = setup(t);
  const { disk, hashes, sizes, flipped, missing } = damagedPool(t, base, src, 'pool');
  const tasks = hashes.map((hash) => ({ path: objectPath(disk, hash), hash, sizeBytes: sizes.get(hash) ?? 0 }));
  const expected = await checkAll(createInlineCheckPool(2), tasks);
  assert.equal(expected.get(flipped), 'bad');
  assert.equal(expected.get(missing), 'missing');
  // A clock that moves 100 ms a reading: each check seems slow, so the rate is known at once
  // and the decision rests on the bytes left alone.
  let clock = 0;
  const nowMs = (): number => {
    clock += 100;
    return clock;
  };
  // Every object to the thread once it is up, however small (the default checks small ones here).
  const big = createThreadCheckPool(2, { plannedBytes: 1024 ** 4, nowMs, inlineBelowBytes: 0 });
  t.after(() => big.destroy());
  // Until the thread has started both lanes run here: check the objects again until some went
  // to the thread (each round compared with the calling thread's results).
  for (let round = 0; round === 0 || big.threadChecks === 0; round++) {
    assert.deepEqual(await checkAll(big, tasks), expected, `round ${round}: the same results`);
    assert.equal(big.threadsStarted, 1, 'a terabyte left: the worker thread started');
  }
  // By default objects this small are checked here with synchronous reads, however much is left.
  const inline = createThreadCheckPool(2, { plannedBytes: 1024 ** 4, nowMs });
  t.after(() => inline.destroy());
  assert.ok(
    tasks.every((task) => task.sizeBytes < INLINE_BELOW_BYTES),
    'the test tree holds small objects only',
  );
  for (let round = 0; round < 3; round++) assert.deepEqual(await checkAll(inline, tasks), expected);
  assert.equal(inline.threadsStarted, 0, 'small objects: no thread started for them');
  assert.equal(inline.threadChecks, 0, 'small objects: no check went to a thread');
  const small = createThreadCheckPool(2, { plannedBytes: 0, nowMs });
  t.after(() => small.destroy());
  assert.deepEqual(await checkAll(small, tasks), expected);
  assert.equal(small.threadsStarted, 0, 'nothing left once the rate is known: no worker thread');
  assert.equal(small.threadChecks, 0);
});

test('verify --profile ssd finds the same with its worker thread, without it, and as the hdd profile', async (t) => {
  const { base, src } = setup(t, 24);
  const docs = new Map<string, VerifyDoc>();
  const runs = [
    // Every object goes to the thread, however small (by default small ones are checked here).
    ['ssd, thread at once', { profile: 'ssd', threadMinMs: 0, threadInlineBelowBytes: 0 }],
    ['ssd, never a thread', { profile: 'ssd', threadMinMs: Number.POSITIVE_INFINITY }],
    ['ssd, default', { profile: 'ssd' }],
    ['hdd', { profile: 'hdd' }],
  ] as const;
  let expected: { flipped: string; missing: string } | undefined;
  for (const [name, opts] of runs) {
    const p = damagedPool(t, base, src, name.replace(/\W+/g, '-'));
    expected ??= { flipped: p.flipped, missing: p.missing };
    assert.deepEqual({ flipped: p.flipped, missing: p.missing }, expected, 'the same tree gives the same objects');
    const doc = await runVerify(p.cat, { name: 'd1', ...opts });
    docs.set(name, doc);
    assert.deepEqual(doc.bad, [p.flipped], name);
    assert.deepEqual(doc.missing, [p.missing], name);
    assert.equal(doc.checked, p.hashes.length, name);
  }
  const threaded = docs.get('ssd, thread at once') as VerifyDoc;
  assert.equal(threaded.workerThreads, 1, 'threshold 0: the worker starts once the rate is measured');
  assert.equal(docs.get('ssd, never a thread')?.workerThreads, 0);
  assert.equal(docs.get('hdd')?.workerThreads, 0);
  for (const [name, doc] of docs) assert.deepEqual(findings(doc), findings(threaded), name);
});

test('so much planned that even the fastest hashing needs the thread: it starts at the first check, and a large object waits for it', {
  timeout: 120_000,
}, async (t) => {
  const { base, src } = setup(t, 8);
  const { disk, hashes, sizes, flipped, missing } = damagedPool(t, base, src, 'prior');
  const tasks = hashes.map((hash) => ({ path: objectPath(disk, hash), hash, sizeBytes: sizes.get(hash) ?? 0 }));
  const expected = await checkAll(createInlineCheckPool(2), tasks);
  // A clock that never moves: no rate is ever measured, so only the planned bytes can start it.
  const frozen = (): number => 0;
  const pool = createThreadCheckPool(2, {
    plannedBytes: PRIOR_BYTES_PER_MS * THREAD_MIN_MS,
    nowMs: frozen,
    inlineBelowBytes: 0,
    waitBytes: 0,
  });
  t.after(() => pool.destroy());
  const got = await checkAll(pool, tasks);
  assert.deepEqual(got, expected);
  assert.equal(got.get(flipped), 'bad');
  assert.equal(got.get(missing), 'missing');
  assert.equal(pool.threadsStarted, 1, 'started before any rate was known');
  // Two lanes at a time: one runs here, the other waits for the starting thread.
  assert.equal(
    pool.threadChecks,
    Math.floor(tasks.length / 2),
    'every second check went to the thread, started or not',
  );
  // One byte less than that, and nothing measured: no thread.
  const under = createThreadCheckPool(2, {
    plannedBytes: PRIOR_BYTES_PER_MS * THREAD_MIN_MS - 1,
    nowMs: frozen,
    inlineBelowBytes: 0,
    waitBytes: 0,
  });
  t.after(() => under.destroy());
  assert.deepEqual(await checkAll(under, tasks), expected);
  assert.equal(under.threadsStarted, 0);
});
