/**
 * verify through the built CLI: a run killed with SIGKILL or stopped with SIGINT goes on where
 * it stopped (real child processes; the signals land at a known commit through the kill points,
 * so nothing depends on timing), `--errors FILE`, `-n/--dry-run`, and `--profile ssd` from dist/
 * (a verify this small starts no worker thread: test/integration/verify-check-pool.test.ts
 * covers the thread).
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { type TestContext, test } from 'node:test';
import Database from 'better-sqlite3';
import { DISK_CATALOGUE_STALE, objectPath } from '../../src/disk/layout.js';
import type { VerifyDoc } from '../../src/verify/verify.js';
import { runCli, runCliJson, startCli } from '../helpers/cli.js';
import { forceReadOnly, mountExt4 } from '../helpers/mounts.js';
import { cliPool, downgradeToSchema3, makeSourceTree } from '../helpers/pool.js';
import { tempDir } from '../helpers/tmp.js';

function pool(t: TestContext, files = 40) {
  const base = tempDir(t);
  const src = path.join(base, 'src');
  const home = path.join(base, 'home');
  fs.mkdirSync(src);
  makeSourceTree(src, { files });
  const disk = path.join(base, 'd1');
  const hashes = cliPool(home, src, disk);
  return { base, home, disk, hashes };
}

/** verified_ms of every copy on d1, read with SQLite directly (whatever schema the CLI wrote). */
function stamps(home: string): Map<string, number | null> {
  const db = new Database(path.join(home, 'distbackup.sqlite'), { readonly: true });
  try {
    const rows = db
      .prepare('SELECT o.hash AS h, c.verified_ms AS v FROM copies c JOIN objects o ON o.id = c.object_id')
      .all() as { h: string; v: number | null }[];
    return new Map(rows.map((r) => [r.h, r.v]));
  } finally {
    db.close();
  }
}

const stamped = (home: string): string[] => [...stamps(home)].filter(([, v]) => v !== null).map(([h]) => h);

test('verify killed with SIGKILL after its second commit: the next run checks only what was not checked', (t) => {
  const { home, hashes } = pool(t);
  const killed = runCli(home, ['verify', 'd1', '--quiet', '--commit-every', '5', '--profile', 'hdd'], {
    DISTBACKUP_TEST_KILL: 'verify-commit:2',
  });
  assert.equal(killed.code, -1, `expected a SIGKILL, got exit ${killed.code}: ${killed.stderr}`);
  const first = new Map([...stamps(home)].filter(([, v]) => v !== null));
  assert.equal(first.size, 10, 'two commits of five objects each were durable');
  const again = runCliJson<VerifyDoc>(home, ['verify', 'd1', '--quiet']);
  assert.equal(again.code, 0, again.stderr);
  assert.equal(again.json.checked, hashes.length - 10, 'only the rest is checked');
  assert.notEqual(again.json.resumedPassMs, null);
  assert.equal(again.json.remaining, 0);
  const after = stamps(home);
  for (const [h, v] of after) assert.ok(v !== null, `${h} checked by one of the runs`);
  // The ten checked by the killed run were not read again: their stamps did not move.
  for (const [h, v] of first) assert.equal(after.get(h), v, `${h} read again`);
  // The pass is closed: a third run reads everything again.
  const third = runCliJson<VerifyDoc>(home, ['verify', 'd1', '--quiet']);
  assert.equal(third.json.checked, hashes.length);
  assert.equal(third.json.resumedPassMs, null);
});

test('bad copies: the disk catalogue copy is marked stale until verify writes it again; Ctrl-C after them still exits 3', (t) => {
  const { home, disk, hashes } = pool(t);
  for (const h of hashes) {
    const p = objectPath(disk, h);
    const b = fs.readFileSync(p);
    if (b.length === 0) continue;
    b[0] = (b[0] ?? 0) ^ 0xff;
    fs.chmodSync(p, 0o644);
    fs.writeFileSync(p, b);
  }
  const stale = path.join(disk, DISK_CATALOGUE_STALE);
  const killed = runCli(home, ['verify', 'd1', '--quiet', '--commit-every', '5', '--profile', 'hdd'], {
    DISTBACKUP_TEST_KILL: 'verify-commit:1',
  });
  assert.equal(killed.code, -1, `expected a SIGKILL, got exit ${killed.code}: ${killed.stderr}`);
  assert.ok(fs.existsSync(stale), 'uncounted before the copy on the disk was written again: marked stale');
  const stopped = runCli(home, ['verify', 'd1', '--commit-every', '5', '--profile', 'hdd'], {
    DISTBACKUP_TEST_KILL: 'verify-commit:1:SIGINT',
  });
  assert.equal(stopped.code, 3, stopped.stderr);
  assert.match(stopped.stderr, /verify interrupted/);
  runCli(home, ['verify', 'd1', '--quiet']);
  assert.ok(!fs.existsSync(stale), 'the copy written again at the end of a run is current');
});

