/**
 * The disk turns read-only mid-sync (RELIABILITY.md test 16, failure modes 2 and 10): an ext4
 * loop image mounted with `errors=remount-ro` is the disk, and while the sync copies, it is made
 * read-only: `mount -o remount,ro` when the kernel allows it, else (the usual case, since the
 * sync holds a `.tmp/` file open for writing and remount answers EBUSY) an ext4 error through
 * `trigger_fs_error`, which is what a failing USB disk does. Every later write and rename then
 * fails with EROFS. The sync must stop with exit 1 and one line naming EROFS, count nothing that
 * is not on the disk, leave the old catalogue copy or a new one, and after the disk is writable
 * again (remount,rw, or e2fsck and mount) the next sync completes.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { countFault, countViolations, rngFor } from '../helpers/faults.js';
import { makeFixture, resyncCompletes, startSyncOnto } from '../helpers/faults-fixture.js';
import { skipUnlessCommands } from '../helpers/faults-kill.js';
import { checkHonestExit, checkInvariants } from '../helpers/invariants.js';
import { forceReadOnly, makeWritable, mountExt4, sweepStaleMounts } from '../helpers/mounts.js';

sweepStaleMounts();

const FAULT = 'disk read-only mid-sync';

test('an ext4 disk turned read-only mid-sync: exit 1 naming EROFS, nothing uncounted, the next sync completes', {
  timeout: 120_000,
}, async (t) => {
  if (skipUnlessCommands(t, ['update', 'sync'])) return;
  const fx = makeFixture(t, { rng: rngFor('remount-ro'), scale: 0.2, only: [] });
  if (fx === null) return;
  const m = mountExt4(t, { sizeBytes: fx.allocatedBytes * 2 + (24 << 20), options: ['errors=remount-ro'] });
  if (m === null) return;
  const w = await startSyncOnto(fx, m.dir, 'usb', 90_000);
  const how = forceReadOnly(m);
  countFault(FAULT, 'ext4 loop: mount -o remount,ro, or errors=remount-ro and trigger_fs_error while a file is open');
  const r = await w.sync.done;
  const v: string[] = [];
  v.push(...checkHonestExit(r, [1], [/EROFS|read-only/i]));
  v.push(...checkInvariants(fx, { before: w.before }).violations);
  process.stdout.write(
    `# read-only by ${how}: exit ${r.code}, ${r.stderr.split('\n').find((l) => l.startsWith('distbackup:'))}\n`,
  );
  makeWritable(m, how);
  v.push(...resyncCompletes(fx, w, 'after the disk is writable again'));
  countViolations(FAULT, v);
  assert.deepEqual(v, []);
});
