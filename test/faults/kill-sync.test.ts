/**
 * Fault 1 (sync): SIGKILL at every named crash point (`DISTBACKUP_TEST_KILL=name:k`, k = first
 * and last hit; a crash point the run never passes is reported, not silently passed) and at
 * uniform-random times over a measured fault-free run (RELIABILITY.md tests 1 and 2). The sync
 * deletes orphans, evicts and copies. After each kill: I1–I4 against the state before; then a
 * re-run without the fault must exit 0, leave `.tmp/` empty and reach the fault-free state (I5).
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { type TestContext, test } from 'node:test';
import { cli, countFault, countViolations, expectExit, noteFault, type Rng, rngFor, SOAK } from '../helpers/faults.js';
import { type Fixture, makeFixture, seededBytes } from '../helpers/faults-fixture.js';
import {
  countPoints,
  hitsToTry,
  type KillOutcome,
  killAfter,
  killAtPoint,
  randomDelays,
  SYNC_POINTS,
  skipUnlessCommands,
  stopped,
} from '../helpers/faults-kill.js';
import {
  checkClean,
  checkInvariants,
  diffStates,
  groundTruth,
  plantCanaries,
  summarize,
} from '../helpers/invariants.js';
import { sweepStaleMounts } from '../helpers/mounts.js';

sweepStaleMounts();

/**
 * The sync scenario: d1 holds everything, d2 was synced, then files were deleted and added, so
 * the next sync of d2 deletes orphans, evicts (d2 is ~70 % full) and copies.
 */
function syncScenario(t: TestContext, rng: Rng): Fixture | null {
  const fx = makeFixture(t, { rng, scale: 1 });
  if (fx === null) return null;
  fx.update();
  fx.sync('d1');
  fx.sync('d2');
  const names = [...fx.tree.keys()].filter((n) => n.endsWith('.bin')).sort();
  for (let i = 0; i < 25; i++) {
    const n = names[rng.int(0, names.length - 1)];
    if (n !== undefined && fs.existsSync(path.join(fx.src, n))) fs.rmSync(path.join(fx.src, n));
  }
  // About 6 MB of new content: more than the orphans free on d2, so the sync must evict.
  for (let i = 0; i < 40; i++) {
    const p = path.join(fx.src, 'new', `n${i}.bin`);
    fs.mkdirSync(path.dirname(p), { recursive: true });
    fs.writeFileSync(p, seededBytes(`new-${i}-${rng.int(0, 1e9)}`, 50_000 + rng.int(0, 200_000)));
  }
  // d1 is not synced again: the new objects have no copy, so d2 must evict for them.
  fx.update();
  return fx;
}

test('SIGKILL of sync at random times and at every named crash point; the re-run converges', {
  timeout: 420_000,
}, async (t) => {
  if (skipUnlessCommands(t, ['update', 'sync'])) return;
  const FAULT = 'SIGKILL sync';
  const rng = rngFor('kill-sync');
  const fx = syncScenario(t, rng);
  if (fx === null) return;
  const args = ['sync', 'd2', '--fsync-batch', '8', '--quiet'];
  fx.save('base');
  // Reference: a fault-free run from the same state.
  const ref = countPoints(fx, args);
  expectExit(ref.run, 0, 'reference sync');
  const refState = summarize(groundTruth(fx));
  fx.restore('base');
  const canaries = plantCanaries(
    [fx.outside, path.dirname(fx.disk('d2').path)],
    fx.disks.map((d) => d.path),
  );
  const plans: { label: string; go: () => Promise<KillOutcome> }[] = [];
  // DISTBACKUP_FAULT_KILLS=points|random runs one kind only (local debugging).
  const kinds = process.env.DISTBACKUP_FAULT_KILLS ?? 'all';
  for (const point of kinds === 'random' ? [] : SYNC_POINTS) {
    const n = ref.hits.get(point) ?? 0;
    if (n === 0) {
      noteFault(FAULT, `crash point ${point} was never passed by '${args.join(' ')}' (not tested)`);
      continue;
    }
    for (const k of hitsToTry(n, point))
      plans.push({ label: `${point}:${k}`, go: async () => killAtPoint(fx, args, point, k) });
  }
  for (const d of randomDelays(rng, kinds === 'points' ? 0 : 4 * SOAK, ref.run.ms)) {
    plans.push({ label: `after ${d} ms`, go: () => killAfter(fx, args, d) });
  }
  let landed = 0;
  let finished = 0;
  const all: string[] = [];
  fx.restore('base');
  const before = groundTruth(fx);
  for (const p of plans) {
    if (stopped(t, FAULT)) break;
    const t0 = Date.now();
    fx.restore('base');
    const o = await p.go();
    if (stopped(t, FAULT)) break;
    if (o.killed) landed += 1;
    else finished += 1;
    const v: string[] = [];
    if (!o.killed && o.run.code !== 0)
      v.push(`${p.label}: the run was not killed and exited ${o.run.code}: ${o.run.stderr.slice(0, 300)}`);
    v.push(...checkInvariants(fx, { before }).violations.map((x) => `${p.label} after the kill: ${x}`));
    const again = cli(fx.dataDir, args);
    if (again.code !== 0) v.push(`${p.label}: re-run exited ${again.code}: ${again.stderr.slice(0, 300)}`);
    const after = checkInvariants(fx, { before, disksWithCatalogue: ['d1', 'd2'] });
    v.push(...after.violations.map((x) => `${p.label} after the re-run: ${x}`));
    v.push(...checkClean(after.truth).map((x) => `${p.label}: ${x}`));
    v.push(...diffStates(refState, summarize(after.truth)).map((x) => `${p.label}: ${x}`));
    all.push(...v);
    process.stdout.write(
      `# kill ${p.label}: ${o.killed ? 'killed' : 'finished first'}, ${v.length} violations, ${Date.now() - t0} ms\n`,
    );
    for (const x of v) process.stdout.write(`#   ${x}\n`);
  }
  if (t.signal.aborted) return;
  all.push(...canaries.check());
  countFault(FAULT, 'SIGKILL at random times over a measured run, and DISTBACKUP_TEST_KILL=point:k', landed);
  noteFault(FAULT, `${landed} kills landed, ${finished} runs finished before the kill`);
  countViolations(FAULT, all);
  assert.ok(landed >= 10, `only ${landed} kills landed`);
  assert.deepEqual(all, []);
});
