/**
 * Durability order, read from the kernel's side (RELIABILITY.md test 3, failure modes 2 and 3):
 * a real small `sync` runs under `strace -f -y` (the `sync -f` and `cp` children traced too), and the
 * trace must show, for every object,
 * - its `.tmp/` file made durable before it is renamed to its final name: its own fsync
 *   completed, or (a batch of small files on an in-kernel filesystem) a syncfs of the disk's
 *   filesystem completed after the file's last write;
 * - its prefix folder made durable after the rename (its fsync, or a syncfs), and a new prefix
 *   folder's parent after the mkdir, both before the next fsync of the home catalogue's WAL (the
 *   commit that counts it);
 * - a WAL fsync after all of that (the copy is counted at all);
 * and, on a second sync that deletes orphans, every object unlink after a WAL fsync of that run
 * (the uncount is durable before the bytes go). Calls split between threads are ordered by
 * their completion. The first sync uses the syncfs batches (and must show syncfs proofs), a
 * second disk is synced with `DISTBACKUP_FSYNC=file` and must show an fsync for every file and
 * folder, the order used on FUSE disks.
 *
 * A syncfs that fails is injected with `strace -f -P PATH -e inject=syncfs:error=EIO` (`-P`
 * picks which of the two syncfs calls of a batch fails: the one on `.tmp/` before the renames,
 * the one on `distbackup-objects/` after them). Killed at the point where the failure has been
 * handled, the run must have counted nothing of the batch and left none of its objects under a
 * final name; run to the end under the same fault, it completes by fsyncing file by file; the
 * next run without the fault completes.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { cli, countFault, countViolations, have, rngFor, skipTest } from '../helpers/faults.js';
import { makeFixture } from '../helpers/faults-fixture.js';
import { skipUnlessCommands } from '../helpers/faults-kill.js';
import { parseStrace, type Syscall, succeeded } from '../helpers/faults-os.js';
import { checkClean, checkInvariants, groundTruth, readHome, scanDisk } from '../helpers/invariants.js';
import { sweepStaleMounts } from '../helpers/mounts.js';

sweepStaleMounts();

const FAULT = 'durability order (strace)';
const HOW =
  'strace -f -y of a real sync: fsync or syncfs → rename → folder fsync or syncfs → WAL fsync; commit → unlink';
const TRACE =
  'trace=openat,write,pwrite64,fsync,fdatasync,syncfs,rename,renameat,renameat2,mkdir,mkdirat,unlink,unlinkat';
const TMP_RE = /\/distbackup-objects\/\.tmp\/([0-9a-f]{64})\.[0-9a-f]+$/;
const OBJ_RE = /\/distbackup-objects\/([0-9a-f]{3})\/([0-9a-f]{64})$/;
const PREFIX_RE = /\/distbackup-objects\/[0-9a-f]{3}$/;

function isSync(c: Syscall): boolean {
  return (c.name === 'fsync' || c.name === 'fdatasync') && succeeded(c);
}

/**
 * Check the copy order of one traced sync; returns violations, how many objects were seen, and
 * how many of them a syncfs made durable. With `allowSyncfs` false only fsyncs count as proof.
 */
