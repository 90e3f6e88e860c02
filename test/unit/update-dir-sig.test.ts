/**
 * Folder signatures (src/update/dir-sig.ts): a no-op `update` skips the rows of folders whose
 * signature matches, and a signature never outlives a write to its folder's rows. In process,
 * on real temp trees and a real catalogue; the property test checks that a catalogue kept up to
 * date run after run with signatures always equals one built from scratch.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { type TestContext, test } from 'node:test';
import Database from 'better-sqlite3';
import fc from 'fast-check';
import { type Catalog, openCatalog } from '../../src/catalog/db.js';
import { FilesWriter } from '../../src/catalog/files.js';
import { setPathSettings } from '../../src/sources/settings.js';
import { mapSource, unmapSource } from '../../src/sources/sources.js';
import { runUpdate } from '../../src/update/update.js';
import { ageTree, filesUnder, lexists, nextClockTick, PAST, tempDir, writeTree } from '../helpers/tmp.js';

/** Random per run, printed: SIG_SEED=N replays one. */
const SEED = Number(process.env.SIG_SEED ?? Date.now() % 2 ** 31);
console.log(`update-dir-sig: fast-check seed ${SEED} (SIG_SEED=${SEED} to replay)`);

/** The scan clock 10 s ahead: files written by the test are clear of the racy window. */
const update = (cat: Catalog, dryRun = false) => runUpdate(cat, { jobs: 0, now: () => Date.now() + 10_000, dryRun });

function sigs(cat: Catalog): string[] {
  return (cat.db.prepare('SELECT parent FROM dir_sigs ORDER BY parent').pluck().all() as Buffer[]).map((b) =>
    b.toString(),
  );
}

/** Every catalogued entry as the comparison of two catalogues needs it (ids and times of writing left out). */
function snapshot(cat: Catalog): string[] {
  return (
    cat.db
      .prepare(
        `SELECT f.vpath, f.kind, f.size, f.mtime_ns, f.ctime_ns, f.mode, f.ino, f.link_target, f.priority,
                f.min_copies, f.max_copies, o.hash
         FROM files f LEFT JOIN objects o ON o.id = f.object_id ORDER BY f.vpath`,
      )
      .raw(true)
      .safeIntegers(true)
      .all() as unknown[][]
  ).map((r) => r.map((v) => (Buffer.isBuffer(v) ? v.toString('hex') : String(v))).join(' '));
}

function setup(t: TestContext, files: Record<string, string>): { root: string; base: string; cat: Catalog } {
  const base = tempDir(t);
  const root = path.join(base, 'src');
  writeTree(root, files);
  ageTree(root);
  const cat = openCatalog(path.join(base, 'data'));
  t.after(() => cat.close());
  mapSource(cat, '/v', root);
  return { root, base, cat };
}

test('the run that finds a folder unchanged stores its signature; the next reads none of its rows', async (t) => {
  const { cat } = setup(t, { a: 'alpha', 'd/b': 'beta', 'd/e/c': 'gamma' });
  await update(cat);
  // A first run writes every row: no folder was found as catalogued.
  assert.deepEqual(sigs(cat), []);
  const second = await update(cat);
  assert.equal(second.unchanged, second.scanned);
  assert.deepEqual(sigs(cat), ['/v', '/v/d', '/v/d/e']);
  // Proof that the third run reads no row of a signed folder: a row changed behind the
  // triggers' back stays as it is (a real run never does this; the triggers are the guard).
  cat.db.exec('DROP TRIGGER files_sig_update');
  cat.db.prepare(`UPDATE files SET size = 999 WHERE vpath = CAST('/v/d/b' AS BLOB)`).run();
  const third = await update(cat);
  assert.equal(third.unchanged, third.scanned);
  assert.equal(third.scanned, second.scanned);
  assert.equal(cat.db.prepare(`SELECT size FROM files WHERE vpath = CAST('/v/d/b' AS BLOB)`).pluck().get(), 999);
});

test('a file added and removed again between runs is recorded, then removed', async (t) => {
  const { root, base, cat } = setup(t, { 'd/a': 'alpha', 'd/b': 'beta' });
  await update(cat);
  await update(cat);
  assert.ok(sigs(cat).includes('/v/d'));
  const before = snapshot(cat);
  // The folder's own mtime is put back too: only the rows can tell the two states apart.
  fs.writeFileSync(path.join(root, 'd/new'), 'new');
  fs.utimesSync(path.join(root, 'd'), PAST, PAST);
  const added = await update(cat);
  assert.equal(added.new, 1);
  fs.rmSync(path.join(root, 'd/new'));
  fs.utimesSync(path.join(root, 'd'), PAST, PAST);
  nextClockTick(path.join(base, 'tick'));
  const removed = await update(cat);
  assert.equal(removed.removed, 1, 'the stored signature of /v/d (taken before the insert) must not match');
  // The same paths and contents as before (the folder's ctime moved).
  const paths = (rows: string[]) => rows.map((r) => `${r.split(' ')[0]} ${r.split(' ').at(-1)}`);
  assert.deepEqual(paths(snapshot(cat)), paths(before));
});

