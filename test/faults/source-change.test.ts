/**
 * Fault 5: sources that change behind distbackup's back (RELIABILITY.md test 13, failure mode 7).
 * Between `update` and `sync` a file is rewritten with new bytes of the same size and its mtime
 * put back, another truncated, another deleted; and during a sync a large file is rewritten in
 * place and another appended to while they are being read. An object is never stored under a
 * hash its bytes do not have (I1); each such file is listed in `skipped` and the run exits 1;
 * the next `update` notices the change and the next sync completes.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { countFault, countViolations, expectExit, noteFault, rngFor, sleep, startCli } from '../helpers/faults.js';
import { makeFixture, seededBytes } from '../helpers/faults-fixture.js';
import { skipUnlessCommands } from '../helpers/faults-kill.js';
import { checkClean, checkInvariants, groundTruth } from '../helpers/invariants.js';
import { sweepStaleMounts } from '../helpers/mounts.js';

sweepStaleMounts();

const FAULT = 'source changes between update and sync, or while copied';

interface SyncJson {
  skipped: { path: string; error: string }[];
}

test('a source rewritten (same size, mtime put back), truncated or deleted after update: skipped, never stored', {
  timeout: 120_000,
}, (t) => {
  if (skipUnlessCommands(t, ['update', 'sync'])) return;
  const rng = rngFor('source-change');
  const fx = makeFixture(t, { rng, scale: 0.2, only: ['d1'] });
  if (fx === null) return;
  fx.update();
  // Files whose content no other file shares, so no other source can stand in for them.
  const counts = new Map<string, number>();
  const hashOf = (b: Buffer): string => createHash('sha256').update(b).digest('hex');
  for (const c of fx.tree.values()) counts.set(hashOf(c), (counts.get(hashOf(c)) ?? 0) + 1);
  const unique = [...fx.tree.entries()]
    .filter(([k, c]) => c.length > 5000 && counts.get(hashOf(c)) === 1 && !k.includes('hardlink'))
    .map(([k]) => k)
    .sort();
  const [rewritten, truncated, deleted] = [unique[0], unique[1], unique[2]];
  assert.ok(rewritten !== undefined && truncated !== undefined && deleted !== undefined);
  const oldHashes = [rewritten, truncated, deleted].map((k) => hashOf(fx.tree.get(k) ?? Buffer.alloc(0)));
  const rp = path.join(fx.src, rewritten);
  const st = fs.statSync(rp);
  fs.writeFileSync(rp, seededBytes('rewritten', st.size));
  fs.utimesSync(rp, st.atime, st.mtime);
  fs.truncateSync(path.join(fx.src, truncated), 100);
  fs.rmSync(path.join(fx.src, deleted));
  countFault(
    FAULT,
    'rewrite (mtime put back), truncate, delete between update and sync; rewrite/append during the copy',
    3,
  );
  const before = groundTruth(fx);
  const v: string[] = [];
  const r = fx.json<SyncJson>(['sync', 'd1']);
  if (r.code !== 1) v.push(`sync exited ${r.code}, expected 1 (files skipped)`);
  const skipped = (r.json?.skipped ?? []).map((s) => s.path).join('\n');
  for (const k of [rewritten, truncated, deleted]) if (!skipped.includes(k)) v.push(`${k} not listed in skipped`);
  const mid = checkInvariants(fx, { before });
  v.push(...mid.violations);
  for (const h of oldHashes)
    if (mid.truth.disks[0]?.objects.has(h)) v.push(`an object was stored under the old hash ${h.slice(0, 12)}…`);
  // update sees all three changes; then sync completes.
  const u = fx.json<{ changed: number; removed: number }>(['update']);
  if ((u.json?.changed ?? 0) < 2)
    v.push(`update saw ${u.json?.changed} changed files, expected the rewritten and the truncated one`);
  if ((u.json?.removed ?? 0) < 1) v.push(`update saw ${u.json?.removed} removed files, expected 1`);
  const again = fx.run(['sync', 'd1', '--quiet']);
  if (again.code !== 0) v.push(`sync after update: exit ${again.code}: ${again.stderr.slice(0, 300)}`);
  const end = checkInvariants(fx, { before, disksWithCatalogue: ['d1'] });
  v.push(...end.violations, ...checkClean(end.truth));
  const held = end.truth.disks[0]?.objects;
  for (const h of end.truth.home?.referenced ?? [])
    if (held?.has(h) !== true) v.push(`referenced ${h.slice(0, 12)}… not on d1`);
  countViolations(FAULT, v);
  assert.deepEqual(v, []);
});

test('files rewritten in place and appended to while sync reads them: never stored under a wrong name', {
  timeout: 120_000,
}, async (t) => {
  if (skipUnlessCommands(t, ['update', 'sync'])) return;
  const rng = rngFor('source-change-live');
  const fx = makeFixture(t, { rng, scale: 0.1, only: ['d1'] });
  if (fx === null) return;
  const big = path.join(fx.src, 'big-rewritten.bin');
  const grow = path.join(fx.src, 'big-appended.bin');
  fs.writeFileSync(big, seededBytes('big', 6 << 20));
  fs.writeFileSync(grow, seededBytes('grow', 4 << 20));
  // d1 was sized for the fixture alone: give it room for the two big files, or they are never copied.
  expectExit(fx.run(['disk', 'set', 'd1', '--size', String(fx.allocatedBytes * 2 + (32 << 20))]), 0, 'disk set');
  fx.update();
  const before = groundTruth(fx);
  const s = startCli(fx.dataDir, ['sync', 'd1', '--json', '--bwlimit', '4M'], { timeoutMs: 90_000 });
  let n = 0;
  const fd = fs.openSync(big, 'r+');
  const timer = setInterval(() => {
    n += 1;
    fs.writeSync(fd, seededBytes(`chunk${n}`, 4096), 0, 4096, rng.int(0, (6 << 20) - 4096));
    fs.appendFileSync(grow, seededBytes(`tail${n}`, 1024));
  }, 20);
  let r: Awaited<typeof s.done>;
  try {
    r = await s.done;
  } finally {
    clearInterval(timer);
    fs.closeSync(fd);
  }
  countFault(
    FAULT,
    'rewrite (mtime put back), truncate, delete between update and sync; rewrite/append during the copy',
    2,
  );
  const v: string[] = [];
  let doc: SyncJson | undefined;
  try {
    doc = JSON.parse(r.stdout) as SyncJson;
  } catch {
    v.push(`sync printed no JSON (exit ${r.code}): ${r.stderr.slice(0, 300)}`);
  }
  const skipped = (doc?.skipped ?? []).map((x) => x.path).join('\n');
  const mid = checkInvariants(fx, { before });
  v.push(...mid.violations);
  // The rewritten file changes from the first moments of the run: it must be skipped. The
  // appended one keeps its catalogued first bytes: copying exactly those is right too (I1 checks).
  if (!skipped.includes(path.basename(big)))
    v.push('big-rewritten.bin changed while copied but is not listed in skipped');
  noteFault(FAULT, `live rewrite: sync exited ${r.code}, skipped: ${skipped.replace(/\n/g, ', ') || 'none'}`);
  if (skipped.length > 0 && r.code !== 1) v.push(`files were skipped but sync exited ${r.code}`);
  await sleep(10);
  fx.update();
  const again = fx.run(['sync', 'd1', '--quiet']);
  if (again.code !== 0) v.push(`sync after update: exit ${again.code}: ${again.stderr.slice(0, 300)}`);
  const end = checkInvariants(fx, { before, disksWithCatalogue: ['d1'] });
  v.push(...end.violations, ...checkClean(end.truth));
  countViolations(FAULT, v);
  assert.deepEqual(v, []);
});
