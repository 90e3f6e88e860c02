/**
 * `distbackup update` through the built CLI: the --json document, each exit code, an
 * unprivileged run that meets an unreadable file and folder, a source whose root is gone, and
 * a run killed with SIGKILL in the middle of a transaction, then resumed.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import Database from 'better-sqlite3';
import { CLI, runCli, runCliJson, startCli } from '../helpers/cli.js';
import { downgradeToSchema3 } from '../helpers/pool.js';
import { tempDir, writeTree } from '../helpers/tmp.js';

interface UpdateDoc {
  scanned: number;
  new: number;
  changed: number;
  removed: number;
  unchanged: number;
  bytesHashed: number;
  errors: { path: string; error: string }[];
}

function query(data: string, sql: string): unknown {
  const db = new Database(path.join(data, 'distbackup.sqlite'), { readonly: true });
  try {
    return db.prepare(sql).pluck().get();
  } finally {
    db.close();
  }
}

function count(data: string, sql: string): number {
  return query(data, sql) as number;
}

/**
 * Wait until every file under `dir` is older than update's racy window (2 s of ctime), so the
 * next update stores it as clean: a condition on the clock, not a timing assertion.
 */
async function pastRacyWindow(dir: string): Promise<void> {
  let newest = 0;
  const walk = (d: string): void => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      newest = Math.max(newest, fs.lstatSync(p).ctimeMs);
      if (e.isDirectory()) walk(p);
    }
  };
  walk(dir);
  while (Date.now() < newest + 2100) await new Promise((r) => setTimeout(r, 50));
}

test('update --json prints the SPEC document; the human run prints a summary line', (t) => {
  const root = tempDir(t);
  const data = path.join(root, 'data');
  const src = path.join(root, 'src');
  writeTree(src, { a: 'same', 'd/b': 'same', 'd/c': 'other' });
  assert.equal(runCli(data, ['source', 'map', '/s', src]).code, 0);
  const r = runCliJson<UpdateDoc>(data, ['update']);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.json.scanned, 4);
  assert.equal(r.json.new, 4);
  assert.equal(r.json.bytesHashed, 13);
  assert.deepEqual(r.json.errors, []);
  for (const k of ['scanned', 'new', 'changed', 'removed', 'unchanged', 'bytesHashed', 'errors']) {
    assert.ok(k in r.json, k);
  }
  fs.rmSync(path.join(src, 'd', 'c'));
  const human = runCli(data, ['update']);
  assert.equal(human.code, 0, human.stderr);
  assert.match(human.stdout, /^3 scanned: 0 new, 1 changed, 1 removed, 2 unchanged; /m);
  assert.equal(count(data, 'SELECT count(*) FROM objects'), 1, 'the removed file’s object is forgotten');
});

test('a source whose root is gone is refused with exit 2 and nothing is marked removed', (t) => {
  const root = tempDir(t);
  const data = path.join(root, 'data');
  const src = path.join(root, 'src');
  writeTree(src, { a: 'a', 'd/b': 'b' });
  runCli(data, ['source', 'map', '/s', src]);
  assert.equal(runCli(data, ['update']).code, 0);
  const rows = count(data, 'SELECT count(*) FROM files');
  fs.renameSync(src, `${src}-unplugged`);
  const r = runCli(data, ['update', '--json']);
  assert.equal(r.code, 2, r.stderr);
  assert.match(r.stderr, /refusing to update: \/s -> .*src is missing/);
  assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
  assert.equal(count(data, 'SELECT count(*) FROM files'), rows);
});

