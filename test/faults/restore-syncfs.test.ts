/**
 * A write-back error reported by syncfs(2) during restore (RELIABILITY.md failure modes 2 and
 * 11): the batch of files that syncfs was to make durable must not be recorded in the restore
 * state, its files must not stay in DEST looking restored, the run must fail with one line
 * naming DEST and the cause, and the next run must restore everything byte-exact. The error is
 * real to the process: `strace -f -e inject=syncfs:error=EIO` makes the kernel call of `sync -f`
 * (the child that restore runs) fail as a disk's write-back error would.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { countFault, countViolations } from '../helpers/faults.js';
import { seededBytes } from '../helpers/faults-fixture.js';
import { sweepStaleMounts } from '../helpers/mounts.js';
import { recorded, straceRestoreFixture } from '../helpers/restore-faults.js';

sweepStaleMounts();

const FAULT = 'syncfs write-back error during restore';
/** More files than restore fsyncs one by one (64), so the batch rests on syncfs. */
const FILES = 90;

test('restore: a syncfs write-back error records nothing of the batch, and the next run completes', {
  timeout: 180_000,
}, (t) => {
  const fx = straceRestoreFixture(t, 'restore-syncfs', { scale: 0.05, only: ['d1'] });
  if (fx === null) return;
  const dir = path.join(fx.src, 'many');
  fs.mkdirSync(dir);
  const want = new Map<string, Buffer>();
  for (let i = 0; i < FILES; i++) {
    const name = `f${String(i).padStart(3, '0')}.bin`;
    const bytes = seededBytes(`restore-syncfs-${i}`, 3000 + i * 37);
    fs.writeFileSync(path.join(dir, name), bytes);
    want.set(name, bytes);
  }
  fx.update();
  fx.sync('d1');
  const dest = path.join(fx.root, 'dest');
  const args = ['restore', '/data/many', '--to', dest, '--disk', fx.disk('d1').path, '--quiet'];
  countFault(FAULT, 'strace -f -e inject=syncfs:error=EIO on a restore of 90 files');
  const v: string[] = [];
  const failed = fx.run(args, {
    prefix: ['strace', '-f', '-qq', '-o', '/dev/null', '-e', 'trace=syncfs', '-e', 'inject=syncfs:error=EIO'],
  });
  if (failed.code !== 1) v.push(`restore with syncfs failing exited ${failed.code}, expected 1: ${failed.stderr}`);
  const lines = failed.stderr.split('\n').filter((l) => l.trim() !== '');
  if (lines.length !== 1 || !lines[0]?.includes(dest) || !/EIO|input\/output error/i.test(lines[0] ?? '')) {
    v.push(`not one line naming DEST and the cause: ${JSON.stringify(lines)}`);
  }
  const files = recorded(dest).filter((r) => r.kind === 0);
  if (files.length > 0) v.push(`the state records ${files.length} files of the batch syncfs failed on`);
  const left = fs.existsSync(path.join(dest, 'data', 'many')) ? fs.readdirSync(path.join(dest, 'data', 'many')) : [];
  if (left.length > 0) v.push(`${left.length} files of the failed batch stayed in DEST (first: ${left[0]})`);

  const again = fx.json<{ restored: number; remaining: number }>(args);
  if (again.code !== 0) v.push(`the next run exited ${again.code}, expected 0: ${again.stderr.slice(0, 300)}`);
  if (again.json?.restored !== FILES) v.push(`the next run restored ${again.json?.restored} files, not ${FILES}`);
  for (const [name, bytes] of want) {
    const p = path.join(dest, 'data', 'many', name);
    if (!fs.existsSync(p) || !fs.readFileSync(p).equals(bytes)) v.push(`${name} not restored byte-exact`);
  }
  const now = recorded(dest).filter((r) => r.kind === 0);
  if (now.length !== FILES) v.push(`the state records ${now.length} files after the next run, not ${FILES}`);
  countViolations(FAULT, v);
  assert.deepEqual(v, []);
});
