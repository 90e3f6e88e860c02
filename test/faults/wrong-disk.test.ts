/**
 * Fault 8: the wrong disk (RELIABILITY.md test 11, failure modes 5 and 6). Two disks swapped
 * between their folders; `--disk` naming the other disk; `distbackup-disk.json` missing,
 * truncated or not JSON; a disk registered by another catalogue; a `cp -a` clone; a disk rolled
 * back to an older image. Each is refused with a clear one-line error, or recognised for what it
 * really is; nothing is counted twice or counted that is not there; no object is lost (I3).
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { cli, countFault, countViolations, expectExit, rngFor } from '../helpers/faults.js';
import { type Fixture, makeFixture, seededBytes } from '../helpers/faults-fixture.js';
import { skipUnlessCommands } from '../helpers/faults-kill.js';
import { checkClean, checkInvariants, groundTruth, treeDigest, type World } from '../helpers/invariants.js';
import { sweepStaleMounts } from '../helpers/mounts.js';

sweepStaleMounts();

const FAULT = 'wrong disk';

/** Run `args`; it must be refused (exit in `codes`) with one error line, and change no file on `disk`. */
function refused(fx: Fixture, args: string[], disk: string, codes: number[], what: string): string[] {
  const before = treeDigest(disk);
  const r = fx.run(args, { timeoutMs: 30_000 });
  countFault(FAULT, 'swapped folders, --disk of another disk, broken json, foreign, cloned, rolled-back disks');
  const v: string[] = [];
  if (!codes.includes(r.code ?? -1)) v.push(`${what}: exit ${r.code}, expected ${codes.join(' or ')}`);
  const lines = r.stderr.split('\n').filter((l) => l.startsWith('distbackup: '));
  if (lines.length !== 1) v.push(`${what}: ${lines.length} error lines: ${r.stderr.slice(0, 300)}`);
  const after = treeDigest(disk);
  const changed = [...new Set([...before.keys(), ...after.keys()])].filter(
    (k) => before.get(k) !== after.get(k) && !k.startsWith('.distbackup-lock'),
  );
  if (changed.length > 0) v.push(`${what}: the refused run changed ${changed.slice(0, 5).join(', ')} on the disk`);
  return v;
}

test('swapped folders, --disk naming the other disk, and broken distbackup-disk.json are refused', {
  timeout: 120_000,
}, (t) => {
  if (skipUnlessCommands(t, ['update', 'sync'])) return;
  const fx = makeFixture(t, { rng: rngFor('wrong-disk'), scale: 0.2 });
  if (fx === null) return;
  fx.update();
  fx.sync('d1');
  fx.sync('d2');
  const p1 = fx.disk('d1').path;
  const p2 = fx.disk('d2').path;
  const before = groundTruth(fx);
  const v: string[] = [];
  v.push(...refused(fx, ['sync', 'd1', '--disk', p2, '--quiet'], p2, [2], '--disk pointing at d2 under the name d1'));
  // Swap the two folders: each name must be refused at the other's folder, or found where it went.
  const tmp = `${p1}.swap`;
  fs.renameSync(p1, tmp);
  fs.renameSync(p2, p1);
  fs.renameSync(tmp, p2);
  const swapped: World = {
    dataDir: fx.dataDir,
    disks: [
      { name: 'd1', path: p2 },
      { name: 'd2', path: p1 },
      { name: 'd3', path: fx.disk('d3').path },
    ],
  };
  const r = fx.run(['sync', 'd1', '--quiet'], { timeoutMs: 60_000 });
  countFault(FAULT, 'swapped folders');
  if (r.code !== 0 && r.code !== 2) v.push(`sync d1 after a swap: exit ${r.code}: ${r.stderr.slice(0, 200)}`);
  v.push(...checkInvariants(swapped, { before }).violations.map((x) => `after the swap: ${x}`));
  // Swap back; break the json of d2 three ways.
  fs.renameSync(p1, tmp);
  fs.renameSync(p2, p1);
  fs.renameSync(tmp, p2);
  const json = path.join(p2, 'distbackup-disk.json');
  const good = fs.readFileSync(json);
  const broken: [string, () => void, number[]][] = [
    ['json missing', () => fs.rmSync(json), [2]],
    ['json truncated', () => fs.writeFileSync(json, good.subarray(0, 20)), [1, 2]],
    ['json not JSON', () => fs.writeFileSync(json, seededBytes('garbage', 300)), [1, 2]],
  ];
  for (const [what, mutate, codes] of broken) {
    mutate();
    v.push(...refused(fx, ['sync', 'd2', '--quiet'], p2, codes, what));
    v.push(...refused(fx, ['sync', '--disk', p2, '--quiet'], p2, codes, `${what} (--disk)`));
    fs.writeFileSync(json, good);
  }
  const end = checkInvariants(fx, { before, disksWithCatalogue: ['d1', 'd2'] });
  v.push(...end.violations);
  const again = fx.run(['sync', 'd2', '--quiet']);
  if (again.code !== 0) v.push(`sync d2 with its json back: exit ${again.code}: ${again.stderr.slice(0, 200)}`);
  countViolations(FAULT, v);
  assert.deepEqual(v, []);
});

