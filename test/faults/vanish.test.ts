/**
 * Fault 4: the disk disappears mid-sync (RELIABILITY.md tests 9 and 10, failure mode 5): the
 * disk folder renamed away (as if unplugged), and an ext4 disk lazily unmounted (`umount -l`),
 * after which new path lookups land in the empty mount-point folder on the host. The sync must
 * stop soon with exit 1 and one line saying the disk vanished; nothing may be written at the
 * old path (the host folder stays empty); nothing is counted that is not on the disk; after the
 * disk is back, the next sync completes (I5).
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { countFault, countViolations, type Run, rngFor, sh, startCli } from '../helpers/faults.js';
import { type Fixture, makeFixture } from '../helpers/faults-fixture.js';
import { skipUnlessCommands } from '../helpers/faults-kill.js';
import { copying, waitUntil } from '../helpers/faults-os.js';
import { checkClean, checkInvariants, groundTruth, type World } from '../helpers/invariants.js';
import { mountExt4, sweepStaleMounts } from '../helpers/mounts.js';

sweepStaleMounts();

const FAULT = 'disk vanishes mid-sync';

/** Start a slow sync of `name` and resolve once objects are being written. */
async function slowSync(fx: Fixture, name: string): Promise<{ done: Promise<Run>; copying: boolean }> {
  const s = startCli(fx.dataDir, ['sync', name, '--bwlimit', '1M', '--fsync-batch', '2', '--quiet'], {
    timeoutMs: 90_000,
  });
  const started = await waitUntil(s, copying(fx.disk(name).path), 30_000);
  return { done: s.done, copying: started && s.child.exitCode === null };
}

test('the disk folder renamed away mid-sync: a clear error, nothing written at the old path', {
  timeout: 120_000,
}, async (t) => {
  if (skipUnlessCommands(t, ['update', 'sync'])) return;
  const fx = makeFixture(t, { rng: rngFor('vanish-rename'), scale: 0.3, only: ['d1'] });
  if (fx === null) return;
  fx.update();
  const before = groundTruth(fx);
  const d1 = fx.disk('d1').path;
  const away = `${d1}-unplugged`;
  const s = await slowSync(fx, 'd1');
  assert.ok(s.copying, 'the sync never started copying');
  fs.renameSync(d1, away);
  countFault(FAULT, 'disk folder renamed away, ext4 umount -l');
  const t0 = Date.now();
  const r = await s.done;
  const v: string[] = [];
  if (r.code !== 1) v.push(`exit ${r.code} ${r.signal ?? ''}, expected 1`);
  const lines = r.stderr.split('\n').filter((l) => l.startsWith('distbackup: '));
  if (lines.length !== 1 || !lines[0]?.includes(d1)) v.push(`error lines: ${r.stderr.slice(0, 300)}`);
  if (Date.now() - t0 > 20_000) v.push(`took ${Date.now() - t0} ms to notice`);
  if (fs.existsSync(d1)) v.push(`the old path was recreated: ${fs.readdirSync(d1).join(', ')}`);
  const moved: World = { dataDir: fx.dataDir, disks: [{ name: 'd1', path: away }] };
  v.push(...checkInvariants(moved, { before }).violations);
  fs.rmSync(d1, { recursive: true, force: true });
  fs.renameSync(away, d1);
  const again = fx.run(['sync', 'd1', '--quiet']);
  if (again.code !== 0) v.push(`re-sync: exit ${again.code}: ${again.stderr.slice(0, 300)}`);
  const after = checkInvariants(fx, { before, disksWithCatalogue: ['d1'] });
  v.push(...after.violations, ...checkClean(after.truth));
  countViolations(FAULT, v);
  assert.deepEqual(v, []);
});

test('an ext4 disk lazily unmounted mid-sync: the host folder under the mount point stays empty', {
  timeout: 120_000,
}, async (t) => {
  if (skipUnlessCommands(t, ['update', 'sync'])) return;
  const fx = makeFixture(t, { rng: rngFor('vanish-umount'), scale: 0.3, only: ['d1'] });
  if (fx === null) return;
  const m = mountExt4(t, { sizeBytes: fx.allocatedBytes * 2 + (24 << 20) });
  if (m === null) return;
  const disk = { name: 'usb', path: path.join(m.dir, 'backup') };
  fs.mkdirSync(disk.path);
  fx.run(['disk', 'add', 'usb', disk.path, '--size', String(fx.allocatedBytes * 2)]);
  fx.disks.push(disk);
  fx.update();
  const before = groundTruth(fx);
  const s = await slowSync(fx, 'usb');
  assert.ok(s.copying, 'the sync never started copying');
  sh(`umount -l ${m.dir}`);
  countFault(FAULT, 'disk folder renamed away, ext4 umount -l');
  const r = await s.done;
  const v: string[] = [];
  if (r.code !== 1) v.push(`exit ${r.code} ${r.signal ?? ''}, expected 1: ${r.stderr.slice(0, 200)}`);
  const host = fs.readdirSync(m.dir);
  if (host.length > 0) v.push(`files landed on the host under the mount point: ${host.join(', ')}`);
  // Put the disk back and finish.
  for (const e of host) fs.rmSync(path.join(m.dir, e), { recursive: true, force: true });
  sh(`mount -o loop ${m.image} ${m.dir}`);
  v.push(...checkInvariants(fx, { before }).violations);
  const again = fx.run(['sync', 'usb', '--quiet']);
  if (again.code !== 0) v.push(`re-sync: exit ${again.code}: ${again.stderr.slice(0, 300)}`);
  const after = checkInvariants(fx, { before, disksWithCatalogue: ['usb'] });
  v.push(...after.violations, ...checkClean(after.truth));
  countViolations(FAULT, v);
  assert.deepEqual(v, []);
});