function checkCopyOrder(
  calls: Syscall[],
  walFile: string,
  allowSyncfs = true,
): { v: string[]; objects: number; bySyncfs: number } {
  const v: string[] = [];
  const walSyncs = calls.filter((c) => isSync(c) && c.fdPath === walFile).map((c) => c.seq);
  const nextWalSync = (after: number): number | undefined => walSyncs.find((s) => s > after);
  const fileSync = new Map<string, number>();
  const lastWrite = new Map<string, number>();
  const dirSyncs = new Map<string, number[]>();
  // Completed syncfs calls on a disk's objects folder (the `sync -f` child's descriptor).
  const syncfsDone = allowSyncfs
    ? calls
        .filter((c) => c.name === 'syncfs' && succeeded(c) && /\/distbackup-objects(\/|$)/.test(c.fdPath ?? ''))
        .map((c) => c.seq)
    : [];
  const syncfsAfter = (after: number): number | undefined => syncfsDone.find((s) => s > after);
  // Failed ones: a syncfs reports a write-back error once for the whole filesystem, so one that
  // failed may have reported the error of a file closed before it, and a later syncfs that
  // succeeds proves nothing of that file.
  const syncfsFailed = calls
    .filter((c) => c.name === 'syncfs' && !succeeded(c) && /\/distbackup-objects(\/|$)/.test(c.fdPath ?? ''))
    .map((c) => c.seq);
  /** The first syncfs after `after` that proves a file written at `after` durable. */
  const syncfsProof = (after: number): number | undefined => {
    const s = syncfsAfter(after);
    return s !== undefined && syncfsFailed.some((f) => f > after && f < s) ? undefined : s;
  };
  for (const c of calls) {
    if ((c.name === 'write' || c.name === 'pwrite64') && c.fdPath !== undefined && TMP_RE.test(c.fdPath))
      lastWrite.set(c.fdPath, c.seq);
    if (!isSync(c) || c.fdPath === undefined) continue;
    if (TMP_RE.test(c.fdPath)) fileSync.set(c.fdPath, c.seq);
    else dirSyncs.set(c.fdPath, [...(dirSyncs.get(c.fdPath) ?? []), c.seq]);
  }
  /** The first fsync of `dir`, or syncfs, completed after `after`. */
  const dirSyncAfter = (dir: string, after: number): number | undefined => {
    const own = (dirSyncs.get(dir) ?? []).find((s) => s > after);
    const all = syncfsAfter(after);
    return own === undefined ? all : all === undefined ? own : Math.min(own, all);
  };
  let objects = 0;
  let bySyncfs = 0;
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
    // A syncfs proves the file durable when it completed after the file's last write and before
    // the rename, with no syncfs failing in between (an empty object has no write: its creation
    // is covered the same way).
    const written = lastWrite.get(from) ?? calls.find((x) => x.name === 'openat' && x.strings[0] === from)?.seq ?? 0;
    const viaSyncfs = syncfsProof(written);
    if (fsynced !== undefined && fsynced > c.seq && (viaSyncfs === undefined || viaSyncfs > c.seq))
      v.push(`${h.slice(0, 12)}…: its tmp file's fsync completed after the rename`);
    else if (fsynced === undefined && (viaSyncfs === undefined || viaSyncfs > c.seq))
      v.push(`${h.slice(0, 12)}…: renamed without an fsync of its tmp file or a syncfs after its last write`);
    else if (fsynced === undefined) bySyncfs += 1;
    const dirSync = dirSyncAfter(path.dirname(to), c.seq);
    const commit = nextWalSync(c.seq);
    if (dirSync === undefined) v.push(`${h.slice(0, 12)}…: its folder is never fsynced after the rename`);
    if (commit === undefined) v.push(`${h.slice(0, 12)}…: no catalogue commit (WAL fsync) after its rename`);
    if (dirSync !== undefined && commit !== undefined && commit < dirSync)
      v.push(`${h.slice(0, 12)}…: the catalogue committed (WAL fsync) before its folder's fsync`);
  }
  return { v, objects, bySyncfs };
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
  // Two files that `cp` copies (16 MiB and more): written by another process, fsynced by sync.
  const fx = makeFixture(t, {
    rng: rngFor('strace-order'),
    scale: 0.15,
    only: ['d1', 'd2'],
    largeFiles: [17 << 20, (20 << 20) + 5],
  });
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
  // /tmp is an in-kernel filesystem here: the batches of small files rest on syncfs.
  if (copy.bySyncfs === 0) v.push('no object of the first sync was made durable by a syncfs batch');
  const mid = checkInvariants(fx, { before, disksWithCatalogue: ['d1'] });
  const held = mid.truth.disks.find((d) => d.name === 'd1')?.objects.size ?? 0;
  if (copy.objects !== held) v.push(`the trace shows ${copy.objects} object renames, d1 holds ${held} objects`);
  v.push(...mid.violations);
  // 1b. The same on d2 with every file fsynced on its own (the FUSE order): no syncfs accepted.
  const trace1b = path.join(fx.root, 'sync1b.strace');
  const r1b = cli(fx.dataDir, ['sync', 'd2', '--quiet', '--fsync-batch', '8'], {
    prefix: traced(trace1b),
    env: { DISTBACKUP_FSYNC: 'file' },
  });
  if (r1b.code !== 0) v.push(`traced per-file sync exited ${r1b.code}: ${r1b.stderr.slice(0, 300)}`);
  countFault(FAULT, HOW);
  const calls1b = parseStrace(fs.readFileSync(trace1b, 'utf8'));
  const perFile = checkCopyOrder(calls1b, wal, false);
  v.push(...perFile.v.map((x) => `per-file fsync: ${x}`));
  if (perFile.objects === 0) v.push('the per-file sync renamed no object');
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
    `# strace: ${calls1.length} + ${calls1b.length} + ${calls2.length} calls, ${copy.objects} objects renamed (${copy.bySyncfs} made durable by syncfs), ${perFile.objects} fsynced one by one, ${unlinks.length} orphans unlinked\n`,
  );
  const after = checkInvariants(fx, { before, disksWithCatalogue: ['d1'] });
  v.push(...after.violations, ...checkClean(after.truth));
  countViolations(FAULT, v);
  assert.deepEqual(v, []);
});

