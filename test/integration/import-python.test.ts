import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash, randomUUID } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { type TestContext, test } from 'node:test';
import { openCatalog } from '../../src/catalog/db.js';
import { FileKind, NO_CAP } from '../../src/catalog/schema.js';
import { importPython } from '../../src/import-python/import.js';
import { showSettings } from '../../src/sources/settings.js';
import { runSync } from '../../src/sync/sync.js';
import { buildPythonCatalogue, type PyCatalogueData } from '../fixtures/python/schema31.js';
import { runCli } from '../helpers/cli.js';
import { tempDir } from '../helpers/tmp.js';

const sha = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');
const EMPTY = sha('');

interface PyWorld {
  root: string;
  home: string;
  pyFile: string;
  diskA: string;
  diskB: string;
  uuidA: string;
  hashes: Record<string, string>;
}

/** A source folder, two Python disks holding real objects, and the Python catalogue describing them. */
function pythonWorld(t: TestContext, tweak: (d: PyCatalogueData) => void = () => {}): PyWorld {
  const root = tempDir(t);
  const src = path.join(root, 'src');
  const files: Record<string, string> = {
    'photos/a.jpg': 'A'.repeat(5000),
    'photos/b.jpg': 'B'.repeat(7000),
    'photos/copy-of-a.jpg': 'A'.repeat(5000),
    'docs/notes.txt': 'notes',
    'docs/deep/er/x.txt': 'x',
    'docs/empty.txt': '',
  };
  const hashes: Record<string, string> = {};
  const rows: PyCatalogueData['files'] = [];
  for (const [rel, content] of Object.entries(files)) {
    const p = path.join(src, rel);
    fs.mkdirSync(path.dirname(p), { recursive: true });
    fs.writeFileSync(p, content);
    const st = fs.statSync(p);
    hashes[rel] = sha(content);
    rows.push({
      vpath: `/data/${rel}`,
      mtimeMs: Math.trunc(st.mtimeMs),
      hash: content === '' ? null : sha(content),
      ino: st.ino,
      size: content.length,
      priority: rel.startsWith('photos/') ? 2 : 1,
      maxcopies: rel === 'docs/notes.txt' ? 3 : null,
    });
  }
  fs.symlinkSync('notes.txt', path.join(src, 'docs/link'));
  const uuidA = randomUUID();
  const uuidB = randomUUID();
  const diskA = path.join(root, 'diskA');
  const diskB = path.join(root, 'diskB');
  const distinct = [...new Set(Object.values(files).filter((c) => c !== ''))];
  // disk A (index 0) holds everything; disk B (index 2) the photos; index 1 was deleted.
  const put = (disk: string, uuid: string, name: string, contents: string[]) => {
    fs.mkdirSync(disk, { recursive: true });
    fs.writeFileSync(path.join(disk, 'distbackup-disk.json'), JSON.stringify({ uuid, name }, null, 4));
    for (const c of contents) {
      const h = sha(c);
      fs.mkdirSync(path.join(disk, 'distbackup-objects', h.slice(0, 3)), { recursive: true });
      fs.writeFileSync(path.join(disk, 'distbackup-objects', h.slice(0, 3), h), c);
    }
  };
  put(diskA, uuidA, 'pyA', distinct);
  const photos = ['A'.repeat(5000), 'B'.repeat(7000)];
  put(diskB, uuidB, 'pyB', photos);
  const data: PyCatalogueData = {
    pathMap: [['/data/', src]],
    pathConfig: [
      ['/data/photos/', { priority: 2, rules: ['*.tmp', '!!!keep.tmp'] }],
      ['/data/docs/', { maxcopies: 3, include: [], exclude: [] }],
      ['/data/broken/', '{not json'],
    ],
    files: rows,
    links: [['/data/docs/link', 'notes.txt']],
    objects: distinct.map((c) => ({ hash: sha(c), size: c.length, nexus: photos.includes(c) ? '101' : '1' })),
    disks: [
      { uuid: uuidA, name: 'pyA', index: 0, relativePath: 'backup', fstype: 'ext4', fsuuid: randomUUID(), size: 1e9 },
      { uuid: randomUUID(), name: null, index: 1 },
      { uuid: uuidB, name: 'pyB', index: 2, size: 1e9 },
    ],
  };
  tweak(data);
  const pyFile = path.join(root, 'python', 'distbackup.sqlite');
  fs.mkdirSync(path.dirname(pyFile));
  buildPythonCatalogue(pyFile, data);
  return { root, home: path.join(root, 'home'), pyFile, diskA, diskB, uuidA, hashes };
}