test('a disk of another catalogue, a cp -a clone and a rolled-back image are never counted wrong', {
  timeout: 120_000,
}, (t) => {
  if (skipUnlessCommands(t, ['update', 'sync', 'disk list'])) return;
  const fx = makeFixture(t, { rng: rngFor('wrong-disk-2'), scale: 0.2 });
  if (fx === null) return;
  fx.update();
  fx.sync('d1');
  const p1 = fx.disk('d1').path;
  const v: string[] = [];
  // Another catalogue's disk: a second home with its own source and disk.
  const home2 = path.join(fx.root, 'home2');
  const src2 = path.join(fx.root, 'src2');
  fs.mkdirSync(src2);
  fs.writeFileSync(path.join(src2, 'other.bin'), seededBytes('other', 20_000));
  const foreign = path.join(fx.root, 'foreign');
  fs.mkdirSync(foreign);
  expectExit(cli(home2, ['source', 'map', '/o', src2]), 0, 'map in the other catalogue');
  expectExit(cli(home2, ['update', '--quiet']), 0, 'update in the other catalogue');
  expectExit(cli(home2, ['disk', 'add', 'f', foreign, '--size', '10M']), 0, 'disk add in the other catalogue');
  expectExit(cli(home2, ['sync', 'f', '--quiet']), 0, 'sync in the other catalogue');
  v.push(...refused(fx, ['sync', '--disk', foreign, '--quiet'], foreign, [2], "another catalogue's disk"));
  // A clone of d1 (same uuid) presented as a new disk.
  const clone = path.join(fx.root, 'clone');
  fs.cpSync(p1, clone, { recursive: true, preserveTimestamps: true });
  const add = fx.run(['disk', 'add', 'clone', clone, '--size', String(fx.sizes.d1)]);
  countFault(FAULT, 'a cp -a clone registered as a new disk');
  if (add.code !== 2 || !/already registered as 'd1'/.test(add.stderr))
    v.push(`disk add of a clone: exit ${add.code}, expected 2: ${add.stderr.slice(0, 200)}`);
  const list = fx.json<{ name: string; uuid: string }[]>(['disk', 'list']);
  const uuids = (list.json ?? []).map((d) => d.uuid);
  if (new Set(uuids).size !== uuids.length) v.push(`two registered disks share a uuid: ${uuids.join(', ')}`);
  if (add.code === 0) {
    const s = fx.run(['sync', 'clone', '--quiet']);
    if (s.code !== 0 && s.code !== 2) v.push(`sync of the re-identified clone: exit ${s.code}`);
    const s1 = fx.run(['sync', 'd1', '--quiet']);
    if (s1.code !== 0 && s1.code !== 2) v.push(`sync d1 after the clone was added: exit ${s1.code}: ${s1.stderr}`);
  }
  const cloneWorld: World = { dataDir: fx.dataDir, disks: [...fx.disks, { name: 'clone', path: clone }] };
  v.push(...checkInvariants(cloneWorld).violations.map((x) => `clone: ${x}`));
  // A rolled-back image of d1: saved now, d1 synced after changes, then the old image put back.
  fx.save('old');
  for (let i = 0; i < 10; i++) fs.writeFileSync(path.join(fx.src, `late${i}.bin`), seededBytes(`late${i}`, 30_000));
  fx.update();
  fx.sync('d1');
  const beforeRollback = groundTruth(fx);
  const oldD1 = path.join(fx.root, 'saved', 'old', '1');
  fs.rmSync(p1, { recursive: true, force: true });
  fs.cpSync(oldD1, p1, { recursive: true, preserveTimestamps: true });
  countFault(FAULT, 'a disk rolled back to an older image');
  const r = fx.run(['sync', 'd1', '--quiet']);
  if (r.code !== 0) v.push(`sync of the rolled-back d1: exit ${r.code}: ${r.stderr.slice(0, 300)}`);
  const after = checkInvariants(fx, { before: beforeRollback, disksWithCatalogue: ['d1'] });
  v.push(...after.violations.map((x) => `rollback: ${x}`), ...checkClean(after.truth));
  const held = after.truth.disks[0]?.objects.size ?? 0;
  if (held < (after.truth.home?.referenced.size ?? 0)) v.push(`rollback: d1 holds ${held} objects, not all`);
  countViolations(FAULT, v);
  assert.deepEqual(v, []);
});
