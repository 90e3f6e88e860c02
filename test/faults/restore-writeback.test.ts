/**
 * A write-back error reported by the early fdatasync of a large restored file (RELIABILITY.md
 * failure modes 2 and 11): restore starts the write-back of every file of 8 MiB or more as soon
 * as it is written (`src/restore/file-writer.ts`), so that the batch's syncfs finds little left.
 * When that fdatasync fails, the batch cannot be made durable: nothing of it may be recorded in
 * the restore state, none of its files may stay in DEST looking restored (also the small files
 * placed before the failure: their objects sort first), the run fails with one line naming DEST
 * and the cause, and the next run restores everything byte-exact. The error is real to the
 * process: `strace -f -e inject=fdatasync:error=EIO:when=1` makes the kernel call fail as a
 * disk's write-back error would (only restore's early write-back calls fdatasync; its other
 * syncs are fsync and syncfs). strace counts `when` per thread, and the calls run on libuv's
 * pool threads, so only the first call of each thread can be aimed at, hence when=1.
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

const FAULT = 'early fdatasync write-back error during restore';
/** Files of 9 MiB (above the 8 MiB from which restore starts the write-back early). */
const LARGE = 3;
const LARGE_BYTES = 9 * 1024 * 1024;
/** Small files beside them, written back by the batch's sync only. */
const SMALL = 5;

/** Every regular file under `dir`, relative (the restore state's folder left out). */
function filesUnder(dir: string): string[] {
  if (!fs.existsSync(dir)) return [];
  const out: string[] = [];
  for (const e of fs.readdirSync(dir, { recursive: true, withFileTypes: true })) {
    if (e.isFile()) out.push(path.relative(dir, path.join(e.parentPath, e.name)));
  }
  return out;
}

test('restore: the early write-back of a large file fails with EIO: nothing of the batch recorded or left, the next run completes', {
  timeout: 180_000,
}, (t) => {
  const fx = straceRestoreFixture(t, 'restore-writeback', { scale: 0.05, only: [] });
  if (fx === null) return;
  const want = new Map<string, Buffer>();
  const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');
  let first = 'g';
  for (let i = 0; i < LARGE; i++) {
    const bytes = seededBytes(`restore-writeback-large-${i}`, LARGE_BYTES + i);
    if (sha(bytes) < first) first = sha(bytes);
    want.set(`large-${i}.bin`, bytes);
  }
  // Small files whose objects come before every large one (restore writes in object order):
  // placed before the failing write-back, they must be removed with the rest of the batch.
  for (let seed = 0; want.size < LARGE + SMALL; seed++) {
    const bytes = seededBytes(`restore-writeback-small-${seed}`, 5000 + seed);
    if (sha(bytes) < first) want.set(`small-${seed}.bin`, bytes);
  }
  const disk = bigFilesOnOwnDisk(fx, 'wb', want);
  const dest = path.join(fx.root, 'dest');
  const args = ['restore', '/data/big', '--to', dest, '--disk', disk, '--quiet'];
  countFault(FAULT, `strace -f -e inject=fdatasync:error=EIO:when=1 on a restore of ${LARGE} files of 9 MiB`);
  const v: string[] = [];
  const failed = fx.run(args, {
    prefix: [
      'strace',
      '-f',
      '-qq',
      '-o',
      '/dev/null',
      '-e',
      'trace=fdatasync',
      '-e',
      'inject=fdatasync:error=EIO:when=1',
    ],
  });
  if (failed.code !== 1) v.push(`restore with fdatasync failing exited ${failed.code}, expected 1: ${failed.stderr}`);
  const lines = failed.stderr.split('\n').filter((l) => l.trim() !== '');
  if (lines.length !== 1 || !lines[0]?.includes(dest) || !/EIO|input\/output error/i.test(lines[0] ?? '')) {
    v.push(`not one line naming DEST and the cause: ${JSON.stringify(lines)}`);
  }
  // The file whose write-back failed is named too (one of the large files).
  if (!/write-back of \/data\/big\/large-\d+\.bin: /.test(lines[0] ?? '')) {
    v.push(`the line does not name the file whose write-back failed: ${lines[0]}`);
  }
  const files = recorded(dest).filter((r) => r.kind === 0);
  if (files.length > 0) v.push(`the state records ${files.length} files of the batch whose write-back failed`);
  const left = filesUnder(path.join(dest, 'data'));
  if (left.length > 0) v.push(`${left.length} files of the failed batch stayed in DEST: ${left.join(', ')}`);

  const again = fx.json<{ restored: number; remaining: number }>(args);
  if (again.code !== 0) v.push(`the next run exited ${again.code}, expected 0: ${again.stderr.slice(0, 300)}`);
  if (again.json?.restored !== LARGE + SMALL) {
    v.push(`the next run restored ${again.json?.restored} files, not ${LARGE + SMALL}`);
  }
  for (const [name, bytes] of want) {
    const p = path.join(dest, 'data', 'big', name);
    if (!fs.existsSync(p) || !fs.readFileSync(p).equals(bytes)) v.push(`${name} not restored byte-exact`);
  }
  const now = recorded(dest).filter((r) => r.kind === 0);
  if (now.length !== LARGE + SMALL)
    v.push(`the state records ${now.length} files after the next run, not ${LARGE + SMALL}`);
  countViolations(FAULT, v);
  assert.deepEqual(v, []);
});
