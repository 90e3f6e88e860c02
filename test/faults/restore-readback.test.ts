/**
 * A read error while restore checks a large file it copied (RELIABILITY.md failure mode 9):
 * files of 1 MiB and more are copied by the kernel, then read back from DEST's page cache on
 * libuv's pool and hashed before they get their name (`src/restore/file-writer.ts`). The reads
 * run on pool threads, out of reach of a fault aimed at the synchronous read's stack
 * (fiu.test.ts), so the kernel call is made to fail with strace: `-P` keeps the fault to the
 * temp file of one chosen file (its name is known: `.dsb-<16 hex digits of the SHA-256 of its path below DEST
 * (/data/big/NAME)>.part` beside the target), `inject=pread64:error=EIO` fails every read of it. That
 * file must stay out: not under its name, no temp file left, not recorded, listed as an error
 * (exit 4); every other file is restored and recorded, and the next run completes byte-exact.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { countFault, countViolations } from '../helpers/faults.js';
import { seededBytes } from '../helpers/faults-fixture.js';
import { sweepStaleMounts } from '../helpers/mounts.js';
import { bigFilesOnOwnDisk, recorded, straceRestoreFixture } from '../helpers/restore-faults.js';

sweepStaleMounts();

const FAULT = 'read-back error while a large restored file is checked';
/** Sizes of the large files (kernel copies; the last two above the 8 MiB of the early write-back). */
const SIZES = [2 * 1024 * 1024, 3 * 1024 * 1024 + 5, 9 * 1024 * 1024, 9 * 1024 * 1024 + 1];
/** The file whose read-back fails: one written back early, copied while others are checked. */
const BAD = 'large-2.bin';

test('restore: the read-back of a large copied file fails with EIO: that file stays out and unrecorded, the rest is restored, the next run completes', {
  timeout: 180_000,
}, (t) => {
  const fx = straceRestoreFixture(t, 'restore-readback', { scale: 0.05, only: [] });
  if (fx === null) return;
  const want = new Map<string, Buffer>();
  for (const [i, size] of SIZES.entries()) want.set(`large-${i}.bin`, seededBytes(`restore-readback-${i}`, size));
  want.set('small.bin', seededBytes('restore-readback-small', 5000));
  const disk = bigFilesOnOwnDisk(fx, 'rb', want);
  const dest = path.join(fx.root, 'dest');
  const target = path.join(dest, 'data', 'big');
  const tmp = path.join(
    target,
    `.dsb-${createHash('sha256').update(`/data/big/${BAD}`).digest('hex').slice(0, 16)}.part`,
  );
  const args = ['restore', '/data/big', '--to', dest, '--disk', disk, '--json'];
  countFault(FAULT, `strace -f -P <temp file> -e inject=pread64:error=EIO on a restore of ${SIZES.length} large files`);
  const v: string[] = [];
  const failed = fx.json<{ restored: number; remaining: number; errors: { path: string; error: string }[] }>(args, {
    prefix: [
      'strace',
      '-f',
      '-qq',
      '-o',
      '/dev/null',
      '-P',
      tmp,
      '-e',
      'trace=pread64',
      '-e',
      'inject=pread64:error=EIO',
    ],
  });
  if (failed.code !== 4)
    v.push(`restore with the read-back failing exited ${failed.code}, expected 4: ${failed.stderr}`);
  const errors = failed.json?.errors ?? [];
  if (
    errors.length !== 1 ||
    errors[0]?.path !== `/data/big/${BAD}` ||
    !/EIO|input\/output/i.test(errors[0]?.error ?? '')
  ) {
    v.push(`not one error naming ${BAD} and EIO: ${JSON.stringify(errors)}`);
  }
  if (failed.json?.restored !== want.size - 1) v.push(`restored ${failed.json?.restored} files, not ${want.size - 1}`);
  if (fs.existsSync(path.join(target, BAD))) v.push(`${BAD} is in DEST although its check failed`);
  if (fs.existsSync(tmp)) v.push(`the temp file of ${BAD} was left in DEST`);
  const files = recorded(dest).filter((r) => r.kind === 0);
  if (files.some((r) => r.vpath.endsWith(BAD))) v.push(`${BAD} is recorded as restored`);
  if (files.length !== want.size - 1) v.push(`the state records ${files.length} files, not ${want.size - 1}`);
  for (const [name, bytes] of want) {
    if (name === BAD) continue;
    const p = path.join(target, name);
    if (!fs.existsSync(p) || !fs.readFileSync(p).equals(bytes)) v.push(`${name} not restored byte-exact`);
  }

  const again = fx.json<{ restored: number; remaining: number }>(args);
  if (again.code !== 0) v.push(`the next run exited ${again.code}, expected 0: ${again.stderr.slice(0, 300)}`);
  if (again.json?.restored !== 1) v.push(`the next run restored ${again.json?.restored} files, not 1`);
  const p = path.join(target, BAD);
  if (!fs.existsSync(p) || !fs.readFileSync(p).equals(want.get(BAD) as Buffer))
    v.push(`${BAD} not restored byte-exact`);
  if (recorded(dest).filter((r) => r.kind === 0).length !== want.size)
    v.push('not every file recorded after the next run');
  countViolations(FAULT, v);
  assert.deepEqual(v, []);
});
