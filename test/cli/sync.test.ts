import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { acquireLock } from '../../src/catalog/lock.js';
import { runCli, runCliJson } from '../helpers/cli.js';
import { writeTree } from '../helpers/tmp.js';
import { bytes, catalogue, diskObjects, makeWorld } from '../integration/sync-helpers.js';

interface SyncJson {
  disk: string;
  deleted: number;
  evicted: number;
  copied: number;
  bytesCopied: number;
  skipped: { path: string; error: string }[];
  minCopiesBefore: number;
  minCopiesAfter: number;
  elapsedMs: number;
  phasesMs: Record<string, number>;
}

async function world(t: Parameters<typeof makeWorld>[0]) {
  const w = makeWorld(t);
  writeTree(w.src, { 'a/1.bin': bytes(1, 30_000), 'a/2.bin': bytes(2, 20_000), 'b/3.bin': bytes(3, 1000) });
  await catalogue(w);
  const d1 = path.join(w.root, 'd1');
  const d2 = path.join(w.root, 'd2');
  assert.equal(runCli(w.home, ['disk', 'add', 'd1', d1, '--size', '10M']).code, 0);
  assert.equal(runCli(w.home, ['disk', 'add', 'd2', d2, '--size', '10M']).code, 0);
  return { w, d1, d2 };
}

test('sync --json prints the SPEC document; plan shows the same plan and changes nothing', async (t) => {
  const { w, d1 } = await world(t);
  const plan = runCliJson<SyncJson>(w.home, ['plan', 'd1']);
  assert.equal(plan.code, 0, plan.stderr);
  assert.equal(plan.json.copied, 3);
  assert.equal(diskObjects(d1).size, 0);
  const human = runCli(w.home, ['plan', 'd1']);
  assert.match(human.stdout, /copy\s+3 objects/);
  assert.match(human.stdout, /copies before .*\n.*copies after/);
  const r = runCliJson<SyncJson>(w.home, ['sync', 'd1']);
  assert.equal(r.code, 0, r.stderr);
  for (const k of [
    'disk',
    'deleted',
    'evicted',
    'copied',
    'bytesCopied',
    'skipped',
    'minCopiesBefore',
    'minCopiesAfter',
  ]) {
    assert.ok(k in r.json, `sync --json has ${k}`);
  }
  assert.equal(r.json.disk, 'd1');
  assert.equal(r.json.copied, 3);
  assert.equal(r.json.bytesCopied, 51_000);
  assert.equal(r.json.minCopiesBefore, 0);
  assert.equal(r.json.minCopiesAfter, 1);
  assert.deepEqual(r.json.skipped, []);
  // Where the time went: every step, none longer than the whole run.
  assert.deepEqual(Object.keys(r.json.phasesMs), ['reconcile', 'plan', 'delete', 'copy', 'catalogue']);
  const phases = Object.values(r.json.phasesMs);
  for (const ms of phases) assert.ok(Number.isInteger(ms) && ms >= 0, `phase time ${ms}`);
  assert.ok(
    phases.reduce((a, b) => a + b, 0) <= r.json.elapsedMs + phases.length,
    `${phases.join('+')} within ${r.json.elapsedMs}`,
  );
  // backup is an alias, --disk PATH finds the disk by its json
  const again = runCliJson<SyncJson>(w.home, ['backup', '--disk', d1]);
  assert.equal(again.code, 0, again.stderr);
  assert.equal(again.json.copied, 0);
});

test('wrong disk: exit 2 with one line naming both disks', async (t) => {
  const { w, d2 } = await world(t);
  const r = runCli(w.home, ['sync', 'd1', '--disk', d2]);
  assert.equal(r.code, 2);
  assert.equal(r.stderr.trim().split('\n').length, 1);
  assert.match(r.stderr, /holds disk 'd2'.*not 'd1'.*wrong disk/);
});