test('copy settings changed and put back are followed by the rows each time', async (t) => {
  const { cat } = setup(t, { 'd/a': 'alpha' });
  await update(cat);
  await update(cat);
  const priority = () =>
    cat.db.prepare(`SELECT priority FROM files WHERE vpath = CAST('/v/d/a' AS BLOB)`).pluck().get() as number;
  assert.equal(priority(), 1);
  setPathSettings(cat, ['/v/d'], { priority: 5 });
  await update(cat);
  assert.equal(priority(), 5);
  setPathSettings(cat, ['/v/d'], { priority: 1 });
  await update(cat);
  assert.equal(priority(), 1);
});

test('any write to a row deletes its folder signature; unmapping a source deletes its signatures', async (t) => {
  const { cat } = setup(t, { 'd/a': 'alpha', 'e/b': 'beta', 'f/c': 'gamma' });
  await update(cat);
  await update(cat);
  assert.deepEqual(sigs(cat), ['/v', '/v/d', '/v/e', '/v/f']);
  cat.db.prepare(`UPDATE files SET priority = 3 WHERE vpath = CAST('/v/d/a' AS BLOB)`).run();
  assert.deepEqual(sigs(cat), ['/v', '/v/e', '/v/f']);
  cat.db.prepare(`DELETE FROM files WHERE vpath = CAST('/v/e/b' AS BLOB)`).run();
  assert.deepEqual(sigs(cat), ['/v', '/v/f']);
  cat.db
    .prepare(
      `INSERT INTO files (vpath, parent, source_id, kind) VALUES (CAST('/v/f/x' AS BLOB), CAST('/v/f' AS BLOB), 1, 1)`,
    )
    .run();
  assert.deepEqual(sigs(cat), ['/v']);
  await update(cat);
  await update(cat);
  assert.deepEqual(sigs(cat), ['/v', '/v/d', '/v/e', '/v/f']);
  unmapSource(cat, '/v');
  assert.deepEqual(sigs(cat), []);
});

test('a dry run uses signatures and writes none', async (t) => {
  const { root, cat } = setup(t, { 'd/a': 'alpha' });
  await update(cat);
  const dry = await update(cat, true);
  assert.equal(dry.unchanged, dry.scanned);
  assert.deepEqual(sigs(cat), []);
  await update(cat);
  fs.writeFileSync(path.join(root, 'd/b'), 'beta');
  const dry2 = await update(cat, true);
  assert.equal(dry2.new, 1);
  assert.deepEqual(sigs(cat), ['/v', '/v/d']);
});

test('a folder where a locked subfolder keeps its rows is never signed, and is signed once unlocked', async (t) => {
  const { root, cat } = setup(t, { 'd/a': 'alpha', 'd/sub/b': 'beta' });
  await update(cat);
  setPathSettings(cat, ['/v/d/sub'], { lock: true });
  await update(cat);
  // /v/d lists `sub`, but the policy keeps it as catalogued: its row is not compared.
  assert.ok(!sigs(cat).includes('/v/d'));
  // While locked, a file removed below it stays catalogued, run after run.
  fs.rmSync(path.join(root, 'd/sub/b'));
  await update(cat);
  await update(cat);
  assert.equal(cat.db.prepare(`SELECT count(*) FROM files WHERE vpath = CAST('/v/d/sub/b' AS BLOB)`).pluck().get(), 1);
  setPathSettings(cat, ['/v/d/sub'], { lock: false });
  const unlocked = await update(cat);
  assert.equal(unlocked.removed, 1);
  await update(cat);
  assert.ok(sigs(cat).includes('/v/d') && sigs(cat).includes('/v/d/sub'));
});

test('a folder with an entry that cannot be examined is never signed', {
  skip: process.getuid?.() === 0 ? 'root examines everything' : false,
}, async (t) => {
  const { root, cat } = setup(t, { 'd/a': 'alpha', 'd/sub/b': 'beta' });
  await update(cat);
  fs.chmodSync(path.join(root, 'd/sub'), 0);
  t.after(() => fs.chmodSync(path.join(root, 'd/sub'), 0o755));
  await update(cat);
  await update(cat);
  assert.ok(!sigs(cat).includes('/v/d/sub'));
  assert.equal(cat.db.prepare(`SELECT count(*) FROM files WHERE vpath = CAST('/v/d/sub/b' AS BLOB)`).pluck().get(), 1);
});