test('as an unprivileged user: an unreadable file and folder are errors (exit 1), their rows are kept', (t) => {
  const setpriv = spawnSync('setpriv', ['--version']);
  if (setpriv.error !== undefined || process.getuid?.() !== 0) {
    const why = setpriv.error !== undefined ? 'setpriv is missing' : 'not root, cannot switch to uid 65534';
    process.stdout.write(`# SKIPPED: unprivileged update (${why})\n`);
    t.skip(why);
    return;
  }
  const root = tempDir(t);
  fs.chmodSync(root, 0o755);
  const data = path.join(root, 'data');
  const home = path.join(root, 'home');
  const src = path.join(root, 'src');
  writeTree(src, { 'ok/a': 'readable', 'locked/b': 'in a closed folder', secret: 'closed file' });
  // Catalogue everything first, then close a file and a folder and update as nobody.
  assert.equal(runCli(data, ['source', 'map', '/s', src]).code, 0);
  assert.equal(runCli(data, ['update']).code, 0);
  fs.writeFileSync(path.join(src, 'secret'), 'closed file, changed');
  fs.writeFileSync(path.join(src, 'new-secret'), 'never readable');
  fs.chmodSync(path.join(src, 'secret'), 0o600);
  fs.chmodSync(path.join(src, 'new-secret'), 0o600);
  fs.chmodSync(path.join(src, 'locked'), 0o700);
  fs.mkdirSync(home);
  spawnSync('chown', ['-R', '65534:65534', data, home]);
  const before = count(data, 'SELECT count(*) FROM files');
  const r = spawnSync(
    'setpriv',
    ['--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, CLI, 'update', '--json'],
    {
      encoding: 'utf8',
      env: { ...process.env, DISTBACKUP_PATH: data, HOME: home, XDG_DATA_HOME: home, XDG_CACHE_HOME: home },
    },
  );
  assert.equal(r.status, 1, r.stderr);
  const doc = JSON.parse(r.stdout) as UpdateDoc;
  const errors = doc.errors.map((e) => `${path.relative(src, e.path)}: ${e.error}`).sort();
  assert.equal(errors.length, 3, errors.join('\n'));
  assert.match(errors[0] ?? '', /^locked: cannot read folder: EACCES/);
  assert.match(errors[1] ?? '', /^new-secret: EACCES/);
  assert.match(errors[2] ?? '', /^secret: EACCES/);
  assert.equal(doc.removed, 0);
  assert.equal(count(data, 'SELECT count(*) FROM files'), before, 'the closed folder keeps its rows');
  const lockedRow = count(data, `SELECT count(*) FROM files WHERE vpath = CAST('/s/locked/b' AS BLOB)`);
  assert.equal(lockedRow, 1);
  const secretHash = query(
    data,
    `SELECT o.hash FROM files f JOIN objects o ON o.id = f.object_id WHERE f.vpath = CAST('/s/secret' AS BLOB)`,
  );
  assert.equal(
    secretHash,
    createHash('sha256').update('closed file').digest('hex'),
    'the last good hash is kept until it can be read',
  );
});

test('an update killed with SIGKILL mid-transaction keeps its commits; the next run hashes only the rest', async (t) => {
  const root = tempDir(t);
  const data = path.join(root, 'data');
  const src = path.join(root, 'src');
  const files: Record<string, string> = {};
  const FILES = 3000;
  for (let i = 0; i < FILES; i++) files[`d${String(i % 30).padStart(2, '0')}/f${i}`] = `content ${i % 2500}\n`;
  writeTree(src, files);
  assert.equal(runCli(data, ['source', 'map', '/s', src]).code, 0);
  await pastRacyWindow(src);
  // Dies at its 1,250th catalogue row, 250 rows into its third transaction of 500.
  const { done } = startCli(data, ['update', '--commit-every', '500', '--jobs', '2', '--quiet'], {
    DISTBACKUP_TEST_KILL: 'update-row:1250',
  });
  const killed = await done;
  assert.equal(killed.signal, 'SIGKILL', `the run was expected to die: exit ${killed.code} ${killed.stderr}`);

  assert.equal(query(data, 'PRAGMA integrity_check'), 'ok');
  const hashed = new Set(
    (() => {
      const db = new Database(path.join(data, 'distbackup.sqlite'), { readonly: true });
      try {
        return db
          .prepare('SELECT vpath FROM files WHERE kind = 0 AND object_id IS NOT NULL')
          .pluck()
          .all()
          .map((v) => (v as Buffer).toString().slice('/s/'.length));
      } finally {
        db.close();
      }
    })(),
  );
  assert.ok(hashed.size > 0 && hashed.size < FILES, `${hashed.size} files hashed before the kill`);
  const orphans = count(
    data,
    'SELECT count(*) FROM objects o WHERE NOT EXISTS (SELECT 1 FROM files f WHERE f.object_id = o.id)',
  );
  assert.equal(orphans, 0, 'an object commits with its file');

  const r = runCliJson<UpdateDoc>(data, ['update', '--quiet']);
  assert.equal(r.code, 0, r.stderr);
  const rest = Object.entries(files).filter(([rel]) => !hashed.has(rel));
  assert.equal(r.json.new, rest.length, 'exactly the files not committed are new');
  assert.equal(
    r.json.bytesHashed,
    rest.reduce((n, [, c]) => n + Buffer.byteLength(c), 0),
    'and only they are read',
  );
  assert.equal(r.json.unchanged, hashed.size + 30, 'committed files and the 30 folders are unchanged');
  assert.equal(count(data, 'SELECT count(*) FROM files WHERE kind = 0 AND object_id IS NOT NULL'), FILES);
  assert.equal(count(data, 'SELECT count(*) FROM objects'), 2500);
  assert.equal(query(data, 'PRAGMA integrity_check'), 'ok');
});

test('a second update while one holds the catalogue is refused with exit 2', async (t) => {
  const root = tempDir(t);
  const data = path.join(root, 'data');
  const src = path.join(root, 'src');
  writeTree(src, { a: 'a' });
  runCli(data, ['source', 'map', '/s', src]);
  const lockDb = new Database(path.join(data, 'lock'));
  lockDb.pragma('locking_mode = EXCLUSIVE');
  lockDb.exec('BEGIN EXCLUSIVE');
  try {
    const r = runCli(data, ['update']);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /in use by another distbackup process/);
  } finally {
    lockDb.close();
  }
});