test('a disk locked by another run is refused at once (exit 2)', async (t) => {
  const { w, d1 } = await world(t);
  const lock = acquireLock(path.join(d1, '.distbackup-lock'), 'test');
  try {
    const r = runCli(w.home, ['sync', 'd1']);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /in use by another distbackup process/);
  } finally {
    lock.release();
  }
  assert.equal(runCli(w.home, ['sync', 'd1', '-q']).code, 0);
});

test('files without a hash: sync refuses with exit 2 and says how many', async (t) => {
  const { w } = await world(t);
  w.cat.db.prepare('UPDATE files SET object_id = NULL WHERE kind = 0').run();
  const r = runCli(w.home, ['sync', 'd1']);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /3 catalogued files have no hash yet.*update/);
});

test('a skipped source makes sync exit 1 with the file listed in skipped', async (t) => {
  const { w, d1 } = await world(t);
  fs.writeFileSync(path.join(w.src, 'a', '2.bin'), bytes(99, 20_000));
  const r = runCliJson<SyncJson>(w.home, ['sync', 'd1']);
  assert.equal(r.code, 1);
  assert.equal(r.json.skipped.length, 1);
  assert.match(r.json.skipped[0]?.path ?? '', /a\/2\.bin$/);
  assert.equal(r.json.copied, 2);
  assert.equal(diskObjects(d1).size, 2);
});

test('--bwlimit, --verify readback, --profile ssd and --fsync-batch run to the same result', async (t) => {
  const { w, d1 } = await world(t);
  const r = runCliJson<SyncJson>(w.home, [
    'sync',
    'd1',
    '--bwlimit',
    '10M',
    '--verify',
    'readback',
    '--profile',
    'ssd',
    '--fsync-batch',
    '1',
  ]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.json.copied, 3);
  for (const ok of diskObjects(d1).values()) assert.ok(ok);
  assert.equal(runCli(w.home, ['sync', 'd1', '--bwlimit', 'fast']).code, 1);
});

test('files of 16 MiB and more, copied by `cp` and checked read back, end as through the buffered loop', async (t) => {
  const w = makeWorld(t);
  const twin = bytes(11, 17 << 20);
  const rewritten = bytes(12, 16 << 20);
  const intact = bytes(13, (20 << 20) + 7);
  const grown = bytes(14, 16 << 20);
  writeTree(w.src, {
    // One object with two sources: the one rewritten below, and an intact one.
    'v/a.bin': twin,
    'v/b.bin': twin,
    'v/c.bin': rewritten,
    'v/d.bin': intact,
    'v/e.bin': grown,
  });
  await catalogue(w);
  // After the update, with sizes kept: the copy by `cp` of these hashes to something else.
  fs.writeFileSync(path.join(w.src, 'v', 'a.bin'), bytes(21, 17 << 20));
  fs.writeFileSync(path.join(w.src, 'v', 'c.bin'), bytes(22, 16 << 20));
  // Grown: its catalogued first 16 MiB are the object.
  fs.appendFileSync(path.join(w.src, 'v', 'e.bin'), 'more');
  const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');
  const want = new Map([
    [sha(twin), true],
    [sha(intact), true],
    [sha(grown), true],
  ]);
  // A `cp` first on PATH that notes each call, then runs the real one: the copies by `cp` ran.
  const bin = path.join(w.root, 'bin');
  const calls = path.join(w.root, 'cp-calls');
  fs.mkdirSync(bin);
  const real = ['/usr/bin/cp', '/bin/cp'].find((p) => fs.existsSync(p)) ?? 'cp';
  fs.writeFileSync(path.join(bin, 'cp'), `#!/bin/sh\necho "$@" >> ${calls}\nexec ${real} "$@"\n`, { mode: 0o755 });
  const env = { PATH: `${bin}:${process.env.PATH ?? ''}` };
  // The copies by `cp` (the default), then the buffered loop (--bwlimit) on a second disk.
  for (const [name, extra] of [
    ['d1', []],
    ['d2', ['--bwlimit', '1G']],
  ] as const) {
    const d = path.join(w.root, name);
    assert.equal(runCli(w.home, ['disk', 'add', name, d, '--size', '128M']).code, 0);
    fs.rmSync(calls, { force: true });
    const r = runCliJson<SyncJson>(w.home, ['sync', name, ...extra], env);
    assert.equal(r.code, 1, `${name}: ${r.stderr}`);
    assert.deepEqual(
      r.json.skipped.map((s) => path.basename(s.path)),
      ['c.bin'],
      name,
    );
    assert.match(r.json.skipped[0]?.error ?? '', /content changed since the last update/);
    assert.equal(r.json.copied, 3, name);
    assert.deepEqual(diskObjects(d), want, name);
    for (const h of want.keys()) {
      const st = fs.statSync(path.join(d, 'distbackup-objects', h.slice(0, 3), h));
      assert.equal(st.mode & 0o777, 0o444, `${name}: object ${h} is read-only`);
    }
    assert.deepEqual(fs.readdirSync(path.join(d, 'distbackup-objects', '.tmp')), [], `${name}: .tmp is empty`);
    // Copied by cp: the intact file and a source of the twin at least (the grown one by the loop).
    const n = fs.existsSync(calls) ? fs.readFileSync(calls, 'utf8').trim().split('\n').length : 0;
    if (name === 'd1') assert.ok(n >= 2, `d1: ${n} copies by cp`);
    else assert.equal(n, 0, 'd2: --bwlimit copies through the loop');
  }
});