test('syncfs failing with EIO (strace inject) before and after the renames: nothing of the batch counted, the run goes on file by file', {
  timeout: 180_000,
}, (t) => {
  if (skipUnlessCommands(t, ['update', 'sync'])) return;
  if (!have('strace')) {
    skipTest(t, 'strace not installed', true);
    return;
  }
  const fx = makeFixture(t, { rng: rngFor('strace-syncfs-eio'), scale: 0.15, only: ['d1', 'd2'] });
  if (fx === null) return;
  fx.update();
  const before = groundTruth(fx);
  const v: string[] = [];
  const outcomes: string[] = [];
  for (const [disk, which] of [
    ['d1', '.tmp'],
    ['d2', ''],
  ] as const) {
    const objects = path.join(fs.realpathSync(fx.disk(disk).path), 'distbackup-objects');
    const failing = which === '' ? objects : path.join(objects, which);
    const label = `syncfs of ${which === '' ? 'distbackup-objects/ (after the renames)' : '.tmp/ (before the renames)'}`;
    const prefix = ['strace', '-f', '-qq', '-o', '/dev/null', '-P', failing, '-e', 'trace=syncfs'];
    prefix.push('-e', 'inject=syncfs:error=EIO');
    // 1. Killed right after the failure was handled: nothing of the batch counted or in place.
    const killed = cli(fx.dataDir, ['sync', disk, '--quiet'], {
      prefix,
      env: { DISTBACKUP_TEST_KILL: 'after-syncfs-failed:1' },
    });
    countFault(FAULT, HOW);
    if (/ptrace|Operation not permitted/.test(killed.stderr)) {
      skipTest(t, `strace cannot trace here: ${killed.stderr.slice(0, 200)}`, true);
      return;
    }
    if (killed.code !== 137 && killed.signal !== 'SIGKILL')
      v.push(
        `${label}: the run was not killed at after-syncfs-failed (exit ${killed.code}): ${killed.stderr.slice(0, 300)}`,
      );
    const counted = readHome(fx.dataDir)?.copies.get(disk)?.size ?? -1;
    if (counted !== 0) v.push(`${label}: ${counted} copies counted on ${disk} after the failed batch`);
    const placed = scanDisk(fx.disk(disk)).objects.size;
    if (placed !== 0) v.push(`${label}: ${placed} objects of the failed batch left under their final names`);
    v.push(...checkInvariants(fx, { before }).violations.map((x) => `${label}, killed: ${x}`));
    // 2. The same fault to the end: the batch is written again, each file fsynced on its own.
    const r = cli(fx.dataDir, ['sync', disk], { prefix, timeoutMs: 90_000 });
    countFault(FAULT, HOW);
    if (r.code !== 0) v.push(`${label}: the run under the fault exited ${r.code}: ${r.stderr.slice(0, 300)}`);
    if (!/not counted and will be written again/.test(r.stderr))
      v.push(`${label}: the run did not say the batch is written again: ${r.stderr.slice(0, 300)}`);
    const mid = checkInvariants(fx, { before });
    v.push(...mid.violations.map((x) => `${label}, under the fault: ${x}`));
    const held = mid.truth.disks.find((d) => d.name === disk)?.objects.size ?? 0;
    const countedNow = readHome(fx.dataDir)?.copies.get(disk)?.size ?? 0;
    if (held === 0 || countedNow !== held)
      v.push(`${label}: ${countedNow} copies counted under the fault, ${disk} holds ${held} objects`);
    outcomes.push(`${label}: killed with ${counted} counted, then exit ${r.code} with ${held} copied`);
  }
  process.stdout.write(`# syncfs EIO: ${outcomes.join('; ')}\n`);
  for (const disk of ['d1', 'd2']) {
    const again = fx.run(['sync', disk, '--quiet']);
    if (again.code !== 0) v.push(`sync ${disk} without the fault exited ${again.code}: ${again.stderr.slice(0, 300)}`);
  }
  const after = checkInvariants(fx, { before, disksWithCatalogue: ['d1', 'd2'] });
  v.push(...after.violations, ...checkClean(after.truth));
  const held = after.truth.disks.find((d) => d.name === 'd1')?.objects.size ?? 0;
  const referenced = after.truth.home?.referenced.size ?? 0;
  if (held < referenced) v.push(`d1 holds ${held} of ${referenced} referenced objects after the clean runs`);
  countViolations(FAULT, v);
  assert.deepEqual(v, []);
});