test('a disk gone read-only mid-run: verify still uncounts its bad copies and exits 3, the mark and the quarantine only noted', {
  timeout: 120_000,
}, async (t) => {
  // An ext4 loop image mounted errors=remount-ro, made read-only while the run is stopped.
  const m = mountExt4(t, { sizeBytes: 64 << 20, options: ['errors=remount-ro'] });
  if (m === null) return;
  const base = tempDir(t);
  const src = path.join(base, 'src');
  const home = path.join(base, 'home');
  fs.mkdirSync(src);
  makeSourceTree(src, { files: 40 });
  const disk = path.join(m.dir, 'd1');
  const hashes = cliPool(home, src, disk);
  // The copy read last (the hdd profile reads in inode order) is the bad one, so the first
  // commit, where the run stops itself, holds only good ones and no stale mark is written yet.
  const byInode = hashes
    .filter((h) => fs.statSync(objectPath(disk, h)).size > 0)
    .sort((a, b) => fs.statSync(objectPath(disk, a)).ino - fs.statSync(objectPath(disk, b)).ino);
  const victim = byInode[byInode.length - 1] as string;
  const p = objectPath(disk, victim);
  const b = fs.readFileSync(p);
  b[0] = (b[0] ?? 0) ^ 0xff;
  fs.chmodSync(p, 0o644);
  fs.writeFileSync(p, b);
  const run = startCli(home, ['verify', 'd1', '--commit-every', '1', '--profile', 'hdd'], {
    DISTBACKUP_TEST_KILL: 'verify-commit:1:SIGSTOP',
  });
  const pid = run.child.pid as number;
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline && !/\) T /.test(fs.readFileSync(`/proc/${pid}/stat`, 'utf8'))) {
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  forceReadOnly(m);
  process.kill(pid, 'SIGCONT');
  const r = await run.done;
  assert.equal(r.code, 3, r.stderr);
  assert.match(r.stderr, /could not mark the catalogue copy on the disk stale: .*EROFS/);
  assert.match(r.stdout, /: 1 bad, 0 missing/);
  assert.ok(!stamps(home).has(victim), 'the bad copy no longer counts');
});

test('Ctrl-C (SIGINT) ends verify with exit 130 and one line saying how far it got; what it checked is kept', (t) => {
  const { home, hashes } = pool(t);
  const r = runCliJson<VerifyDoc>(home, ['verify', 'd1', '--commit-every', '5', '--profile', 'hdd'], {
    DISTBACKUP_TEST_KILL: 'verify-commit:1:SIGINT',
  });
  assert.equal(r.code, 130, r.stderr);
  assert.equal(r.json.stoppedBy, 'interrupted');
  assert.ok(r.json.checked >= 5 && r.json.checked < hashes.length, `checked ${r.json.checked}`);
  assert.equal(stamped(home).length, r.json.checked, 'every object it checked is recorded');
  assert.equal(r.json.remaining, hashes.length - r.json.checked);
  const text = runCli(home, ['verify', 'd1', '--commit-every', '5', '--profile', 'hdd'], {
    DISTBACKUP_TEST_KILL: 'verify-commit:1:SIGINT',
  });
  assert.equal(text.code, 130, text.stderr);
  const lines = text.stderr.split('\n').filter((l) => /^verify interrupted/.test(l));
  assert.equal(lines.length, 1, text.stderr);
  assert.match(
    lines[0] ?? '',
    /^verify interrupted: \d+ objects \(.+\) on d1 checked and recorded: 0 bad, 0 missing; \d+ copies left, run it again to go on$/,
  );
  // The second interrupted run went on with the pass of the first; the third finishes it.
  const done = stamped(home).length;
  assert.ok(done > r.json.checked);
  const rest = runCliJson<VerifyDoc>(home, ['verify', 'd1']);
  assert.equal(rest.code, 0, rest.stderr);
  assert.equal(rest.json.checked, hashes.length - done);
  for (const [h, v] of stamps(home)) assert.ok(v !== null, `${h} checked`);
});