test('more than 1,000 skipped copies: stderr names the first 1,000 and counts the rest; --json lists all', async (t) => {
  const w = makeWorld(t);
  const files: Record<string, Buffer> = {};
  for (let i = 0; i < 1003; i++) files[`gone/f${i}`] = bytes(7000 + i, 32);
  writeTree(w.src, files);
  await catalogue(w);
  fs.rmSync(path.join(w.src, 'gone'), { recursive: true });
  const d = path.join(w.root, 'd');
  assert.equal(runCli(w.home, ['disk', 'add', 'd', d, '--size', '100M']).code, 0);
  const r = runCli(w.home, ['sync', 'd', '--quiet', '--dry-run']);
  assert.equal(r.code, 0, r.stderr);
  const real = runCli(w.home, ['sync', 'd', '--quiet']);
  assert.equal(real.code, 1, real.stderr);
  const lines = real.stderr.split('\n');
  assert.equal(lines.filter((l) => l.startsWith('distbackup: warning: skipped ')).length, 1000);
  assert.ok(
    lines.includes("distbackup: warning: and 3 more skipped (all in --json 'skipped')"),
    real.stderr.slice(-300),
  );
  const json = runCliJson<SyncJson>(w.home, ['sync', 'd']);
  assert.equal(json.json.skipped.length, 1003);
});

test('Ctrl-C among the deletions of orphans: exit 130, nothing evicted or copied, what was uncounted is not on the disk counted', async (t) => {
  const w = makeWorld(t);
  const files: Record<string, Buffer> = {};
  for (let i = 0; i < 40; i++) files[`old/f${i}`] = bytes(8000 + i, 64);
  files['keep.txt'] = bytes(8999, 64);
  writeTree(w.src, files);
  await catalogue(w);
  const d = path.join(w.root, 'd');
  assert.equal(runCli(w.home, ['disk', 'add', 'd', d, '--size', '100M']).code, 0);
  assert.equal(runCli(w.home, ['sync', 'd', '--quiet']).code, 0);
  fs.rmSync(path.join(w.src, 'old'), { recursive: true });
  await catalogue(w);
  // A Ctrl-C that lands at the fifth unlink of an orphan.
  const r = runCli(w.home, ['sync', 'd'], { DISTBACKUP_TEST_KILL: 'after-orphan-delete:5:SIGINT' });
  assert.equal(r.code, 130, r.stderr);
  assert.match(
    r.stderr,
    /sync of disk 'd' interrupted: 0 objects .* 0 evicted; the catalogue copy on the disk is written/,
  );
  const again = runCliJson<SyncJson>(w.home, ['sync', 'd']);
  assert.equal(again.code, 0, again.stderr);
  assert.equal(diskObjects(d).size, 1, 'the next sync deletes the rest');
});
