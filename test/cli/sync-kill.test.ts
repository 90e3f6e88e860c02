/**
 * SIGKILL at every named crash point of a sync (RELIABILITY.md test 2): afterwards every named
 * object on the disk hashes to its name, the catalogue counts only objects that are there, and
 * the next sync completes and converges to the fault-free result.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { type TestContext, test } from 'node:test';
import { DISK_CATALOGUE_STALE, objectPath } from '../../src/disk/layout.js';
import { addDisk } from '../../src/disks/disks.js';
import { runSync } from '../../src/sync/sync.js';
import { runCli, startCli } from '../helpers/cli.js';
import { writeTree } from '../helpers/tmp.js';
import {
  bytes,
  catalogue,
  copiesPerObject,
  countedOn,
  diskObjects,
  makeWorld,
  type World,
} from '../integration/sync-helpers.js';

/** Disk b holds old objects that also sit on a; then files are deleted (orphans) and added (evictions). */
async function scenario(t: TestContext): Promise<{ w: World; a: string; b: string }> {
  const w = makeWorld(t);
  const files: Record<string, Buffer> = {};
  for (let i = 0; i < 30; i++) files[`old/f${i}.bin`] = bytes(i + 1, 8192 + i * 1024);
  writeTree(w.src, files);
  await catalogue(w);
  const a = path.join(w.root, 'a');
  const b = path.join(w.root, 'b');
  addDisk(w.cat, 'a', a, { sizeBytes: 50e6 });
  addDisk(w.cat, 'b', b, { sizeBytes: 500_000 });
  await runSync(w.cat, { name: 'a' });
  await runSync(w.cat, { name: 'b' });
  for (let i = 0; i < 4; i++) fs.rmSync(path.join(w.src, 'old', `f${i}.bin`));
  const added: Record<string, Buffer> = {};
  for (let i = 0; i < 12; i++) added[`new/n${i}.bin`] = bytes(1000 + i, 20_000 + i * 512);
  writeTree(w.src, added);
  await catalogue(w);
  return { w, a, b };
}

function assertSound(w: World, name: string, root: string): void {
  const onDisk = diskObjects(root);
  for (const [hash, ok] of onDisk) assert.ok(ok, `${hash} does not hash to its name after the kill`);
  for (const h of countedOn(w.cat, name)) assert.ok(onDisk.get(h) === true, `${h} is counted but not on the disk`);
}

const POINTS: [string, number][] = [
  ['after-orphan-delete', 2],
  ['mid-eviction', 1],
  ['after-tmp-write', 1],
  ['after-tmp-write', 5],
  ['after-fsync', 1],
  ['after-rename', 3],
  ['after-dirsync', 1],
  ['after-batch-commit', 2],
  ['mid-catalogue-copy', 1],
  ['mid-catalogue-copy', 2],
];

for (const [point, hit] of POINTS) {
  test(`SIGKILL at ${point}:${hit} leaves sound objects and a catalogue that counts only what is there`, async (t) => {
    const { w, b } = await scenario(t);
    const killed = runCli(w.home, ['sync', 'b', '--fsync-batch', '3', '-q'], {
      DISTBACKUP_TEST_KILL: `${point}:${hit}`,
    });
    assert.equal(killed.code, -1, `the run was killed at ${point} (exit ${killed.code}: ${killed.stderr})`);
    assertSound(w, 'b', b);
    for (const [h, n] of copiesPerObject(w.cat)) {
      if (h !== '') assert.ok(n >= 0);
    }
    const stale = path.join(b, DISK_CATALOGUE_STALE);
    if (point === 'mid-eviction') {
      // Evicted after the catalogue copy was written: the copy says it may lag, and a restore
      // from it says so too.
      assert.ok(fs.existsSync(stale), 'the catalogue copy is marked stale before an eviction');
      const r = runCli(w.home, ['restore', '--to', path.join(w.root, 'out'), '--disk', b, '--catalogue', 'disk']);
      assert.match(r.stderr, /^warning: the catalogue copy on .* is marked stale/m);
    }
    const again = runCli(w.home, ['sync', 'b', '--json']);
    assert.equal(again.code, 0, again.stderr);
    assertSound(w, 'b', b);
    assert.equal(fs.readdirSync(path.join(b, 'distbackup-objects', '.tmp')).length, 0);
    assert.ok(!fs.existsSync(stale), 'a complete sync leaves the catalogue copy current');
    assert.deepEqual([...countedOn(w.cat, 'b')].sort(), [...diskObjects(b).keys()].sort());
    for (const [h, n] of copiesPerObject(w.cat)) assert.ok(n >= 1, `${h} has no copy after the re-run`);
    const replan = JSON.parse(runCli(w.home, ['plan', 'b', '--json']).stdout) as { copied: number; evicted: number };
    assert.equal(replan.copied + replan.evicted, 0);
    // No temp file of the catalogue copy is left beside it.
    assert.deepEqual(
      fs.readdirSync(b).filter((f) => f.endsWith('.tmp')),
      [],
    );
  });
}

test('an orphan that is no longer a regular file when its unlink comes is left uncounted, never counted again', async (t) => {
  const { w, b } = await scenario(t);
  const before = countedOn(w.cat, 'b');
  // The run stops itself after its first orphan's unlink: every orphan is uncounted by then.
  const run = startCli(w.home, ['sync', 'b'], { DISTBACKUP_TEST_KILL: 'after-orphan-delete:1:SIGSTOP' });
  const pid = run.child.pid as number;
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline && !/\) T /.test(fs.readFileSync(`/proc/${pid}/stat`, 'utf8'))) {
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  const counted = countedOn(w.cat, 'b');
  const swapped = [...before].filter((h) => !counted.has(h) && fs.existsSync(objectPath(b, h)));
  assert.ok(swapped.length > 0, 'orphans wait for their unlink');
  for (const h of swapped) {
    fs.rmSync(objectPath(b, h));
    fs.mkdirSync(objectPath(b, h));
  }
  process.kill(pid, 'SIGCONT');
  const r = await run.done;
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /not a regular file on the disk; refusing to delete it; no longer counted/);
  const after = countedOn(w.cat, 'b');
  for (const h of swapped) assert.ok(!after.has(h), `${h} (a folder now) is not counted`);
});
