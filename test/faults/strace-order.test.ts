/**
 * Durability order, read from the kernel's side (RELIABILITY.md test 3, failure modes 2 and 3):
 * a real small `sync` runs under `strace -f -y`, and the trace must show, for every object,
 * - its `.tmp/` file fsynced (the fsync completed) before it is renamed to its final name;
 * - its prefix folder fsynced after the rename, and a new prefix folder's parent fsynced after
 *   the mkdir, both before the next fsync of the home catalogue's WAL (the commit that counts it);
 * - a WAL fsync after all of that (the copy is counted at all);
 * and, on a second sync that deletes orphans, every object unlink after a WAL fsync of that run
 * (the uncount is durable before the bytes go). Calls split between threads are ordered by
 * their completion.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { cli, countFault, countViolations, have, rngFor, skipTest } from '../helpers/faults.js';
import { makeFixture } from '../helpers/faults-fixture.js';
import { skipUnlessCommands } from '../helpers/faults-kill.js';
import { parseStrace, type Syscall, succeeded } from '../helpers/faults-os.js';
import { checkClean, checkInvariants, groundTruth } from '../helpers/invariants.js';
import { sweepStaleMounts } from '../helpers/mounts.js';

sweepStaleMounts();

const FAULT = 'durability order (strace)';
const HOW = 'strace -f -y of a real sync: fsync → rename → folder fsync → WAL fsync; commit → unlink';
const TRACE = 'trace=openat,write,pwrite64,fsync,fdatasync,rename,renameat,renameat2,mkdir,mkdirat,unlink,unlinkat';
const TMP_RE = /\/distbackup-objects\/\.tmp\/([0-9a-f]{64})\.[0-9a-f]+$/;
const OBJ_RE = /\/distbackup-objects\/([0-9a-f]{3})\/([0-9a-f]{64})$/;
const PREFIX_RE = /\/distbackup-objects\/[0-9a-f]{3}$/;

function isSync(c: Syscall): boolean {
  return (c.name === 'fsync' || c.name === 'fdatasync') && succeeded(c);
}

/** Check the copy order of one traced sync; returns violations and how many objects were seen. */
function checkCopyOrder(calls: Syscall[], walFile: string): { v: string[]; objects: number } {
  const v: string[] = [];
  const walSyncs = calls.filter((c) => isSync(c) && c.fdPath === walFile).map((c) => c.seq);
  const nextWalSync = (after: number): number | undefined => walSyncs.find((s) => s > after);
  const fileSync = new Map<string, number>();
  const dirSyncs = new Map<string, number[]>();
  for (const c of calls) {
    if (!isSync(c) || c.fdPath === undefined) continue;
    if (TMP_RE.test(c.fdPath)) fileSync.set(c.fdPath, c.seq);
    else dirSyncs.set(c.fdPath, [...(dirSyncs.get(c.fdPath) ?? []), c.seq]);
  }
  const dirSyncAfter = (dir: string, after: number): number | undefined =>
    (dirSyncs.get(dir) ?? []).find((s) => s > after);
  let objects = 0;
  for (const c of calls) {
    if (c.name === 'mkdir' || c.name === 'mkdirat') {
      const dir = c.strings[0] ?? '';
      if (!PREFIX_RE.test(dir) || !succeeded(c)) continue;
      const parentSync = dirSyncAfter(path.dirname(dir), c.seq);
      const commit = nextWalSync(c.seq);
      if (parentSync === undefined) v.push(`new prefix folder ${path.basename(dir)}: its parent is never fsynced`);
      else if (commit !== undefined && commit < parentSync)
        v.push(`new prefix folder ${path.basename(dir)}: a WAL commit before its parent's fsync`);
    }
    if (!c.name.startsWith('rename') || !succeeded(c)) continue;
    const [from = '', to = ''] = c.strings;
    const tmp = TMP_RE.exec(from);
    const obj = OBJ_RE.exec(to);
    if (tmp === null || obj === null) continue;
    objects += 1;
    const h = obj[2] ?? '';
    if (tmp[1] !== h) v.push(`${h.slice(0, 12)}…: renamed from the tmp file of another object`);
    const fsynced = fileSync.get(from);
    if (fsynced === undefined) v.push(`${h.slice(0, 12)}…: renamed without an fsync of its tmp file`);
    else if (fsynced > c.seq) v.push(`${h.slice(0, 12)}…: its tmp file's fsync completed after the rename`);
    const dirSync = dirSyncAfter(path.dirname(to), c.seq);
    const commit = nextWalSync(c.seq);
    if (dirSync === undefined) v.push(`${h.slice(0, 12)}…: its folder is never fsynced after the rename`);
    if (commit === undefined) v.push(`${h.slice(0, 12)}…: no catalogue commit (WAL fsync) after its rename`);
    if (dirSync !== undefined && commit !== undefined && commit < dirSync)
      v.push(`${h.slice(0, 12)}…: the catalogue committed (WAL fsync) before its folder's fsync`);
  }
  return { v, objects };
}

function traced(traceFile: string): string[] {
  return ['strace', '-f', '-y', '-qq', '-s', '0', '-e', TRACE, '-o', traceFile];
}

