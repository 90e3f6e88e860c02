/**
 * `sync --verify readback` finds an object that reached the disk wrong (RELIABILITY.md failure
 * mode 1: the page cache held the right bytes, the device did not). An ext4 loop image is the
 * disk; the sync stops itself (SIGSTOP at the kill point `after-fsync`) once its first batch is
 * durable, one byte of one of its objects is flipped in the image, and the sync goes on. The
 * read-back (O_DIRECT, from the device) must see the damage: that object is thrown away and
 * written again from the source, the sync ends with exit 0 and the invariants hold (every
 * counted copy on the disk has the right bytes); a verify of the disk finds nothing bad.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { countFault, countViolations, expectExit, rngFor, startCli } from '../helpers/faults.js';
import { makeFixture } from '../helpers/faults-fixture.js';
import { skipUnlessCommands } from '../helpers/faults-kill.js';
import { waitUntil } from '../helpers/faults-os.js';
import { checkClean, checkInvariants, groundTruth } from '../helpers/invariants.js';
import { mountExt4, sweepStaleMounts } from '../helpers/mounts.js';

sweepStaleMounts();

const FAULT = 'object damaged on the device after its fsync';

/** The state letter of process `pid` (T: stopped), or undefined once it is gone. */
function procState(pid: number): string | undefined {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[0];
  } catch {
    return undefined;
  }
}

test('sync --verify readback: an object damaged on the device after its fsync is read back, thrown away and written again', {
  timeout: 120_000,
}, async (t) => {
  if (skipUnlessCommands(t, ['update', 'sync', 'verify'])) return;
  const fx = makeFixture(t, { rng: rngFor('readback'), scale: 0.2, only: [] });
  if (fx === null) return;
  const m = mountExt4(t, { sizeBytes: fx.allocatedBytes * 2 + (24 << 20) });
  if (m === null || m.image === undefined) return;
  const disk = path.join(m.dir, 'backup');
  fs.mkdirSync(disk);
  expectExit(fx.run(['disk', 'add', 'usb', disk, '--size', String(fx.allocatedBytes * 2)]), 0, 'disk add');
  fx.disks.push({ name: 'usb', path: disk });
  fx.update();
  const before = groundTruth(fx);
  const sync = startCli(fx.dataDir, ['sync', 'usb', '--verify', 'readback', '--profile', 'ssd'], {
    timeoutMs: 90_000,
    env: { DISTBACKUP_TEST_KILL: 'after-fsync:1:SIGSTOP' },
  });
  const pid = sync.child.pid ?? -1;
  const stopped = await waitUntil(sync, () => procState(pid) === 'T');
  assert.ok(stopped, 'the sync stopped itself after its first batch was durable');
  // The largest object of that batch, still under its temp name: flip one byte in the image.
  const tmpDir = path.join(disk, 'distbackup-objects', '.tmp');
  const tmps = fs
    .readdirSync(tmpDir)
    .map((n) => path.join(tmpDir, n))
    .filter((p) => fs.statSync(p).size > 8192)
    .sort((a, b) => fs.statSync(b).size - fs.statSync(a).size);
  const victim = tmps[0];
  assert.ok(victim !== undefined, 'the first batch holds an object larger than 8 KiB');
  const hash = path.basename(victim).split('.')[0] ?? '';
  const needle = fs.readFileSync(victim).subarray(0, 4096);
  const img = fs.readFileSync(m.image);
  const at = img.indexOf(needle);
  assert.ok(at >= 0 && img.indexOf(needle, at + 1) < 0, 'the object is found exactly once in the image');
  const fd = fs.openSync(m.image, 'r+');
  try {
    fs.writeSync(fd, Buffer.from([(img[at + 100] ?? 0) ^ 0xff]), 0, 1, at + 100);
  } finally {
    fs.closeSync(fd);
  }
  countFault(FAULT, 'ext4 loop image: a byte of a durable temp object flipped under the sync (SIGSTOP at after-fsync)');
  process.kill(pid, 'SIGCONT');
  const r = await sync.done;
  const v: string[] = [];
  if (r.code !== 0) v.push(`the sync exited ${r.code}: ${r.stderr.slice(0, 500)}`);
  if (!new RegExp(`read-back gave [0-9a-f]{64}, not ${hash}`).test(r.stderr)) {
    v.push(`the damaged object ${hash} was not reported by the read-back: ${r.stderr.slice(0, 500)}`);
  }
  const after = checkInvariants(fx, { before, disksWithCatalogue: ['usb'] });
  v.push(...after.violations, ...checkClean(after.truth));
  const held = after.truth.disks.find((d) => d.name === 'usb')?.objects;
  if (held?.has(hash) !== true) v.push(`the damaged object ${hash} was not copied again`);
  const verify = fx.run(['verify', 'usb']);
  if (verify.code !== 0) v.push(`verify after the sync exited ${verify.code}: ${verify.stdout}${verify.stderr}`);
  countViolations(FAULT, v);
  assert.deepEqual(v, []);
});