type Step =
  | { op: 'add'; dir: number; name: number; size: number }
  | { op: 'remove'; pick: number }
  | { op: 'append'; pick: number }
  | { op: 'rewrite'; pick: number }
  | { op: 'chmod'; pick: number }
  | { op: 'rename'; pick: number; dir: number; name: number }
  | { op: 'mkdir'; dir: number; name: number }
  | { op: 'rmdir'; dir: number }
  | { op: 'symlink'; dir: number; name: number; target: number }
  | { op: 'settings'; dir: number; priority: number };

const DIRS = ['', 'a', 'a/b', 'c'];

/**
 * Apply `s` under `root`. `touched`: the inodes rewritten (mtime put back) or renamed since the
 * last update; one is never both. A file rewritten with its size and mtime kept and renamed too
 * looks like a plain rename to update, which reuses its old hash (the bytes are only read again
 * when sync finds them changed: test/integration/sync.test.ts): not what this property is about.
 */
function apply(root: string, cat: Catalog, s: Step, touched: Map<bigint, 'rewrite' | 'rename'>): void {
  const files = filesUnder(root).filter((f) => f !== '.keep');
  const pick = (i: number): string | undefined => (files.length === 0 ? undefined : files[i % files.length]);
  const dirOf = (i: number): string => path.join(root, DIRS[i % DIRS.length] as string);
  switch (s.op) {
    case 'add':
    case 'mkdir':
    case 'symlink': {
      const d = dirOf(s.dir);
      if (!lexists(d)) fs.mkdirSync(d, { recursive: true });
      const p = path.join(d, `n${s.name}`);
      if (lexists(p)) return;
      if (s.op === 'add') fs.writeFileSync(p, Buffer.alloc(s.size, s.name));
      else if (s.op === 'mkdir') fs.mkdirSync(p);
      else fs.symlinkSync(`t${s.target}`, p);
      return;
    }
    case 'remove':
    case 'append':
    case 'rewrite':
    case 'chmod':
    case 'rename': {
      const f = pick(s.pick);
      if (f === undefined) return;
      const p = path.join(root, f);
      if (s.op === 'remove') fs.rmSync(p);
      else if (fs.lstatSync(p).isSymbolicLink()) return;
      else if (s.op === 'append') fs.appendFileSync(p, 'x');
      else if (s.op === 'chmod') fs.chmodSync(p, (fs.statSync(p).mode & 0o777) === 0o644 ? 0o600 : 0o644);
      else if (s.op === 'rewrite') {
        // Same size, the mtime put back: only the ctime tells.
        if (touched.get(fs.statSync(p, { bigint: true }).ino) === 'rename') return;
        const st = fs.statSync(p);
        const b = fs.readFileSync(p);
        if (b.length === 0) return;
        b[0] = (b[0] ?? 0) ^ 0xff;
        fs.writeFileSync(p, b);
        fs.utimesSync(p, st.atime, st.mtime);
        touched.set(fs.statSync(p, { bigint: true }).ino, 'rewrite');
      } else {
        const ino = fs.statSync(p, { bigint: true }).ino;
        if (touched.get(ino) === 'rewrite') return;
        const d = dirOf(s.dir);
        if (!lexists(d)) fs.mkdirSync(d, { recursive: true });
        const to = path.join(d, `r${s.name}`);
        if (!lexists(to)) {
          fs.renameSync(p, to);
          touched.set(ino, 'rename');
        }
      }
      return;
    }
    case 'rmdir': {
      const d = DIRS[s.dir % DIRS.length] as string;
      if (d !== '') fs.rmSync(path.join(root, d), { recursive: true, force: true });
      return;
    }
    case 'settings':
      setPathSettings(cat, [`/v/${DIRS[s.dir % DIRS.length]}`.replace(/\/$/, '')], { priority: s.priority });
      return;
  }
}

const stepArb: fc.Arbitrary<Step> = fc.oneof(
  fc.record({ op: fc.constant('add' as const), dir: fc.nat(3), name: fc.nat(5), size: fc.nat(40) }),
  fc.record({ op: fc.constant('remove' as const), pick: fc.nat(20) }),
  fc.record({ op: fc.constant('append' as const), pick: fc.nat(20) }),
  fc.record({ op: fc.constant('rewrite' as const), pick: fc.nat(20) }),
  fc.record({ op: fc.constant('chmod' as const), pick: fc.nat(20) }),
  fc.record({ op: fc.constant('rename' as const), pick: fc.nat(20), dir: fc.nat(3), name: fc.nat(5) }),
  fc.record({ op: fc.constant('mkdir' as const), dir: fc.nat(3), name: fc.nat(5) }),
  fc.record({ op: fc.constant('rmdir' as const), dir: fc.nat(3) }),
  fc.record({ op: fc.constant('symlink' as const), dir: fc.nat(3), name: fc.nat(5), target: fc.nat(2) }),
  fc.record({ op: fc.constant('settings' as const), dir: fc.nat(3), priority: fc.nat(3) }),
);

