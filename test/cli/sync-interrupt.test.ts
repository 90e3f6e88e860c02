/**
 * Ctrl-C during a sync (issue 8): the real CLI, interrupted with SIGINT while it is copying,
 * ends with exit 130 and one line saying what was kept; every copy the catalogue counts is on
 * the disk and hashes to its name, nothing partial is left under a final name, and the next
 * sync completes. `--bwlimit` keeps the copy long enough to be interrupted in the middle
 * (its wait ends at once on Ctrl-C); no duration is asserted.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { DISK_CATALOGUE, OBJECTS_DIR } from '../../src/disk/layout.js';
import { addDisk } from '../../src/disks/disks.js';
import { runCli, startCli } from '../helpers/cli.js';
import { writeTree } from '../helpers/tmp.js';
import { bytes, catalogue, countedOn, diskObjects, makeWorld } from '../integration/sync-helpers.js';

/** Names of the objects under their final names on the disk at `root` (none in .tmp/). */
function namedObjects(root: string): number {
  const objs = path.join(root, OBJECTS_DIR);
  if (!fs.existsSync(objs)) return 0;
  let n = 0;
  for (const d of fs.readdirSync(objs)) {
    if (d.startsWith('.')) continue;
    n += fs.readdirSync(path.join(objs, d)).length;
  }
  return n;
}

/** Resolve once `cond()` holds, checking every 20 ms (a synchronisation, not a timing). */
async function until(cond: () => boolean, what: string, exited: () => boolean): Promise<void> {
  while (!cond()) {
    if (exited()) throw new Error(`the sync ended before ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

test('SIGINT mid-copy: exit 130, one line saying what was kept, every counted copy on the disk and correct', {
  timeout: 180_000,
}, async (t) => {
  const w = makeWorld(t);
  const files: Record<string, Buffer> = {};
  // 24 files of 1.5 MiB (hashed on the hash thread) and 24 small ones: 36 MiB at 2 MB/s.
  for (let i = 0; i < 24; i++) {
    files[`big/b${i}.bin`] = bytes(500 + i, 1536 * 1024);
    files[`small/s${i}.txt`] = bytes(900 + i, 3000 + i);
  }
  writeTree(w.src, files);
  await catalogue(w);
  const disk = path.join(w.root, 'disk');
  addDisk(w.cat, 'd', disk, { sizeBytes: 1e9 });

  const run = startCli(w.home, ['sync', 'd', '--bwlimit', '2M', '--fsync-batch', '2']);
  let exited = false;
  void run.done.then(() => {
    exited = true;
  });
  // Mid-copy: some objects are already under their final names, most are still to come.
  await until(
    () => namedObjects(disk) >= 2,
    'two objects were stored',
    () => exited,
  );
  run.child.kill('SIGINT');
  const r = await run.done;

  assert.equal(r.code, 130, `exit ${r.code} (signal ${r.signal}): ${r.stderr}`);
  const lines = r.stderr.split('\n').filter((l) => /sync of disk .* interrupted/.test(l));
  assert.equal(lines.length, 1, r.stderr);
  const m = /(\d+) objects \(.*\) copied, made durable and recorded/.exec(lines[0] ?? '');
  assert.ok(m !== null, lines[0]);
  const reported = Number(m?.[1]);

  const onDisk = diskObjects(disk);
  const counted = countedOn(w.cat, 'd');
  assert.equal(counted.size, reported, 'the line reports what the catalogue counts');
  assert.ok(counted.size >= 2, `the copies stored before Ctrl-C are kept (${counted.size})`);
  assert.ok(counted.size < 48, 'the run was really interrupted mid-copy');
  for (const [hash, ok] of onDisk) assert.ok(ok, `${hash} on the disk does not hash to its name`);
  for (const h of counted) assert.equal(onDisk.get(h), true, `${h} is counted but not on the disk`);
  // A first sync stopped early still leaves a catalogue copy: the disk had none.
  assert.ok(fs.existsSync(path.join(disk, DISK_CATALOGUE)), 'the disk is restorable on its own');
  assert.match(lines[0] ?? '', /the catalogue copy on the disk is written/);

  const again = runCli(w.home, ['sync', 'd', '-q']);
  assert.equal(again.code, 0, again.stderr);
  assert.equal(countedOn(w.cat, 'd').size, 48);
  for (const [hash, ok] of diskObjects(disk)) assert.ok(ok, `${hash} does not hash to its name`);
  assert.deepEqual(fs.readdirSync(path.join(disk, OBJECTS_DIR, '.tmp')), []);
});

/**
 * Start a slow sync of `d`, send `signals[0]` once it stored an object, and each next signal once
 * the run has said it heard the one before ("interrupted:" on stderr); resolves with the exit.
 */
async function stopSync(home: string, disk: string, signals: NodeJS.Signals[]) {
  const run = startCli(home, ['sync', 'd', '--bwlimit', '1M', '--fsync-batch', '1']);
  let exited = false;
  let heard = '';
  run.child.stderr.on('data', (d: Buffer) => {
    heard += d.toString();
  });
  void run.done.then(() => {
    exited = true;
  });
  const before = namedObjects(disk);
  await until(
    () => namedObjects(disk) > before,
    'an object was stored',
    () => exited,
  );
  for (const [i, sig] of signals.entries()) {
    if (i > 0)
      await until(
        () => heard.includes('interrupted:'),
        'the first signal was heard',
        () => exited,
      );
    run.child.kill(sig);
  }
  return run.done;
}

test('SIGTERM stops a sync as Ctrl-C does (exit 130, what is durable recorded); a later sync stopped early leaves the catalogue copy as it was', {
  timeout: 120_000,
}, async (t) => {
  const w = makeWorld(t);
  const files: Record<string, Buffer> = {};
  for (let i = 0; i < 12; i++) files[`big/b${i}.bin`] = bytes(700 + i, 1536 * 1024);
  writeTree(w.src, files);
  await catalogue(w);
  const disk = path.join(w.root, 'disk');
  addDisk(w.cat, 'd', disk, { sizeBytes: 1e9 });
  const r = await stopSync(w.home, disk, ['SIGTERM']);
  assert.equal(r.code, 130, `exit ${r.code ?? r.signal}: ${r.stderr.slice(0, 300)}`);
  assert.match(r.stderr, /sync of disk 'd' interrupted: .* copied, made durable and recorded/);
  const copyBefore = fs.statSync(path.join(disk, DISK_CATALOGUE)).mtimeMs;
  // A later sync stopped early leaves the copy there as it was (written by the next one).
  const r2 = await stopSync(w.home, disk, ['SIGINT']);
  assert.equal(r2.code, 130, r2.stderr);
  assert.match(r2.stderr, /the catalogue copy on the disk is left as it was/);
  assert.equal(fs.statSync(path.join(disk, DISK_CATALOGUE)).mtimeMs, copyBefore);
  for (const h of countedOn(w.cat, 'd')) assert.equal(diskObjects(disk).get(h), true, `${h} counted, not sound`);
});
