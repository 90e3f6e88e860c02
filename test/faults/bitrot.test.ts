/**
 * Fault 6: bitrot on a disk (RELIABILITY.md failure modes 8 and 9). Objects get a flipped byte,
 * get truncated or deleted; a file with wrong bytes sits under a valid object name; stray files
 * with invalid names sit in the objects folder. Restore must never write wrong bytes and must
 * list what it could not restore; verify must name the bad and the missing ones (exit 3), move
 * bad bytes to `.quarantine/` (never delete them) and stop counting them; the next sync copies
 * them again; stray files are left alone. Sync must never count a copy whose bytes are wrong.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { countFault, countViolations, rngFor } from '../helpers/faults.js';
import { makeFixture, seededBytes } from '../helpers/faults-fixture.js';
import { skipUnlessCommands } from '../helpers/faults-kill.js';
import { checkClean, checkInvariants, groundTruth, hashFile, treeDigest } from '../helpers/invariants.js';
import { sweepStaleMounts } from '../helpers/mounts.js';

sweepStaleMounts();

const FAULT = 'bitrot on a disk';

function objPath(disk: string, h: string): string {
  return path.join(disk, 'distbackup-objects', h.slice(0, 3), h);
}

function writable(p: string): void {
  fs.chmodSync(p, 0o644);
}

test('bitrot: flipped, truncated, deleted objects and strays; restore, verify and sync each do the right thing', {
  timeout: 120_000,
}, (t) => {
  if (skipUnlessCommands(t, ['update', 'sync', 'verify', 'restore'])) return;
  const rng = rngFor('bitrot');
  const fx = makeFixture(t, { rng, scale: 0.2, only: ['d1', 'd2'] });
  if (fx === null) return;
  fx.update();
  fx.sync('d1');
  fx.sync('d2');
  const d1 = fx.disk('d1').path;
  const truth = groundTruth(fx);
  const onD1 = [...(truth.disks[0]?.objects.keys() ?? [])].filter((h) => (truth.disks[0]?.objects.get(h) ?? 0) > 100);
  const sorted = onD1.sort();
  const [flipped, truncated, deleted] = [sorted[0], sorted[1], sorted[2]];
  assert.ok(flipped !== undefined && truncated !== undefined && deleted !== undefined);
  writable(objPath(d1, flipped));
  const fd = fs.openSync(objPath(d1, flipped), 'r+');
  fs.writeSync(fd, Buffer.from([0xff ^ (fs.readFileSync(objPath(d1, flipped))[50] ?? 0)]), 0, 1, 50);
  fs.closeSync(fd);
  writable(objPath(d1, truncated));
  fs.truncateSync(objPath(d1, truncated), 10);
  fs.rmSync(objPath(d1, deleted));
  const strays = [
    path.join(d1, 'distbackup-objects', flipped.slice(0, 3), 'not-a-hash.txt'),
    path.join(d1, 'distbackup-objects', 'zzz', 'junk'),
    path.join(d1, 'distbackup-objects', 'junk-at-top'),
    path.join(d1, 'distbackup-objects', flipped.slice(0, 3), `${'A'.repeat(64)}`),
  ];
  for (const s of strays) {
    fs.mkdirSync(path.dirname(s), { recursive: true });
    fs.writeFileSync(s, 'stray');
  }
  countFault(FAULT, 'byte flipped, truncated, deleted objects; stray names in distbackup-objects/', 3 + strays.length);
  const planted = new Set([flipped, truncated, deleted]);
  const before = groundTruth(fx);
  const v: string[] = [];

  // Restore from the rotten disk: every file written is byte-exact; the rotten ones are listed.
  const dest = path.join(fx.root, 'dest');
  const r = fx.json<{ errors: { path: string; error: string }[]; remaining: number }>([
    'restore',
    '--to',
    dest,
    '--disk',
    d1,
  ]);
  if (r.code !== 4) v.push(`restore from a rotten disk exited ${r.code}, expected 4 (files still missing)`);
  const src = treeDigest(fx.src);
  const got = treeDigest(path.join(dest, 'data'));
  for (const [k, h] of got) if (src.get(k) !== h) v.push(`restore wrote wrong bytes at ${k}`);
  const missingFiles = [...src].filter(([k, h]) => h !== 'dir' && !got.has(k)).length;
  if ((r.json?.errors.length ?? 0) + (r.json?.remaining ?? 0) === 0 || missingFiles === 0) {
    v.push('restore did not report the rotten objects');
  }

  // Verify: names the bad ones and the missing one, quarantines, uncounts.
  const ver = fx.json<{ bad: string[]; missing: string[] }>(['verify', 'd1']);
  if (ver.code !== 3) v.push(`verify exited ${ver.code}, expected 3`);
  const bad = new Set(ver.json?.bad ?? []);
  const missing = new Set(ver.json?.missing ?? []);
  if (!bad.has(flipped)) v.push('verify did not name the flipped object as bad');
  if (!bad.has(truncated) && !missing.has(truncated)) v.push('verify did not name the truncated object');
  if (!missing.has(deleted)) v.push('verify did not name the deleted object as missing');
  if (bad.has(deleted)) v.push('verify called a missing object bad');
  const afterVerify = checkInvariants(fx, { before });
  v.push(...afterVerify.violations);
  const q = afterVerify.truth.disks[0]?.quarantine ?? [];
  if (!q.some((n) => n.startsWith(flipped))) v.push('the flipped object was not kept in .quarantine/');

  // Sync copies them again; strays stay.
  const s = fx.run(['sync', 'd1', '--quiet']);
  if (s.code !== 0) v.push(`sync after verify exited ${s.code}: ${s.stderr.slice(0, 300)}`);
  const end = checkInvariants(fx, { before, disksWithCatalogue: ['d1', 'd2'] });
  v.push(...end.violations, ...checkClean(end.truth));
  for (const h of planted) if (!end.truth.disks[0]?.objects.has(h)) v.push(`${h.slice(0, 12)}… not copied again`);
  for (const st of strays) if (!fs.existsSync(st)) v.push(`a stray file was deleted: ${st}`);
  countViolations(FAULT, v);
  assert.deepEqual(v, []);
});

test('bitrot: wrong bytes under a valid name of the right size are never counted as a copy', {
  timeout: 90_000,
}, (t) => {
  if (skipUnlessCommands(t, ['update', 'sync'])) return;
  const fx = makeFixture(t, { rng: rngFor('bitrot-adopt'), scale: 0.2, only: ['d1', 'd2'] });
  if (fx === null) return;
  fx.update();
  fx.sync('d2');
  const truth = groundTruth(fx);
  const onD2 = truth.disks[1]?.objects ?? new Map<string, number>();
  const missing = [...(truth.home?.referenced ?? [])].filter((h) => !onD2.has(h)).sort();
  const victim = missing[0];
  assert.ok(victim !== undefined, 'd2 should not hold everything');
  const size = fs.statSync(
    [...fx.tree.entries()].map(([k]) => path.join(fx.src, k)).find((p) => hashFile(p) === victim) ?? '',
  ).size;
  const p = objPath(fx.disk('d2').path, victim);
  fs.mkdirSync(path.dirname(p), { recursive: true });
  fs.writeFileSync(p, seededBytes('impostor', size));
  countFault(FAULT, 'wrong bytes under a referenced hash name, same size', 1);
  const r = fx.run(['sync', 'd2', '--quiet']);
  const v = checkInvariants(fx, { planted: new Set([victim]) }).violations.filter((x) => !x.startsWith('I1'));
  // I2 without the planted exemption: the impostor must not be counted.
  const counted = checkInvariants(fx).truth.home?.copies.get('d2')?.has(victim) ?? false;
  if (counted) v.push(`I2 d2: the impostor under ${victim.slice(0, 12)}… is counted as a copy`);
  if (r.code !== 0) v.push(`sync exited ${r.code}: ${r.stderr.slice(0, 200)}`);
  countViolations(FAULT, v);
  assert.deepEqual(v, []);
});
