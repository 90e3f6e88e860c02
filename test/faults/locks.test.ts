/**
 * Fault 7: two processes at once (RELIABILITY.md test 15, failure mode 13). While a sync runs,
 * a second sync of the same disk, a sync of another disk, an update and a verify are refused at
 * once with exit 2, and read commands still work; after the first is SIGKILLed its locks are
 * stale and the next sync takes them over and completes.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { DISK_LOCK } from '../../src/disk/layout.js';
import { cli, countFault, countViolations, rngFor, sleep, startCli } from '../helpers/faults.js';
import { makeFixture } from '../helpers/faults-fixture.js';
import { skipUnlessCommands } from '../helpers/faults-kill.js';
import { checkClean, checkInvariants, groundTruth } from '../helpers/invariants.js';
import { sweepStaleMounts } from '../helpers/mounts.js';

sweepStaleMounts();

const FAULT = 'two processes at once';

test('a second process is refused with exit 2 while a sync runs; a SIGKILLed holder leaves no stale lock', {
  timeout: 120_000,
}, async (t) => {
  if (skipUnlessCommands(t, ['update', 'sync', 'verify', 'status'])) return;
  const fx = makeFixture(t, { rng: rngFor('locks'), scale: 0.3, only: ['d1', 'd2'] });
  if (fx === null) return;
  fx.update();
  const before = groundTruth(fx);
  // A slow sync: 128 KB/s over a few MB, so it holds its locks for about a minute. It is killed
  // after the checks, so a slower rate costs nothing; at 256 KB/s a machine at load 19 (each CLI
  // start taking seconds) saw it finish before the fifth check.
  const first = startCli(fx.dataDir, ['sync', 'd1', '--bwlimit', '128K', '--fsync-batch', '2', '--quiet'], {
    timeoutMs: 110_000,
  });
  const tmp = path.join(fx.disk('d1').path, 'distbackup-objects');
  const deadline = Date.now() + 30_000;
  let copying = false;
  while (Date.now() < deadline && first.child.exitCode === null) {
    const dirs = fs.existsSync(tmp) ? fs.readdirSync(tmp) : [];
    const started = dirs.some((d) => {
      const p = path.join(tmp, d);
      return fs.statSync(p).isDirectory() && fs.readdirSync(p).length > 0;
    });
    if (started) {
      copying = true;
      break;
    }
    await sleep(50);
  }
  assert.ok(copying, 'the first sync never started copying');
  const v: string[] = [];
  // A read command first: it must work, and its time is the yardstick of a refusal that does not wait.
  const status = cli(fx.dataDir, ['status', '--json'], { timeoutMs: 20_000 });
  if (status.code !== 0) v.push(`status while a sync runs: exit ${status.code}: ${status.stderr.slice(0, 200)}`);
  // A plan works too, from the catalogue as it stands: its reconcile would hold the catalogue's
  // write lock and could make the running sync's next commit fail.
  const plan = cli(fx.dataDir, ['plan', 'd1'], { timeoutMs: 20_000 });
  if (plan.code !== 0) v.push(`plan while a sync runs: exit ${plan.code}: ${plan.stderr.slice(0, 200)}`);
  if (!/another distbackup run holds the catalogue/.test(plan.stderr))
    v.push(`plan while a sync runs reconciled the disk: ${plan.stderr.slice(0, 200)}`);
  const refusals: [string, string[]][] = [
    ['a second sync of the same disk', ['sync', 'd1', '--quiet']],
    ['a sync of another disk', ['sync', 'd2', '--quiet']],
    ['an update', ['update', '--quiet']],
    ['a verify of the same disk', ['verify', 'd1', '--quiet']],
  ];
  for (const [what, args] of refusals) {
    const r = cli(fx.dataDir, args, { timeoutMs: 20_000 });
    countFault(FAULT, 'a second CLI process while a sync holds the locks');
    if (r.code !== 2) v.push(`${what}: exit ${r.code} ${r.signal ?? ''}, expected 2 (refused at once)`);
    if (r.ms > status.ms * 2 + 4000)
      v.push(`${what}: took ${r.ms} ms (status: ${status.ms} ms); a refusal must not wait`);
  }
  if (first.child.exitCode !== null) v.push('the first sync ended before the checks: they prove nothing');
  first.child.kill('SIGKILL');
  const end = await first.done;
  countFault(FAULT, 'SIGKILL of the lock holder, then a new sync');
  if (end.signal !== 'SIGKILL') v.push(`the first sync ended by itself (exit ${end.code})`);
  v.push(...checkInvariants(fx, { before }).violations);
  const again = cli(fx.dataDir, ['sync', 'd1', '--quiet'], { timeoutMs: 60_000 });
  if (again.code !== 0) v.push(`sync after the SIGKILL exited ${again.code}: ${again.stderr.slice(0, 300)}`);
  const after = checkInvariants(fx, { before, disksWithCatalogue: ['d1'] });
  v.push(...after.violations, ...checkClean(after.truth));
  countViolations(FAULT, v);
  assert.deepEqual(v, []);
});

test("a disk's own lock, held by another process alone, refuses a sync and a verify of that disk with exit 2", {
  timeout: 60_000,
}, async (t) => {
  if (skipUnlessCommands(t, ['update', 'sync', 'verify'])) return;
  const fx = makeFixture(t, { rng: rngFor('disk-lock'), scale: 0.1, only: ['d1'] });
  if (fx === null) return;
  fx.update();
  // Another process (a run of another catalogue that found the same disk) holds only the disk's lock.
  const holder = spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      '-e',
      `const { acquireLock } = await import(${JSON.stringify(path.resolve('src/catalog/lock.ts'))}); acquireLock(${JSON.stringify(path.join(fx.disk('d1').path, DISK_LOCK))}, 'd1'); console.log('held'); setInterval(() => {}, 1000);`,
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  t.after(() => holder.kill('SIGKILL'));
  await new Promise<void>((resolve, reject) => {
    holder.stdout.once('data', () => resolve());
    holder.once('exit', (code) => reject(new Error(`the lock holder exited ${code}`)));
  });
  const v: string[] = [];
  for (const args of [
    ['sync', 'd1', '--quiet'],
    ['verify', 'd1', '--quiet'],
  ]) {
    const r = cli(fx.dataDir, args, { timeoutMs: 20_000 });
    countFault(FAULT, "another process holding the disk's lock only");
    if (r.code !== 2 || !/in use by another distbackup process/.test(r.stderr))
      v.push(`${args[0]} while another process holds the disk's lock: exit ${r.code}: ${r.stderr.slice(0, 200)}`);
  }
  holder.kill('SIGKILL');
  await new Promise((r) => holder.once('exit', r));
  const again = cli(fx.dataDir, ['sync', 'd1', '--quiet'], { timeoutMs: 60_000 });
  if (again.code !== 0) v.push(`sync after the holder died exited ${again.code}: ${again.stderr.slice(0, 300)}`);
  countViolations(FAULT, v);
  assert.deepEqual(v, []);
});
