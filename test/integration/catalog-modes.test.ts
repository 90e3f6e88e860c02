/** The three ways of opening the home catalogue: read-write, read-only and dry-run. */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import Database from 'better-sqlite3';
import { CATALOGUE_FILE, openCatalog, openUntrustedCatalogue } from '../../src/catalog/db.js';
import { MIGRATIONS, READ_COMPAT } from '../../src/catalog/schema.js';
import { downgradeToSchema3 } from '../helpers/pool.js';
import { tempDir } from '../helpers/tmp.js';

function seed(dataDir: string): string {
  const cat = openCatalog(dataDir);
  cat.db.exec(`CREATE TABLE IF NOT EXISTS probe (v INTEGER)`);
  cat.db.prepare('INSERT INTO probe VALUES (1)').run();
  const id = cat.id;
  cat.close();
  return id;
}

test('read-only: reads, refuses every write, leaves the catalogue bytes as they were', (t) => {
  const dir = tempDir(t);
  const id = seed(dir);
  const file = path.join(dir, CATALOGUE_FILE);
  const before = fs.readFileSync(file);
  const cat = openCatalog(dir, { mode: 'read-only' });
  assert.equal(cat.mode, 'read-only');
  assert.equal(cat.readonly, true);
  assert.equal(cat.id, id);
  assert.equal(cat.db.prepare('SELECT count(*) FROM probe').pluck().get(), 1);
  assert.throws(() => cat.db.prepare('INSERT INTO probe VALUES (2)').run(), /readonly|read-only/i);
  // TEMP tables (status, tree and ncdu build them) still work.
  cat.db.exec('CREATE TEMP TABLE scratch (v INTEGER)');
  cat.db.prepare('INSERT INTO temp.scratch VALUES (1)').run();
  cat.close();
  assert.deepEqual(fs.readFileSync(file), before);
});

test('read-only: a missing catalogue is an error naming the file, and nothing is created', (t) => {
  const dir = path.join(tempDir(t), 'absent');
  assert.throws(() => openCatalog(dir, { mode: 'read-only' }), /distbackup\.sqlite: no catalogue yet/);
  assert.equal(fs.existsSync(dir), false);
});

test('dry-run: a writable private copy, WAL content included, discarded at close', (t) => {
  const dir = tempDir(t);
  const id = seed(dir);
  const file = path.join(dir, CATALOGUE_FILE);
  // A writer that keeps its last commit in the WAL while the dry run opens.
  const writer = openCatalog(dir);
  writer.db.prepare('INSERT INTO probe VALUES (2)').run();
  assert.ok(fs.statSync(`${file}-wal`).size > 0, 'the second row sits in the WAL');
  const before = fs.readFileSync(file);
  const cat = openCatalog(dir, { mode: 'dry-run' });
  assert.equal(cat.mode, 'dry-run');
  assert.equal(cat.readonly, true);
  assert.equal(cat.id, id);
  assert.equal(cat.db.prepare('SELECT count(*) FROM probe').pluck().get(), 2);
  cat.db.prepare('INSERT INTO probe VALUES (3)').run();
  assert.equal(cat.db.prepare('SELECT count(*) FROM probe').pluck().get(), 3);
  cat.close();
  assert.deepEqual(fs.readFileSync(file), before);
  assert.equal(writer.db.prepare('SELECT count(*) FROM probe').pluck().get(), 2);
  writer.close();
});

test('dry-run: a missing catalogue gives an empty migrated one and creates nothing', (t) => {
  const dir = path.join(tempDir(t), 'absent');
  const cat = openCatalog(dir, { mode: 'dry-run' });
  assert.equal(cat.db.prepare('SELECT count(*) FROM sources').pluck().get(), 0);
  assert.match(cat.id, /^[0-9a-f-]{36}$/);
  cat.close();
  assert.equal(fs.existsSync(dir), false);
});

test('read-only with upgradeInMemory: an older schema is migrated in a private copy, the file keeps its bytes', (t) => {
  const dir = tempDir(t);
  const id = seed(dir);
  const file = path.join(dir, CATALOGUE_FILE);
  downgradeToSchema3(file);
  const before = fs.readFileSync(file);
  assert.throws(() => openCatalog(dir, { mode: 'read-only' }), /schema 3 needs an upgrade/);
  const cat = openCatalog(dir, { mode: 'read-only', upgradeInMemory: true });
  assert.equal(cat.upgradedFrom, 3);
  assert.equal(cat.readonly, true);
  assert.equal(cat.id, id);
  assert.equal(cat.db.pragma('user_version', { simple: true }), MIGRATIONS.length);
  assert.equal(cat.db.prepare('SELECT count(*) FROM verify_passes').pluck().get(), 0);
  cat.close();
  assert.deepEqual(fs.readFileSync(file), before);
  // A current schema opens read-only as usual.
  const current = openCatalog(path.join(tempDir(t), 'x'));
  current.close();
  const ro = openCatalog(current.dataDir, { mode: 'read-only', upgradeInMemory: true });
  assert.equal(ro.mode, 'read-only');
  assert.equal(ro.upgradedFrom, undefined);
  ro.close();
});