test('a Python catalogue imports: sources, settings, files, objects, disks and copies', (t) => {
  const w = pythonWorld(t);
  const before = fs.readFileSync(w.pyFile);
  const cat = openCatalog(w.home);
  t.after(() => cat.close());
  const r = importPython(cat, path.dirname(w.pyFile));
  assert.deepEqual(
    [r.sources, r.settings, r.files, r.filesChecked, r.filesNotHashed, r.symlinks, r.disks],
    [1, 2, 6, 6, 0, 1, 2],
  );
  assert.equal(r.objects, 5); // 4 distinct contents + the empty file's object
  assert.equal(r.copies, 4 + 2);
  assert.equal(r.warningCount, 1);
  assert.match(r.warnings[0] ?? '', /path_config \/data\/broken: not JSON/);
  assert.deepEqual(fs.readFileSync(w.pyFile), before, 'the Python catalogue is never written');
  const db = cat.db;
  assert.deepEqual(db.prepare('SELECT vpath, realpath FROM sources').raw().all(), [
    ['/data', Buffer.from(path.join(w.root, 'src'))],
  ]);
  assert.equal(showSettings(cat, ['/data/photos'])[0]?.settings.priority, 2);
  assert.deepEqual(showSettings(cat, ['/data/docs'])[0]?.settings, { maxcopies: 3 });
  const file = (v: string) =>
    db
      .prepare(
        `SELECT f.kind, f.size, f.priority, f.max_copies AS mx, f.ctime_ns > 0 AS checked, o.hash
         FROM files f LEFT JOIN objects o ON o.id = f.object_id WHERE f.vpath = ?`,
      )
      .get(Buffer.from(v)) as {
      kind: number;
      size: number;
      priority: number;
      mx: number;
      checked: number;
      hash: string;
    };
  assert.deepEqual(file('/data/photos/a.jpg'), {
    kind: 0,
    size: 5000,
    priority: 2,
    mx: NO_CAP,
    checked: 1,
    hash: w.hashes['photos/a.jpg'],
  });
  assert.equal(file('/data/docs/notes.txt').mx, 3);
  assert.equal(file('/data/docs/empty.txt').hash, EMPTY);
  assert.equal(file('/data/docs/deep').kind, 1);
  assert.equal(file('/data/docs/link').kind, 2);
  const disks = db.prepare('SELECT name, uuid, size, rel_path, fs_type FROM disks ORDER BY name').all();
  assert.deepEqual(disks[0], { name: 'pyA', uuid: w.uuidA, size: 1e9, rel_path: 'backup', fs_type: 'ext4' });
  const copies = db
    .prepare(
      'SELECT d.name, count(*) AS n FROM copies c JOIN disks d ON d.id = c.disk_id GROUP BY d.name ORDER BY d.name',
    )
    .raw()
    .all();
  assert.deepEqual(copies, [
    ['pyA', 4],
    ['pyB', 2],
  ]);
});

test('import refuses a catalogue that is not empty, another schema version, a file that is not one', (t) => {
  const w = pythonWorld(t);
  const cat = openCatalog(w.home);
  t.after(() => cat.close());
  importPython(cat, w.pyFile);
  assert.throws(() => importPython(cat, w.pyFile), /home catalogue is not empty/);
  const w2 = pythonWorld(t, (d) => {
    d.userVersion = 30;
  });
  const cat2 = openCatalog(path.join(w2.root, 'home2'));
  t.after(() => cat2.close());
  assert.throws(() => importPython(cat2, w2.pyFile), /schema version 30; this import reads version 31/);
  const junk = path.join(w2.root, 'junk.sqlite');
  fs.writeFileSync(junk, 'not sqlite at all, just text');
  assert.throws(() => importPython(cat2, junk), /not a readable SQLite catalogue|cannot read/);
  // A FIFO in its place (a borrowed disk): refused, never waited on.
  const fifo = path.join(w2.root, 'fifo.sqlite');
  execFileSync('mkfifo', [fifo]);
  assert.throws(() => importPython(cat2, fifo), /fifo\.sqlite: cannot read the Python catalogue: not a regular file/);
  assert.equal(cat2.db.prepare('SELECT count(*) FROM files').pluck().get(), 0);
});