test('--errors FILE and -n: the dry run lists what it would do and changes nothing; the real run does it', (t) => {
  const { base, home, disk, hashes } = pool(t, 8);
  const [victim, gone] = [...hashes].sort(
    (a, b) => fs.statSync(objectPath(disk, b)).size - fs.statSync(objectPath(disk, a)).size,
  ) as [string, string];
  const p = objectPath(disk, victim);
  const bytes = fs.readFileSync(p);
  bytes[3] = (bytes[3] ?? 0) ^ 0x20;
  fs.writeFileSync(p, bytes);
  fs.rmSync(objectPath(disk, gone));
  const file = path.join(base, 'errors.tsv');
  const before = stamps(home);
  const dry = runCliJson<VerifyDoc>(home, ['verify', 'd1', '-n', '--errors', file]);
  assert.equal(dry.code, 3, dry.stderr);
  assert.equal(dry.json.dryRun, true);
  assert.deepEqual(dry.json.bad, [victim]);
  assert.deepEqual(dry.json.missing, [gone]);
  assert.deepEqual(stamps(home), before, 'a dry run records nothing');
  assert.ok(fs.existsSync(p), 'a dry run moves nothing');
  const dryLines = fs.readFileSync(file, 'utf8').trimEnd().split('\n');
  assert.equal(dryLines.length, 3);
  assert.match(dryLines[1] ?? '', /would/);
  const text = runCli(home, ['verify', 'd1', '--dry-run']);
  assert.equal(text.code, 3);
  assert.match(text.stdout, /dry run: nothing was recorded or moved/);
  const real = runCli(home, ['verify', 'd1', '--errors', file]);
  assert.equal(real.code, 3, real.stderr);
  assert.equal(
    `${real.stdout}\n${real.stderr}`.split('\n').filter((l) => l.includes(victim)).length,
    1,
    'one report per bad object',
  );
  assert.match(real.stdout, /\b2 copies no longer count;/);
  assert.doesNotMatch(real.stdout + real.stderr, /\b1 (objects|copies)\b/);
  const lines = fs.readFileSync(file, 'utf8').trimEnd().split('\n');
  assert.equal(lines[0], 'disk\tobject\tsize\tpath\tproblem');
  const byHash = new Map(lines.slice(1).map((l) => [path.basename(l.split('\t')[1] ?? ''), l.split('\t')]));
  assert.match(byHash.get(victim)?.[4] ?? '', /moved to distbackup-objects\/\.quarantine\//);
  assert.equal(byHash.get(gone)?.[4], 'missing; no longer counted as a copy');
  for (const f of byHash.values()) assert.match(f[3] ?? '', /^\/data\//);
  assert.ok(!fs.existsSync(p));
});

test('--profile ssd checks two objects at a time, a small verify on the calling thread, and finds a flipped byte', (t) => {
  const { home, disk, hashes } = pool(t, 12);
  const [victim] = [...hashes].sort(
    (a, b) => fs.statSync(objectPath(disk, b)).size - fs.statSync(objectPath(disk, a)).size,
  ) as [string];
  const p = objectPath(disk, victim);
  const bytes = fs.readFileSync(p);
  bytes[1] = (bytes[1] ?? 0) ^ 0x01;
  fs.writeFileSync(p, bytes);
  const r = runCliJson<VerifyDoc>(home, ['verify', '--disk', disk, '--profile', 'ssd']);
  assert.equal(r.code, 3, r.stderr);
  assert.equal(r.json.profile, 'ssd');
  assert.equal(typeof r.json.workerThreads, 'number');
  assert.equal(r.json.checked, hashes.length);
  assert.deepEqual(r.json.bad, [victim]);
  for (const k of ['disk', 'checked', 'bytesChecked', 'bad', 'missing']) assert.ok(k in r.json, k);
});

test('-n on a catalogue of schema 3: the dry run upgrades a copy in memory, says so, and leaves the file as it was', (t) => {
  const { home, hashes } = pool(t, 8);
  const file = path.join(home, 'distbackup.sqlite');
  downgradeToSchema3(file);
  const before = fs.readFileSync(file);
  const dry = runCliJson<VerifyDoc>(home, ['verify', 'd1', '-n']);
  assert.equal(dry.code, 0, dry.stderr);
  assert.equal(dry.json.checked, hashes.length);
  assert.match(dry.stderr, /schema 3; checked against a copy upgraded in memory, the file is unchanged/);
  assert.deepEqual(fs.readFileSync(file), before, 'the dry run did not migrate the file');
  const real = runCliJson<VerifyDoc>(home, ['verify', 'd1', '--quiet']);
  assert.equal(real.code, 0, real.stderr);
  assert.equal(real.json.checked, hashes.length);
});

test('progress: a refused verify prints its error alone; bytes done end equal to the total, also over a grown object', (t) => {
  const p = pool(t, 12);
  const refused = runCli(p.home, ['verify', 'nosuchdisk']);
  assert.equal(refused.code, 1, refused.stderr);
  assert.deepEqual(
    refused.stderr
      .trim()
      .split('\n')
      .filter((l) => l !== ''),
    [refused.stderr.trim()],
    'one line, no progress line before or after it',
  );
  assert.doesNotMatch(refused.stderr, /verify: /);
  // An object that grew on the disk is read whole (and found bad): the progress still counts the
  // catalogued size its total was made of.
  const grown = objectPath(p.disk, p.hashes[0] as string);
  fs.appendFileSync(grown, Buffer.alloc(64 * 1024, 7));
  const r = runCli(p.home, ['verify', 'd1']);
  assert.equal(r.code, 3, r.stderr);
  const last = r.stderr
    .split('\n')
    .filter((l) => l.startsWith('verify: '))
    .pop();
  const m = /^verify: (.+?) \/ (.+?), 100%/.exec(last ?? '');
  assert.ok(m, `a final progress line with a total: ${r.stderr}`);
  assert.equal(m[1], m[2], `bytes done equal the total: ${last}`);
});