test('strace of a real sync: tmp fsync → rename → folder fsync → catalogue commit; uncount → unlink', {
  timeout: 120_000,
}, (t) => {
  if (skipUnlessCommands(t, ['update', 'sync'])) return;
  if (!have('strace')) {
    // .ci/run installs strace: under CI=true its absence is a failure, not a skip.
    skipTest(t, 'strace not installed', true);
    return;
  }
  const fx = makeFixture(t, { rng: rngFor('strace-order'), scale: 0.15, only: ['d1'] });
  if (fx === null) return;
  fx.update();
  const before = groundTruth(fx);
  const wal = path.join(fx.dataDir, 'distbackup.sqlite-wal');
  const v: string[] = [];
  // 1. A sync that copies everything to an empty disk.
  const trace1 = path.join(fx.root, 'sync1.strace');
  const r1 = cli(fx.dataDir, ['sync', 'd1', '--quiet', '--fsync-batch', '8'], { prefix: traced(trace1) });
  if (r1.code !== 0) {
    const why = `${r1.stderr}`.slice(0, 300);
    if (/ptrace|Operation not permitted/.test(why)) {
      skipTest(t, `strace cannot trace here: ${why}`, true);
      return;
    }
    v.push(`traced sync exited ${r1.code}: ${why}`);
  }
  countFault(FAULT, HOW);
  const calls1 = parseStrace(fs.readFileSync(trace1, 'utf8'));
  const copy = checkCopyOrder(calls1, wal);
  v.push(...copy.v);
  const mid = checkInvariants(fx, { before, disksWithCatalogue: ['d1'] });
  const held = mid.truth.disks.find((d) => d.name === 'd1')?.objects.size ?? 0;
  if (copy.objects !== held) v.push(`the trace shows ${copy.objects} object renames, d1 holds ${held} objects`);
  v.push(...mid.violations);
  // 2. Files deleted: the next sync deletes their objects (orphans) after uncounting them.
  const victims = [...fx.tree.keys()].filter((k) => /f00[0-4]\d\.bin$/.test(k)).slice(0, 6);
  for (const k of victims) fs.rmSync(path.join(fx.src, k), { force: true });
  fx.update();
  const trace2 = path.join(fx.root, 'sync2.strace');
  const r2 = cli(fx.dataDir, ['sync', 'd1', '--quiet'], { prefix: traced(trace2) });
  if (r2.code !== 0) v.push(`traced orphan sync exited ${r2.code}: ${r2.stderr.slice(0, 300)}`);
  countFault(FAULT, HOW);
  const calls2 = parseStrace(fs.readFileSync(trace2, 'utf8'));
  const unlinks = calls2.filter(
    (c) => (c.name === 'unlink' || c.name === 'unlinkat') && succeeded(c) && c.strings.some((s) => OBJ_RE.test(s)),
  );
  const firstWal = calls2.find((c) => isSync(c) && c.fdPath === wal)?.seq;
  for (const u of unlinks) {
    if (firstWal === undefined || firstWal > u.seq)
      v.push(`orphan ${path.basename(u.strings[0] ?? '').slice(0, 12)}… unlinked before any catalogue commit`);
  }
  if (unlinks.length === 0) v.push('the orphan sync unlinked no object (the scenario did not make orphans)');
  process.stdout.write(
    `# strace: ${calls1.length} + ${calls2.length} calls, ${copy.objects} objects renamed, ${unlinks.length} orphans unlinked\n`,
  );
  const after = checkInvariants(fx, { before, disksWithCatalogue: ['d1'] });
  v.push(...after.violations, ...checkClean(after.truth));
  countViolations(FAULT, v);
  assert.deepEqual(v, []);
});

test('the order checker itself: a rename before the fsync, and a commit before the folder fsync, are caught', () => {
  const h = 'ab'.repeat(32);
  const tmp = `/d/distbackup-objects/.tmp/${h}.0123456789ab`;
  const fin = `/d/distbackup-objects/${h.slice(0, 3)}/${h}`;
  const wal = '/home/distbackup.sqlite-wal';
  const good = [
    `10 openat(AT_FDCWD</>, "${tmp}", O_WRONLY|O_CREAT|O_EXCL|O_CLOEXEC, 0444) = 26<${tmp}>`,
    `11 fsync(26<${tmp}> <unfinished ...>`,
    `10 pwrite64(19<${wal}>, ""..., 24, 32) = 24`,
    `11 <... fsync resumed>) = 0`,
    `10 rename("${tmp}", "${fin}") = 0`,
    `12 fsync(27</d/distbackup-objects/${h.slice(0, 3)}>) = 0`,
    `10 fsync(19<${wal}>) = 0`,
  ];
  assert.deepEqual(checkCopyOrder(parseStrace(good.join('\n')), wal), { v: [], objects: 1 });
  // The fsync completes only after the rename (the resumed line comes later).
  const early = [good[0], good[1], good[4], good[3], good[5], good[6]].join('\n');
  assert.match(checkCopyOrder(parseStrace(early), wal).v.join('\n'), /fsync completed after the rename/);
  // The WAL is fsynced (the copy counted) before the folder's fsync.
  const commitFirst = [good[0], good[1], good[3], good[4], good[6], good[5]].join('\n');
  assert.match(checkCopyOrder(parseStrace(commitFirst), wal).v.join('\n'), /committed .* before its folder's fsync/);
});