test('update -n prints what would change and leaves the catalogue files byte for byte as they were', (t) => {
  const root = tempDir(t);
  const data = path.join(root, 'data');
  const src = path.join(root, 'src');
  writeTree(src, { a: 'same', 'd/b': 'same', 'd/c': 'other' });
  // Out of the racy window first: a file changed (ctime) less than 2 s before an update's scan
  // is hashed again by the next update, which would count it in `bytesToHash` on a fast machine.
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 2100);
  assert.equal(runCli(data, ['source', 'map', '/s', src]).code, 0);
  assert.equal(runCli(data, ['update', '--quiet']).code, 0);
  fs.rmSync(path.join(src, 'd', 'c'));
  fs.writeFileSync(path.join(src, 'new'), 'brand new');
  // The catalogue and a WAL with content; a read-only open may leave an empty -wal and a -shm
  // (the wal-index, shared memory, not the catalogue's content).
  const digest = (): string[] =>
    fs
      .readdirSync(data)
      .filter(
        (n) => n === 'distbackup.sqlite' || (n === 'distbackup.sqlite-wal' && fs.statSync(path.join(data, n)).size > 0),
      )
      .sort()
      .map(
        (n) =>
          `${n} ${createHash('sha256')
            .update(fs.readFileSync(path.join(data, n)))
            .digest('hex')}`,
      );
  const before = digest();
  const r = runCliJson<UpdateDoc & { dryRun: boolean; toHash: number; bytesToHash: number }>(data, ['update', '-n']);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.json.dryRun, true);
  assert.equal(r.json.new, 1);
  assert.equal(r.json.removed, 1);
  assert.equal(r.json.bytesHashed, 0);
  assert.equal(r.json.bytesToHash, 'brand new'.length);
  const human = runCli(data, ['update', '--dry-run']);
  assert.equal(human.code, 0, human.stderr);
  assert.match(human.stdout, /1 new, \d+ changed, 1 removed, .*would read 1 file, 9 B \(dry run/);
  assert.deepEqual(digest(), before, 'the catalogue and its WAL are unchanged');
  assert.equal(count(data, `SELECT count(*) FROM files WHERE vpath = CAST('/s/new' AS BLOB)`), 0);
  // A catalogue left by an older distbackup (schema 3): the dry run upgrades a private copy, and
  // the file keeps its bytes.
  downgradeToSchema3(path.join(data, 'distbackup.sqlite'));
  const old = digest();
  const upgraded = runCliJson<UpdateDoc & { dryRun: boolean }>(data, ['update', '-n']);
  assert.equal(upgraded.code, 0, upgraded.stderr);
  assert.equal(upgraded.json.new, 1);
  assert.equal(upgraded.json.removed, 1);
  assert.deepEqual(digest(), old, 'the older catalogue is unchanged');
});

test('Ctrl-C is heard while update scans with nothing to hash (empty files): exit 130, what was committed kept', {
  timeout: 120_000,
}, async (t) => {
  const base = tempDir(t);
  const home = path.join(base, 'home');
  const src = path.join(base, 'src');
  for (let d = 0; d < 40; d++) {
    const dir = path.join(src, `d${d}`);
    fs.mkdirSync(dir, { recursive: true });
    for (let f = 0; f < 1000; f++) fs.writeFileSync(path.join(dir, `f${f}`), '');
  }
  assert.equal(runCli(home, ['source', 'map', '/s', src]).code, 0);
  const wal = path.join(home, 'distbackup.sqlite-wal');
  const walSize = (): number => (fs.existsSync(wal) ? fs.statSync(wal).size : 0);
  const start = walSize();
  const run = startCli(home, ['update', '--commit-every', '500', '--json']);
  let exited = false;
  void run.done.then(() => {
    exited = true;
  });
  // Once the first rows are committed: mid-scan.
  while (!exited && walSize() <= start) await new Promise((r) => setTimeout(r, 10));
  assert.ok(!exited, 'update ended before it could be interrupted');
  run.child.kill('SIGINT');
  const guard = setTimeout(() => run.child.kill('SIGKILL'), 30_000);
  const end = await run.done;
  clearTimeout(guard);
  assert.equal(end.code, 130, `exit ${end.code ?? end.signal}: ${end.stderr.slice(0, 300)}`);
  assert.match(end.stderr, /interrupted: committing the hashes done so far/);
  // --json still gets its document, saying so.
  const doc = JSON.parse(end.stdout) as { interrupted: boolean; scanned: number };
  assert.equal(doc.interrupted, true);
  assert.ok(doc.scanned > 0);
  const again = runCliJson<{ new: number; unchanged: number }>(home, ['update']);
  assert.equal(again.code, 0, again.stderr);
  assert.ok(again.json.unchanged > 0, 'what was committed before Ctrl-C is kept');
});
