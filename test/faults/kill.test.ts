/**
 * Fault 1 (update, verify, restore): SIGKILL at uniform-random times over a measured fault-free
 * run, then a re-run without the fault must exit as the fault-free run did and reach its state
 * (I5), with I1–I4 after every kill. The sync kills are in kill-sync.test.ts.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { cli, countFault, countViolations, expectExit, rngFor, SOAK } from '../helpers/faults.js';
import { makeFixture } from '../helpers/faults-fixture.js';
import { killAfter, randomDelays, skipUnlessCommands, stopped } from '../helpers/faults-kill.js';
import {
  checkInvariants,
  diffStates,
  groundTruth,
  plantCanaries,
  readHome,
  summarize,
  treeDigest,
} from '../helpers/invariants.js';
import { sweepStaleMounts } from '../helpers/mounts.js';

sweepStaleMounts();

test('SIGKILL of update at random times; the re-run catalogues exactly what a fault-free run does', {
  timeout: 120_000,
}, async (t) => {
  if (skipUnlessCommands(t, ['update'])) return;
  const FAULT = 'SIGKILL update';
  const rng = rngFor('kill-update');
  const fx = makeFixture(t, { rng, scale: 1, only: [] });
  if (fx === null) return;
  fx.save('base');
  const ref = cli(fx.dataDir, ['update', '--quiet']);
  expectExit(ref, 0, 'reference update');
  const refFiles = readHome(fx.dataDir)?.files ?? new Map();
  let landed = 0;
  const all: string[] = [];
  for (const d of randomDelays(rng, 3 * SOAK, ref.ms)) {
    fx.restore('base');
    if (stopped(t, FAULT)) return;
    const o = await killAfter(fx, ['update', '--quiet'], d);
    if (stopped(t, FAULT)) return;
    if (o.killed) landed += 1;
    const label = `update killed after ${d} ms`;
    const home = readHome(fx.dataDir);
    if (home !== null && home.integrity !== 'ok') all.push(`${label}: I4 home ${home.integrity}`);
    const again = cli(fx.dataDir, ['update', '--quiet']);
    if (again.code !== 0) all.push(`${label}: re-run exited ${again.code}: ${again.stderr.slice(0, 300)}`);
    const files = readHome(fx.dataDir)?.files ?? new Map();
    let diff = 0;
    for (const [k, h] of refFiles) if (files.get(k) !== h) diff += 1;
    if (files.size !== refFiles.size || diff > 0) {
      all.push(`${label}: I5 ${files.size} files catalogued (reference ${refFiles.size}), ${diff} with another hash`);
    }
  }
  countFault(FAULT, 'SIGKILL at random times over a measured update', landed);
  countViolations(FAULT, all);
  assert.deepEqual(all, []);
});

test('SIGKILL of verify at random times; bad objects end quarantined and uncounted, never deleted', {
  timeout: 120_000,
}, async (t) => {
  if (skipUnlessCommands(t, ['update', 'sync', 'verify'])) return;
  const FAULT = 'SIGKILL verify';
  const rng = rngFor('kill-verify');
  const fx = makeFixture(t, { rng, scale: 0.5, only: ['d1', 'd2'] });
  if (fx === null) return;
  fx.update();
  fx.sync('d1');
  fx.sync('d2');
  // Rot two objects of d1 that d2 also holds (so they keep a copy).
  const d1 = groundTruth(fx).disks[0];
  const d2 = groundTruth(fx).disks[1];
  const shared = [...(d1?.objects.keys() ?? [])].filter((h) => d2?.objects.has(h)).sort();
  const rotten = [shared[0], shared[1]].filter((h): h is string => h !== undefined);
  for (const h of rotten) {
    const p = path.join(fx.disk('d1').path, 'distbackup-objects', h.slice(0, 3), h);
    fs.chmodSync(p, 0o644);
    const fd = fs.openSync(p, 'r+');
    fs.writeSync(fd, Buffer.from([0x55]), 0, 1, 10);
    fs.closeSync(fd);
  }
  fx.save('base');
  const planted = new Set(rotten);
  const ref = cli(fx.dataDir, ['verify', 'd1', '--quiet']);
  if (ref.code !== 3) assert.fail(`reference verify: exit ${ref.code}, expected 3: ${ref.stderr}`);
  const refState = summarize(groundTruth(fx));
  const refCounted = [...(readHome(fx.dataDir)?.copies.get('d1') ?? [])].sort();
  let landed = 0;
  const all: string[] = [];
  for (const d of randomDelays(rng, 3 * SOAK, ref.ms)) {
    fx.restore('base');
    const before = groundTruth(fx);
    if (stopped(t, FAULT)) return;
    const o = await killAfter(fx, ['verify', 'd1', '--quiet'], d);
    if (stopped(t, FAULT)) return;
    if (o.killed) landed += 1;
    const label = `verify killed after ${d} ms`;
    all.push(...checkInvariants(fx, { before, planted }).violations.map((x) => `${label}: ${x}`));
    const again = cli(fx.dataDir, ['verify', 'd1', '--quiet']);
    if (again.code !== 0 && again.code !== 3) all.push(`${label}: re-run exited ${again.code}: ${again.stderr}`);
    const after = checkInvariants(fx, { before, disksWithCatalogue: ['d1', 'd2'] });
    all.push(...after.violations.map((x) => `${label} after the re-run: ${x}`));
    all.push(...diffStates(refState, summarize(after.truth)).map((x) => `${label}: ${x}`));
    const counted = [...(after.truth.home?.copies.get('d1') ?? [])].sort();
    if (JSON.stringify(counted) !== JSON.stringify(refCounted))
      all.push(`${label}: I5 d1 counts differ from the reference`);
    const q = after.truth.disks[0]?.quarantine.length ?? 0;
    if (q < rotten.length)
      all.push(`${label}: ${q} files in .quarantine/, expected the ${rotten.length} rotten objects`);
  }
  countFault(FAULT, 'SIGKILL at random times over a measured verify (2 rotten objects)', landed);
  countViolations(FAULT, all);
  assert.deepEqual(all, []);
});

test('SIGKILL of restore at random times; the re-run completes byte-exact and writes nothing outside DEST', {
  timeout: 120_000,
}, async (t) => {
  if (skipUnlessCommands(t, ['update', 'sync', 'restore'])) return;
  const FAULT = 'SIGKILL restore';
  const rng = rngFor('kill-restore');
  const fx = makeFixture(t, { rng, scale: 0.5, only: ['d1'] });
  if (fx === null) return;
  fx.update();
  fx.sync('d1');
  const dest = path.join(fx.root, 'restore', 'dest');
  const canaries = plantCanaries([path.dirname(dest), fx.outside], [dest]);
  const args = ['restore', '--to', dest, '--disk', fx.disk('d1').path, '--quiet'];
  const ref = cli(fx.dataDir, args);
  expectExit(ref, 0, 'reference restore');
  const want = treeDigest(path.join(dest, 'data'));
  const srcDigest = treeDigest(fx.src);
  const all: string[] = [];
  for (const [k, h] of srcDigest) if (want.get(k) !== h) all.push(`reference restore differs from the source at ${k}`);
  let landed = 0;
  for (const d of randomDelays(rng, 3 * SOAK, ref.ms)) {
    fs.rmSync(dest, { recursive: true, force: true });
    if (stopped(t, FAULT)) return;
    const o = await killAfter(fx, args, d);
    if (stopped(t, FAULT)) return;
    if (o.killed) landed += 1;
    const label = `restore killed after ${d} ms`;
    const again = cli(fx.dataDir, args);
    if (again.code !== 0) all.push(`${label}: re-run exited ${again.code}: ${again.stderr.slice(0, 300)}`);
    const got = treeDigest(path.join(dest, 'data'));
    let diff = 0;
    for (const [k, h] of want) if (got.get(k) !== h) diff += 1;
    for (const k of got.keys()) if (!want.has(k)) diff += 1;
    if (diff > 0) all.push(`${label}: ${diff} entries of DEST differ from the fault-free restore`);
    const stray = [...treeDigest(dest).keys()].filter(
      (k) => !k.startsWith('data') && !k.startsWith('.distbackup-restore'),
    );
    if (stray.length > 0) all.push(`${label}: stray entries in DEST: ${stray.join(', ')}`);
  }
  all.push(...canaries.check());
  countFault(FAULT, 'SIGKILL at random times over a measured restore', landed);
  countViolations(FAULT, all);
  assert.deepEqual(all, []);
});