test('import-python names a missing or foreign input file before looking at a home that is not empty', (t) => {
  const w = pythonWorld(t);
  const first = runCli(w.home, ['import-python', w.pyFile]);
  assert.equal(first.code, 0, first.stderr);
  const nope = path.join(w.root, 'nope.sqlite');
  const emptyDir = path.join(w.root, 'empty-folder');
  fs.mkdirSync(emptyDir);
  const junk = path.join(w.root, 'junk.sqlite');
  fs.writeFileSync(junk, 'not sqlite at all, just text');
  const cases: [string, string, RegExp][] = [
    [nope, nope, /no such file/i],
    [emptyDir, path.join(emptyDir, 'distbackup.sqlite'), /no such file/i],
    [junk, junk, /not a readable SQLite catalogue: file is not a database/],
  ];
  for (const [arg, named, cause] of cases) {
    const r = runCli(w.home, ['import-python', arg]);
    assert.equal(r.code, 1, `${arg}: ${r.stderr}`);
    const lines = r.stderr.trim().split('\n');
    assert.equal(lines.length, 1, r.stderr);
    assert.ok(lines[0]?.includes(named), r.stderr);
    assert.match(r.stderr, cause);
    assert.doesNotMatch(r.stderr, /not empty/);
  }
  // The same file, readable, is then refused for the home that already holds it.
  const again = runCli(w.home, ['import-python', w.pyFile]);
  assert.equal(again.code, 2);
  assert.match(again.stderr, /the home catalogue is not empty/);
});

test('untrusted rows are skipped with a warning; a dry run writes nothing', (t) => {
  const w = pythonWorld(t, (d) => {
    d.files.push({ vpath: '/data/../etc/passwd', mtimeMs: 0, hash: 'ab'.repeat(32), size: 1 });
    d.files.push({ vpath: '/elsewhere/x', mtimeMs: 0, hash: 'ab'.repeat(32), size: 1 });
    d.files.push({ vpath: '/data/bad-hash', mtimeMs: 0, hash: 'xyz', size: 1 });
    d.files.push({ vpath: '/data/later', mtimeMs: 0, hash: '', size: 9 });
    d.objects.push({ hash: 'nothex', size: 1, nexus: '1' });
    d.objects.push({ hash: 'cd'.repeat(32), size: 3, nexus: '1x' });
    d.disks.push({ uuid: 'not-a-uuid', name: 'weird', index: 5 });
  });
  const cat = openCatalog(w.home);
  t.after(() => cat.close());
  const dry = importPython(cat, w.pyFile, { dryRun: true });
  assert.equal(dry.dryRun, true);
  assert.equal(cat.db.prepare('SELECT count(*) FROM files').pluck().get(), 0);
  const r = importPython(cat, w.pyFile);
  assert.equal(r.files, 8);
  assert.equal(r.filesNotHashed, 2);
  const text = r.warnings.join('\n');
  assert.match(text, /contains '\.\.'/);
  assert.match(text, /\/elsewhere\/x: not under any mapped folder/);
  assert.match(text, /\/data\/bad-hash: bad hash/);
  assert.match(text, /object nothex: not a SHA-256/);
  assert.match(text, /bad nexus/);
  assert.match(text, /disk weird: bad uuid/);
});