test('property: run after run with signatures, the catalogue equals one built from scratch', async (t) => {
  const base = tempDir(t);
  let round = 0;
  await fc.assert(
    fc.asyncProperty(
      fc.array(fc.array(stepArb, { minLength: 1, maxLength: 4 }), { minLength: 2, maxLength: 6 }),
      async (rounds) => {
        round += 1;
        const root = path.join(base, `r${round}`, 'src');
        // `.keep` is never touched: a mapping whose root became empty is refused by design.
        writeTree(root, { '.keep': '', 'a/b/f1': 'one', 'a/f2': 'two', 'c/f3': 'three', f4: 'four' });
        const kept = openCatalog(path.join(base, `r${round}`, 'kept'));
        try {
          mapSource(kept, '/v', root);
          await update(kept);
          for (const steps of rounds) {
            // Each change lands on a later tick of the coarse clock than the last scan.
            nextClockTick(path.join(base, `r${round}`, 'tick'));
            const touched = new Map<bigint, 'rewrite' | 'rename'>();
            for (const s of steps) apply(root, kept, s, touched);
            await update(kept);
            // Twice: the second run is the one that goes by the signatures the first stored.
            await update(kept);
            const fresh = openCatalog(path.join(base, `r${round}`, `fresh-${Math.random().toString(36).slice(2)}`));
            try {
              mapSource(fresh, '/v', root);
              for (const row of kept.db.prepare('SELECT vpath, settings_json FROM path_settings').all() as {
                vpath: string;
                settings_json: string;
              }[]) {
                fresh.db
                  .prepare('INSERT INTO path_settings (vpath, settings_json) VALUES (?, ?)')
                  .run(row.vpath, row.settings_json);
              }
              await update(fresh);
              assert.deepEqual(snapshot(kept), snapshot(fresh));
            } finally {
              fresh.close();
            }
          }
        } finally {
          kept.close();
        }
      },
    ),
    { numRuns: 25, seed: SEED },
  );
});

test('no other connection can commit between the read of a folder rows and its signature', async (t) => {
  const { root, cat } = setup(t, { a: 'alpha', b: 'beta', c: 'gamma' });
  await update(cat);
  // Another process (a second connection) tries what `source unmap /v` does right after update
  // read the rows of /v, before their signature is stored (the signing run).
  const read = FilesWriter.prototype.childRows;
  const outcomes: string[] = [];
  FilesWriter.prototype.childRows = function (this: FilesWriter, ...args: Parameters<typeof read>) {
    const rows = read.apply(this, args);
    if (outcomes.length === 0) {
      const other = new Database(cat.file, { timeout: 0 });
      try {
        other.pragma('foreign_keys = ON');
        other.prepare('DELETE FROM sources WHERE id = ?').run(args[1]);
        outcomes.push('committed');
      } catch (err) {
        outcomes.push((err as { code?: string }).code ?? String(err));
      } finally {
        other.close();
      }
    }
    return rows;
  };
  try {
    await update(cat);
  } finally {
    FilesWriter.prototype.childRows = read;
  }
  assert.deepEqual(outcomes, ['SQLITE_BUSY']);
  // Done after the update, the unmap takes its rows and signatures with it; mapped again (the
  // same source id), the folder is read and its files catalogued anew.
  unmapSource(cat, '/v');
  mapSource(cat, '/v', root);
  const again = await update(cat);
  assert.equal(again.new, 3);
  assert.equal(cat.db.prepare('SELECT count(*) FROM files WHERE kind = 0').pluck().get(), 3);
});

test('a new source never inherits signatures of an id used before; INSERT OR REPLACE of a row clears both folders', async (t) => {
  const { cat } = setup(t, { 'd/a': 'alpha', 'e/b': 'beta' });
  await update(cat);
  await update(cat);
  assert.deepEqual(sigs(cat), ['/v', '/v/d', '/v/e']);
  cat.db.prepare(`INSERT INTO dir_sigs (parent, source_id, sig) VALUES (CAST('/w' AS BLOB), 7, x'00')`).run();
  cat.db
    .prepare(`INSERT INTO sources (id, vpath, realpath, created_ms) VALUES (7, '/w', CAST('/nowhere' AS BLOB), 0)`)
    .run();
  assert.deepEqual(sigs(cat), ['/v', '/v/d', '/v/e']);
  // A row moved to another folder by REPLACE: the folder it left loses its signature too.
  cat.db
    .prepare(
      `INSERT OR REPLACE INTO files (vpath, parent, source_id, kind) VALUES (CAST('/v/d/a' AS BLOB), CAST('/v/e' AS BLOB), 1, 1)`,
    )
    .run();
  assert.deepEqual(sigs(cat), ['/v']);
});
