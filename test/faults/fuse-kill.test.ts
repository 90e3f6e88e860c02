/**
 * The disk pulled out mid-sync (RELIABILITY.md test 9, failure modes 2 and 5): the disk is an
 * exFAT image mounted through FUSE (mount.exfat-fuse on a loop device), and while the sync copies,
 * the FUSE daemon is SIGKILLed, so every later operation on the mount fails with ENOTCONN, as
 * when a USB cable is pulled. The sync must stop soon (no hang, no retry storm) with exit 1 and
 * one line; after the image is checked and mounted again, the home catalogue counts nothing that
 * is not on the disk (I2), every named object hashes to its name (I1), and the next sync completes.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { countFault, countViolations, rngFor } from '../helpers/faults.js';
import { makeFixture, resyncCompletes, startSyncOnto } from '../helpers/faults-fixture.js';
import { skipUnlessCommands } from '../helpers/faults-kill.js';
import { checkHonestExit, checkInvariants } from '../helpers/invariants.js';
import { mountFuse, reattachExfat, sweepStaleMounts } from '../helpers/mounts.js';

sweepStaleMounts();

const FAULT = 'exFAT FUSE daemon killed mid-sync';

test('the exFAT FUSE daemon SIGKILLed mid-sync: a one-line ENOTCONN error, nothing uncounted after remounting', {
  timeout: 120_000,
}, async (t) => {
  if (skipUnlessCommands(t, ['update', 'sync'])) return;
  const fx = makeFixture(t, { rng: rngFor('fuse-kill'), scale: 0.2, only: [] });
  if (fx === null) return;
  const m = mountFuse(t, 'exfat', 64 * 1024 * 1024);
  if (m === null) return;
  assert.ok(m.fusePid !== undefined, 'the exFAT FUSE daemon was not found');
  const w = await startSyncOnto(fx, m.dir, 'usb', 60_000);
  process.kill(m.fusePid, 'SIGKILL');
  countFault(FAULT, 'mount.exfat-fuse on a loop device, daemon SIGKILLed while the sync copies (ENOTCONN)');
  const r = await w.sync.done;
  const v: string[] = [];
  // A signal here means our 60 s kill: the sync hung on the dead mount.
  v.push(...checkHonestExit(r, [1], [/ENOTCONN|not connected|vanished|unplugged/i]));
  process.stdout.write(
    `# exFAT daemon killed: exit ${r.code}, ${r.stderr.split('\n').find((l) => l.startsWith('distbackup:'))}\n`,
  );
  const fsck = reattachExfat(m);
  if (/error|corrupt/i.test(fsck) && !/0 error|no error|clean/i.test(fsck))
    process.stdout.write(`# fsck.exfat: ${fsck.replace(/\n/g, ' | ')}\n`);
  v.push(...checkInvariants(fx, { before: w.before }).violations.map((x) => `after remounting: ${x}`));
  v.push(...resyncCompletes(fx, w, 'after remounting'));
  countViolations(FAULT, v);
  assert.deepEqual(v, []);
});