test("migration 6: copies never verified take their disk's last sync as when they were written", (t) => {
  const dir = tempDir(t);
  const cat = openCatalog(dir);
  cat.db.exec(`INSERT INTO objects (id, hash, size) VALUES (1, '${'a'.repeat(64)}', 1), (2, '${'b'.repeat(64)}', 1);`);
  const disk = cat.db
    .prepare(
      `INSERT INTO disks (uuid, name, size, created, generation, last_sync_ms)
       VALUES ('00000000-0000-4000-8000-000000000001', 'd1', 100, 'x', 0, 1234)`,
    )
    .run().lastInsertRowid;
  cat.db
    .prepare('INSERT INTO copies (object_id, disk_id, verified_ms) VALUES (1, ?, NULL), (2, ?, 99)')
    .run(disk, disk);
  cat.close();
  downgradeToSchema3(path.join(dir, CATALOGUE_FILE));
  const again = openCatalog(dir);
  t.after(() => again.close());
  const written = again.db.prepare('SELECT object_id, written_ms FROM copies ORDER BY object_id').raw().all();
  assert.deepEqual(written, [
    [1, 1234],
    [2, null],
  ]);
});

test('a disk catalogue copy: TEMP tables work, the disk file is never written', (t) => {
  const dir = tempDir(t);
  seed(dir);
  const home = openCatalog(dir);
  const diskFile = path.join(tempDir(t), 'distbackup.sqlite');
  home.db.prepare('VACUUM INTO ?').run(diskFile);
  home.close();
  const before = fs.readFileSync(diskFile);
  const cat = openUntrustedCatalogue(diskFile);
  cat.db.exec('CREATE TEMP TABLE scratch (v INTEGER PRIMARY KEY)');
  cat.db.exec('INSERT INTO temp.scratch SELECT v FROM probe');
  assert.equal(cat.db.prepare('SELECT count(*) FROM temp.scratch').pluck().get(), 1);
  assert.throws(() => cat.db.prepare('INSERT INTO probe VALUES (9)').run(), /readonly|read-only/i);
  assert.throws(() => cat.db.exec('DROP TABLE probe'), /readonly|read-only/i);
  cat.close();
  assert.deepEqual(fs.readFileSync(diskFile), before);
});

test('a catalogue of a newer schema is read when its read_compat allows, never written, and refused when it does not', (t) => {
  const dir = tempDir(t);
  seed(dir);
  const file = path.join(dir, CATALOGUE_FILE);
  const diskFile = path.join(tempDir(t), CATALOGUE_FILE);
  /** Make the closed home catalogue (and its disk copy) look written by a later build. */
  const becomeNewer = (readCompat: string | null): void => {
    const db = new Database(file);
    try {
      db.pragma(`user_version = ${MIGRATIONS.length + 1}`);
      if (readCompat === null) db.prepare(`DELETE FROM meta WHERE key = 'read_compat'`).run();
      else db.prepare(`INSERT OR REPLACE INTO meta(key, value) VALUES ('read_compat', ?)`).run(readCompat);
      db.pragma('wal_checkpoint(TRUNCATE)');
      fs.rmSync(diskFile, { force: true });
      db.prepare('VACUUM INTO ?').run(diskFile);
    } finally {
      db.close();
    }
  };
  // The migrations that made the catalogue recorded it.
  const raw = new Database(file, { readonly: true });
  assert.equal(raw.prepare(`SELECT value FROM meta WHERE key = 'read_compat'`).pluck().get(), String(READ_COMPAT));
  raw.close();

  becomeNewer(String(READ_COMPAT));
  const before = fs.readFileSync(file);
  const ro = openCatalog(dir, { mode: 'read-only' });
  assert.equal(ro.db.prepare('SELECT count(*) FROM probe').pluck().get(), 1);
  ro.close();
  const fromDisk = openUntrustedCatalogue(diskFile);
  assert.equal(fromDisk.db.prepare('SELECT count(*) FROM probe').pluck().get(), 1);
  fromDisk.close();
  // A writer of this build would not keep what the newer schema needs.
  assert.throws(
    () => openCatalog(dir),
    (err: Error & { code?: string }) =>
      err.code === 'schema-newer' && /is newer than this distbackup understands.*upgrade distbackup/.test(err.message),
  );
  assert.deepEqual(fs.readFileSync(file), before, 'the refused writer changed nothing');

  const later = String(MIGRATIONS.length + 1);
  for (const [compat, why] of [
    [later, new RegExp(`reading it needs schema ${later} or later; upgrade distbackup`)],
    [null, /does not say which older ones may read it; upgrade distbackup/],
    ['1; DROP', /does not say which older ones may read it/],
  ] as const) {
    becomeNewer(compat);
    assert.throws(() => openCatalog(dir, { mode: 'read-only' }), why);
    assert.throws(() => openUntrustedCatalogue(diskFile), why);
  }
});
