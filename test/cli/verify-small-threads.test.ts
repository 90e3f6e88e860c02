/**
 * verify's small-object threads from dist/ (the `.js` worker; the tests under tsx start the `.ts`
 * one): a run of more small objects than SMALL_THREADS_MIN_OBJECTS starts one thread per lane,
 * a SIGKILL at a known commit keeps what was committed and the next run checks only the rest,
 * and damage is found and quarantined. Real child processes, real files, real SQLite; the kill
 * lands at a commit through the kill points, so nothing depends on timing.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import Database from 'better-sqlite3';
import { objectPath } from '../../src/disk/layout.js';
import { SMALL_THREADS_MIN_OBJECTS, type VerifyDoc } from '../../src/verify/verify.js';
import { runCli, runCliJson } from '../helpers/cli.js';
import { cliPool } from '../helpers/pool.js';
import { tempDir } from '../helpers/tmp.js';

/** Copies on d1 that carry a stamp, read with SQLite directly. */
function stampedCount(home: string): number {
  const db = new Database(path.join(home, 'distbackup.sqlite'), { readonly: true });
  try {
    return db.prepare('SELECT count(*) FROM copies WHERE verified_ms IS NOT NULL').pluck().get() as number;
  } finally {
    db.close();
  }
}

test('from dist/, many small objects are checked on one thread per lane; a SIGKILL keeps what was committed, and damage is found', (t) => {
  const base = tempDir(t);
  const src = path.join(base, 'src');
  // Enough that the run after the kill still plans more than the threshold.
  const n = SMALL_THREADS_MIN_OBJECTS + 2500;
  for (let i = 0; i < n; i++) {
    const dir = path.join(src, `d${Math.floor(i / 500)}`);
    if (i % 500 === 0) fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(path.join(dir, `f${i}`), `small object ${i} `.repeat(1 + (i % 7)));
  }
  const home = path.join(base, 'home');
  const disk = path.join(base, 'd1');
  const hashes = cliPool(home, src, disk);
  assert.equal(hashes.length, n);

  const killed = runCli(home, ['verify', 'd1', '--quiet', '--commit-every', '1000', '--profile', 'ssd'], {
    DISTBACKUP_TEST_KILL: 'verify-commit:2',
  });
  assert.equal(killed.code, -1, `expected a SIGKILL, got exit ${killed.code}: ${killed.stderr}`);
  assert.equal(stampedCount(home), 2000, 'two commits of 1,000 objects each were durable');
  const rest = runCliJson<VerifyDoc>(home, ['verify', 'd1', '--quiet', '--profile', 'ssd']);
  assert.equal(rest.code, 0, rest.stderr);
  assert.equal(rest.json.workerThreads, 2, 'one thread per lane');
  assert.equal(rest.json.checked, n - 2000, 'only the rest is checked');
  assert.notEqual(rest.json.resumedPassMs, null);
  assert.equal(stampedCount(home), n);

  const [flipped, gone] = hashes as [string, string];
  const p = objectPath(disk, flipped);
  const bytes = fs.readFileSync(p);
  bytes[0] = (bytes[0] ?? 0) ^ 0x01;
  fs.writeFileSync(p, bytes);
  fs.rmSync(objectPath(disk, gone));
  const hdd = runCliJson<VerifyDoc>(home, ['verify', 'd1', '--quiet', '--profile', 'hdd']);
  assert.equal(hdd.code, 3, hdd.stderr);
  assert.equal(hdd.json.workerThreads, 1, 'one lane, one thread: one stream');
  assert.equal(hdd.json.checked, n);
  assert.deepEqual(hdd.json.bad, [flipped]);
  assert.deepEqual(hdd.json.missing, [gone]);
  assert.notEqual(hdd.json.badDetails[0]?.quarantinedTo, null, 'moved to quarantine');
  assert.ok(!fs.existsSync(p));
});