test('the order checker itself: a rename before the fsync or syncfs, and a commit before the folder fsync or syncfs, are caught', () => {
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
  assert.deepEqual(checkCopyOrder(parseStrace(good.join('\n')), wal), { v: [], objects: 1, bySyncfs: 0 });
  // The fsync completes only after the rename (the resumed line comes later).
  const early = [good[0], good[1], good[4], good[3], good[5], good[6]].join('\n');
  assert.match(checkCopyOrder(parseStrace(early), wal).v.join('\n'), /fsync completed after the rename/);
  // The WAL is fsynced (the copy counted) before the folder's fsync.
  const commitFirst = [good[0], good[1], good[3], good[4], good[6], good[5]].join('\n');
  assert.match(checkCopyOrder(parseStrace(commitFirst), wal).v.join('\n'), /committed .* before its folder's fsync/);
  // A syncfs batch: written, syncfs, rename, syncfs, commit.
  const sfs = `syncfs(3</d/distbackup-objects/.tmp>) = 0`;
  const batch = [good[0], `10 pwrite64(26<${tmp}>, ""..., 100, 0) = 100`, `13 ${sfs}`, good[4], `14 ${sfs}`, good[6]];
  assert.deepEqual(checkCopyOrder(parseStrace(batch.join('\n')), wal), { v: [], objects: 1, bySyncfs: 1 });
  // A syncfs that completed before the file's last write proves nothing.
  const stale = [batch[0], batch[2], batch[1], batch[3], batch[4], batch[5]].join('\n');
  assert.match(checkCopyOrder(parseStrace(stale), wal).v.join('\n'), /renamed without an fsync .* or a syncfs/);
  // No syncfs (nor folder fsync) between the rename and the commit.
  const noSecond = [batch[0], batch[1], batch[2], batch[3], batch[5]].join('\n');
  assert.match(checkCopyOrder(parseStrace(noSecond), wal).v.join('\n'), /never fsynced after the rename/);
  // Where syncfs is not accepted (the per-file order), the batch is a violation.
  assert.match(checkCopyOrder(parseStrace(batch.join('\n')), wal, false).v.join('\n'), /renamed without an fsync/);
});