test('rows that clash on a path (twice the same, a file under a file, a link over a file) are skipped with a warning, the first kept', (t) => {
  const w = pythonWorld(t, (d) => {
    // The same path written another way, a file under a file, and a file where a folder is.
    d.files.push({ vpath: '/data/docs//notes.txt', mtimeMs: 0, hash: 'ab'.repeat(32), size: 1 });
    d.files.push({ vpath: '/data/docs/notes.txt/inner', mtimeMs: 0, hash: 'ab'.repeat(32), size: 1 });
    d.files.push({ vpath: '/data/docs/deep', mtimeMs: 0, hash: 'ab'.repeat(32), size: 1 });
    d.links?.push(['/data/photos/a.jpg', 'b.jpg']);
  });
  const cat = openCatalog(w.home);
  t.after(() => cat.close());
  const r = importPython(cat, w.pyFile);
  // Rows come in path order, and the first row of a path is kept: the file /data/docs/deep
  // comes before /data/docs/deep/er/x.txt, which is skipped.
  assert.equal(r.files, 6, 'five of the six real files, and /data/docs/deep');
  assert.equal(r.symlinks, 1);
  const text = r.warnings.join('\n');
  assert.match(text, /file_tree \/data\/docs\/notes\.txt: the path has a row already, skipped/);
  assert.match(text, /file_tree \/data\/docs\/notes\.txt\/inner: \/data\/docs\/notes\.txt is a file or link/);
  assert.match(text, /file_tree \/data\/docs\/deep\/er\/x\.txt: \/data\/docs\/deep is a file or link/);
  assert.match(text, /symbolic_link \/data\/photos\/a\.jpg: the path has a row already, skipped/);
  const kind = (v: string) => cat.db.prepare('SELECT kind FROM files WHERE vpath = ?').pluck().get(Buffer.from(v));
  assert.equal(kind('/data/docs/deep'), FileKind.file);
  assert.equal(kind('/data/photos/a.jpg'), FileKind.file);
  // The objects: the four Python ones (x.txt's stays, with its copy), the empty file's and the
  // kept row's; a skipped row added none.
  assert.equal(r.objects, 6);
  assert.equal(cat.db.prepare('SELECT count(*) FROM objects').pluck().get(), 6);
});

test('an imported Python disk syncs without copying anything', async (t) => {
  const w = pythonWorld(t);
  const cat = openCatalog(w.home);
  t.after(() => cat.close());
  importPython(cat, w.pyFile);
  const a = await runSync(cat, { diskPath: w.diskA });
  // Nothing is copied again: the only object written is the empty file's, 0 bytes, which the
  // Python tool never stored as an object.
  assert.equal(a.bytesCopied, 0, JSON.stringify(a.plan));
  assert.equal(a.copied, 1, JSON.stringify(a.plan));
  assert.equal(a.plan.histogramBefore[0]?.bytes, 0);
  assert.equal(a.deleted, 0);
  const b = await runSync(cat, { diskPath: w.diskB });
  assert.equal(b.copied, 3, 'disk B has room: it gets the two small objects and the empty one it lacked');
  assert.equal(b.bytesCopied, 'notes'.length + 1);
  assert.equal(a.disk, 'pyA');
  assert.ok(fs.existsSync(path.join(w.diskA, 'distbackup.sqlite')));
});

test("objects without a size take their file's, one no file holds is dropped, a file of some bytes without a hash is not hashed yet", (t) => {
  const sized = 'ef'.repeat(32);
  const orphan = '12'.repeat(32);
  const w = pythonWorld(t, (d) => {
    d.files.push({ vpath: '/data/sized-by-file', mtimeMs: 0, hash: sized, size: 5 });
    d.objects.push({ hash: sized, size: null, nexus: '1' });
    d.objects.push({ hash: orphan, size: null, nexus: '1' });
    d.files.push({ vpath: '/data/no-hash', mtimeMs: 0, hash: null, size: 7 });
  });
  const cat = openCatalog(w.home);
  t.after(() => cat.close());
  const r = importPython(cat, w.pyFile);
  const sizeOf = (h: string) => cat.db.prepare('SELECT size FROM objects WHERE hash = ?').pluck().get(h);
  assert.equal(sizeOf(sized), 5, 'the size of the file that holds it, not 0');
  assert.equal(sizeOf(orphan), undefined);
  assert.match(r.warnings.join('\n'), new RegExp(`object ${orphan}: no size recorded and no file holds it`));
  const noHash = cat.db.prepare("SELECT object_id FROM files WHERE vpath = CAST('/data/no-hash' AS BLOB)").get() as {
    object_id: number | null;
  };
  assert.equal(noHash.object_id, null, 'not hashed yet, never the empty object');
});

test("import-python refuses the home catalogue's own file (both tools default to the same folder), changing nothing", (t) => {
  const w = pythonWorld(t);
  const data = path.join(w.root, 'shared-config');
  fs.mkdirSync(data);
  const file = path.join(data, 'distbackup.sqlite');
  fs.copyFileSync(w.pyFile, file);
  const before = fs.readFileSync(file);
  const r = runCli(data, ['import-python', file]);
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, /this is the home catalogue's own file; give another data folder with -d/);
  assert.ok(fs.readFileSync(file).equals(before), 'the Python file is left as it was');
  assert.ok(!fs.existsSync(`${file}-wal`));
});
