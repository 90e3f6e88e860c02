import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import Database from 'better-sqlite3';
import { openCatalog } from '../../src/catalog/db.js';
import { DISK_CATALOGUE, objectPath } from '../../src/disk/layout.js';
import { runRestore } from '../../src/restore/restore.js';
import { mapSource } from '../../src/sources/sources.js';
import { runSync } from '../../src/sync/sync.js';
import { runUpdate } from '../../src/update/update.js';
import {
  addPoolDisk,
  catalogueSource,
  compareTrees,
  makeSourceTree,
  putObjects,
  writeDiskCatalogues,
} from '../helpers/pool.js';
import { tempDir } from '../helpers/tmp.js';

/**
 * A source of one file (`name`, `content`) mapped at /data and catalogued by a real update whose
 * clock runs 10 s ahead (nothing written here is racy); `later` is that clock, for later updates.
 */
async function oneFileWorld(t: import('node:test').TestContext, name: string, content: string) {
  const base = tempDir(t);
  const src = path.join(base, 'src');
  const home = path.join(base, 'home');
  fs.mkdirSync(src);
  fs.writeFileSync(path.join(src, name), content);
  const cat = openCatalog(home);
  mapSource(cat, '/data', src);
  const later = { now: () => Date.now() + 10_000 };
  await runUpdate(cat, later);
  return { base, src, home, cat, later };
}

/**
 * x.txt ('version 1') synced to disks a and b; then x changes ('version 2, longer'), the files of
 * `more` are added, and only a is synced again: b's catalogue copy is the older one. The
 * catalogue is closed.
 */
async function aAheadOfB(t: import('node:test').TestContext, more: Record<string, string> = {}) {
  const w = await oneFileWorld(t, 'x.txt', 'version 1');
  const a = path.join(w.base, 'a');
  const b = path.join(w.base, 'b');
  addPoolDisk(w.cat, 'a', a);
  addPoolDisk(w.cat, 'b', b);
  await runSync(w.cat, { name: 'a' });
  await runSync(w.cat, { name: 'b' });
  fs.writeFileSync(path.join(w.src, 'x.txt'), 'version 2, longer');
  for (const [name, text] of Object.entries(more)) fs.writeFileSync(path.join(w.src, name), text);
  await runUpdate(w.cat, w.later);
  await runSync(w.cat, { name: 'a' });
  w.cat.close();
  return { ...w, a, b };
}

/** Change the catalogue copy on the disk at `root` (a copy skewed or crafted as a hostile disk's). */
function editDiskCopy(root: string, edit: (db: Database.Database) => void): void {
  fs.chmodSync(path.join(root, DISK_CATALOGUE), 0o600);
  const db = new Database(path.join(root, DISK_CATALOGUE));
  try {
    edit(db);
  } finally {
    db.close();
  }
}

function setup(t: import('node:test').TestContext, diskNames: string[]) {
  const base = tempDir(t);
  const src = path.join(base, 'src');
  const home = path.join(base, 'home');
  fs.mkdirSync(src);
  makeSourceTree(src);
  const cat = openCatalog(home);
  const c = catalogueSource(cat, '/data', src);
  const disks: Record<string, string> = {};
  for (const n of diskNames) {
    disks[n] = path.join(base, n);
    addPoolDisk(cat, n, disks[n]);
  }
  return { base, src, home, cat, c, disks };
}

test('restore from one disk equals the source: content, modes, mtimes, symlinks, non-UTF-8 names', async (t) => {
  const { base, src, home, cat, c, disks } = setup(t, ['d1']);
  putObjects(cat, c, 'd1');
  cat.close();
  const dest = path.join(base, 'out');
  const doc = await runRestore({ dest, vpaths: [], diskPath: disks.d1, dataDir: home, catalogue: 'auto' });
  assert.equal(doc.remaining, 0, JSON.stringify(doc));
  assert.equal(doc.next, null);
  assert.deepEqual(doc.errors, []);
  assert.deepEqual(doc.refused, []);
  assert.equal(doc.symlinks, 3);
  assert.ok(doc.restored >= 20);
  assert.deepEqual(compareTrees(src, path.join(dest, 'data')), []);
  assert.equal(fs.statSync(dest).mode & 0o777, 0o700);
  // A second run adds nothing and still reports complete.
  const again = await runRestore({ dest, vpaths: [], diskPath: disks.d1, dataDir: home, catalogue: 'auto' });
  assert.equal(again.restored, 0);
  assert.equal(again.remaining, 0);
  assert.deepEqual(compareTrees(src, path.join(dest, 'data')), []);
});

test('restore of a subtree only restores that subtree', async (t) => {
  const { base, home, cat, c, disks } = setup(t, ['d1']);
  putObjects(cat, c, 'd1');
  cat.close();
  const dest = path.join(base, 'out');
  const doc = await runRestore({
    dest,
    vpaths: ['/data/docs/deep'],
    diskPath: disks.d1,
    dataDir: home,
    catalogue: 'home',
  });
  assert.equal(doc.remaining, 0);
  assert.equal(doc.restored, 1);
  assert.ok(fs.existsSync(path.join(dest, 'data/docs/deep/er/script.sh')));
  assert.ok(!fs.existsSync(path.join(dest, 'data/photos')));
  await assert.rejects(
    () => runRestore({ dest, vpaths: ['/data/nope'], diskPath: disks.d1, dataDir: home, catalogue: 'home' }),
    /\/data\/nope: not in the catalogue/,
  );
});

test('guided restore across disks with no home catalogue ends equal to the source', async (t) => {
  const { base, src, home, cat, c, disks } = setup(t, ['d1', 'd2', 'd3']);
  // d1 holds the even objects, d2 the odd ones, d3 a few of both: two disks are needed.
  putObjects(cat, c, 'd1', (_h, i) => i % 2 === 0);
  putObjects(cat, c, 'd2', (_h, i) => i % 2 === 1);
  putObjects(cat, c, 'd3', (_h, i) => i % 5 === 0);
  writeDiskCatalogues(cat);
  cat.close();
  fs.renameSync(home, `${home}.away`);
  const dest = path.join(base, 'out');
  const plan = await runRestore({
    dest,
    vpaths: [],
    diskPath: disks.d3,
    dataDir: home,
    catalogue: 'auto',
    planOnly: true,
  });
  assert.equal(plan.catalogue, 'disk');
  assert.equal(plan.plan.length, 2, JSON.stringify(plan.plan));
  assert.ok(!fs.existsSync(dest), '--plan writes nothing');

  const first = await runRestore({ dest, vpaths: [], diskPath: disks.d3, dataDir: home, catalogue: 'auto' });
  assert.equal(first.catalogue, 'disk');
  assert.ok(first.restored > 0);
  assert.ok(first.remaining > 0);
  assert.equal(first.unavailable, 0);
  assert.ok(first.next !== null);
  const replan = await runRestore({
    dest,
    vpaths: [],
    diskPath: disks.d3,
    dataDir: home,
    catalogue: 'auto',
    planOnly: true,
  });
  assert.equal(replan.remaining, first.remaining, '--plan counts what DEST already holds');
  assert.equal(replan.plan[0]?.disk, first.next.disk);
  const order = [first.next.disk];
  let last = first;
  for (let i = 0; i < 3 && last.next !== null; i++) {
    const name = last.next.disk;
    last = await runRestore({ dest, vpaths: [], diskPath: disks[name], dataDir: home, catalogue: 'auto' });
    assert.deepEqual(last.errors, []);
    if (last.next !== null) order.push(last.next.disk);
  }
  assert.equal(last.remaining, 0);
  assert.equal(last.next, null);
  assert.ok(order.length <= 2, `fewest disks: ${order.join(',')}`);
  assert.deepEqual(compareTrees(src, path.join(dest, 'data')), []);
});

test('an existing file is never overwritten unless --overwrite; an identical one counts as restored', async (t) => {
  const { base, home, cat, c, disks } = setup(t, ['d1']);
  putObjects(cat, c, 'd1');
  cat.close();
  const dest = path.join(base, 'out');
  fs.mkdirSync(path.join(dest, 'data/docs'), { recursive: true });
  fs.writeFileSync(path.join(dest, 'data/docs/private.txt'), 'mine, keep it');
  fs.writeFileSync(path.join(dest, 'data/docs/readme.txt'), 'hello\n');
  const doc = await runRestore({ dest, vpaths: ['/data/docs'], diskPath: disks.d1, dataDir: home, catalogue: 'home' });
  assert.equal(fs.readFileSync(path.join(dest, 'data/docs/private.txt'), 'utf8'), 'mine, keep it');
  assert.deepEqual(
    doc.existing.map((e) => e.path),
    ['/data/docs/private.txt'],
  );
  assert.equal(doc.alreadyRestored, 1);
  assert.equal(doc.remaining, 1);
  const forced = await runRestore({
    dest,
    vpaths: ['/data/docs'],
    diskPath: disks.d1,
    dataDir: home,
    catalogue: 'home',
    overwrite: true,
  });
  assert.equal(forced.remaining, 0);
  assert.equal(fs.readFileSync(path.join(dest, 'data/docs/private.txt'), 'utf8'), 'secret');
});

test('a damaged object is refused (hashed while written), reported, and left missing', async (t) => {
  const { base, home, cat, c, disks } = setup(t, ['d1']);
  const hashes = putObjects(cat, c, 'd1');
  cat.close();
  const readme = hashes.find((h) => fs.readFileSync(objectPath(disks.d1 as string, h), 'utf8') === 'hello\n');
  assert.ok(readme);
  fs.writeFileSync(objectPath(disks.d1 as string, readme), 'jello\n');
  const dest = path.join(base, 'out');
  const doc = await runRestore({ dest, vpaths: [], diskPath: disks.d1, dataDir: home, catalogue: 'home' });
  assert.equal(doc.errors.length, 2, JSON.stringify(doc.errors));
  assert.match(doc.errors[0]?.error ?? '', /damaged/);
  assert.equal(doc.remaining, 2);
  assert.equal(doc.unavailable, 2);
  assert.ok(!fs.existsSync(path.join(dest, 'data/docs/readme.txt')));
  assert.deepEqual(
    fs.readdirSync(path.join(dest, 'data/docs')).filter((n) => n.endsWith('.part')),
    [],
  );
});

for (const [lane, minFiles] of [
  ['the small-file thread', 0],
  ['the main thread', Number.POSITIVE_INFINITY],
] as const) {
  test(`small objects on ${lane}: one grown by a byte, one shrunk, one a folder are refused with their path and cause; the rest is restored`, async (t) => {
    const { base, home, cat, c, disks } = setup(t, ['d1']);
    const hashes = putObjects(cat, c, 'd1');
    cat.close();
    const d1 = disks.d1 as string;
    const bySize = [...hashes].sort(
      (a, b) => fs.statSync(objectPath(d1, b)).size - fs.statSync(objectPath(d1, a)).size,
    );
    const [grown, shrunk, folder] = bySize as [string, string, string];
    for (const h of [grown, shrunk, folder]) fs.chmodSync(objectPath(d1, h), 0o644);
    fs.appendFileSync(objectPath(d1, grown), 'x');
    fs.truncateSync(objectPath(d1, shrunk), fs.statSync(objectPath(d1, shrunk)).size - 1);
    fs.rmSync(objectPath(d1, folder));
    fs.mkdirSync(objectPath(d1, folder));
    const dest = path.join(base, 'out');
    const doc = await runRestore({
      dest,
      vpaths: [],
      diskPath: d1,
      dataDir: home,
      catalogue: 'home',
      smallFileLaneMinFiles: minFiles,
    });
    const byHash = (h: string): string =>
      doc.errors
        .filter((e) => e.error.includes(h))
        .map((e) => `${e.path}: ${e.error}`)
        .join('\n');
    assert.match(byHash(grown), /^\/data\/.*: object [0-9a-f]{64} has more than \d+ bytes: damaged/);
    assert.match(byHash(shrunk), /^\/data\/.*: object [0-9a-f]{64} has \d+ bytes, not \d+: damaged/);
    assert.match(byHash(folder), /^\/data\/.*: object [0-9a-f]{64}: EISDIR/);
    assert.equal(doc.errors.length, 3, JSON.stringify(doc.errors));
    assert.equal(doc.remaining, 3);
    assert.equal(doc.restored, doc.planned.files - 3);
    for (const e of doc.errors) assert.ok(!fs.existsSync(path.join(dest, e.path)), `${e.path} not in DEST`);
    const parts = (dir: string): string[] =>
      fs.readdirSync(dir, { recursive: true, encoding: 'utf8' }).filter((n) => n.endsWith('.part'));
    assert.deepEqual(parts(path.join(dest, 'data')), [], 'no temp file left');
  });
}

for (const [lane, minFiles] of [
  ['the small-file thread', 0],
  ['the main thread', Number.POSITIVE_INFINITY],
] as const) {
  test(`a crafted disk catalogue restores nothing outside DEST and lists every refused path (files on ${lane})`, async (t) => {
    const { base, home, cat, c, disks } = setup(t, ['d1']);
    putObjects(cat, c, 'd1');
    writeDiskCatalogues(cat);
    cat.close();
    const diskCat = path.join(disks.d1 as string, DISK_CATALOGUE);
    const canaryDir = path.join(base, 'canary');
    fs.mkdirSync(canaryDir);
    fs.writeFileSync(path.join(canaryDir, 'keep.txt'), 'canary');
    const db = new Database(diskCat);
    const one = db.prepare('SELECT * FROM files WHERE kind = 0 AND size > 0 LIMIT 1').get() as Record<string, unknown>;
    const evil: Buffer[] = [
      Buffer.from('/../canary/keep.txt'),
      Buffer.from('/data/../../canary/keep.txt'),
      Buffer.from(`/${path.join(base, 'canary/keep.txt')}`.replace('//', '/')),
      Buffer.from('//abs'),
      Buffer.from('relative/path'),
      Buffer.from('/data/./x'),
      Buffer.concat([Buffer.from('/data/nul'), Buffer.from([0]), Buffer.from('x')]),
      Buffer.from(`/data/${'n'.repeat(300)}`),
      Buffer.from('/.distbackup-restore/state.sqlite'),
      Buffer.from('/data/sym/escape.txt'),
    ];
    const ins = db.prepare(
      `INSERT INTO files (vpath, parent, source_id, kind, size, mtime_ns, mode, object_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
    );
    for (const v of evil) ins.run(v, Buffer.from('/'), one.source_id, 0, one.size, 0n, 0o644, one.object_id);
    // A symlink entry pointing out of DEST, and a file "inside" it: the link comes last and the
    // file never goes through it.
    ins.run(Buffer.from('/data/sym'), Buffer.from('/data'), one.source_id, 2, 0, 0n, 0o777, null);
    db.prepare('UPDATE files SET link_target = ? WHERE vpath = ?').run(
      Buffer.from(canaryDir),
      Buffer.from('/data/sym'),
    );
    db.prepare("UPDATE files SET vpath = ? WHERE vpath = '/data/sym'").run(Buffer.from('/data/sym'));
    db.close();
    fs.renameSync(home, `${home}.away`);
    const dest = path.join(base, 'out');
    const doc = await runRestore({
      dest,
      vpaths: [],
      diskPath: disks.d1,
      dataDir: home,
      catalogue: 'auto',
      smallFileLaneMinFiles: minFiles,
    });
    assert.equal(fs.readFileSync(path.join(canaryDir, 'keep.txt'), 'utf8'), 'canary');
    assert.deepEqual(fs.readdirSync(canaryDir), ['keep.txt']);
    assert.ok(!fs.existsSync(path.join(base, 'abs')));
    const refused = doc.refused.map((r) => r.path);
    for (const p of ['/../canary/keep.txt', '/data/../../canary/keep.txt', '//abs', 'relative/path', '/data/./x']) {
      assert.ok(refused.includes(p), `${p} refused: ${JSON.stringify(doc.refused)}`);
    }
    assert.ok(refused.some((p) => p.startsWith('/data/nul')));
    assert.ok(refused.some((p) => p.startsWith('/data/nnnn')));
    assert.ok(refused.includes('/.distbackup-restore/state.sqlite'), JSON.stringify(doc.refused));
    assert.ok(doc.remaining >= evil.length - 2, JSON.stringify(doc));
    // The symlink was restored verbatim (data, never followed); the file "under" it landed in a
    // real folder created before the link, so the link itself is refused as existing.
    const st = fs.lstatSync(path.join(dest, 'data/sym'));
    assert.ok(st.isDirectory() || st.isSymbolicLink());
    if (st.isDirectory()) assert.ok(fs.existsSync(path.join(dest, 'data/sym/escape.txt')));
  });
}

test('end to end with real update and sync: one disk restores the source exactly; two small disks restore it together with no home catalogue', async (t) => {
  const base = tempDir(t);
  const src = path.join(base, 'src');
  const home = path.join(base, 'home');
  fs.mkdirSync(src);
  makeSourceTree(src, { files: 20 });
  const cat = openCatalog(home);
  mapSource(cat, '/data', src);
  const up = await runUpdate(cat, {});
  assert.deepEqual(up.errors, []);
  const whole = path.join(base, 'whole');
  addPoolDisk(cat, 'whole', whole);
  await runSync(cat, { name: 'whole' });
  // Two disks of about 60 % of the data each: neither holds everything.
  const total = cat.db.prepare('SELECT sum(size) FROM objects').pluck().get() as number;
  const count = cat.db.prepare('SELECT count(*) FROM objects').pluck().get() as number;
  for (const n of ['half1', 'half2']) {
    addPoolDisk(cat, n, path.join(base, n), Math.ceil(total * 0.6) + count * 8192);
    await runSync(cat, { name: n });
  }
  cat.close();

  const one = path.join(base, 'out-one');
  const a = await runRestore({ dest: one, vpaths: [], diskPath: whole, dataDir: home, catalogue: 'home' });
  assert.equal(a.remaining, 0, JSON.stringify(a));
  assert.deepEqual(compareTrees(src, path.join(one, 'data')), []);

  fs.renameSync(home, `${home}.away`);
  const two = path.join(base, 'out-two');
  const first = await runRestore({
    dest: two,
    vpaths: [],
    diskPath: path.join(base, 'half1'),
    dataDir: home,
    catalogue: 'auto',
  });
  assert.equal(first.catalogue, 'disk');
  assert.ok(first.remaining > 0, 'half1 alone does not hold everything');
  assert.ok(first.next !== null && first.next.disk !== 'half1');
  const nextPath = path.join(base, first.next.disk);
  const second = await runRestore({ dest: two, vpaths: [], diskPath: nextPath, dataDir: home, catalogue: 'auto' });
  assert.equal(second.remaining, 0, JSON.stringify(second));
  assert.deepEqual(compareTrees(src, path.join(two, 'data')), []);
});

test('a symlink restored by an earlier run is never written through by the next disk', async (t) => {
  const { base, home, cat, c, disks } = setup(t, ['d1', 'd2']);
  putObjects(cat, c, 'd1');
  putObjects(cat, c, 'd2');
  writeDiskCatalogues(cat);
  cat.close();
  const canary = path.join(base, 'canary');
  fs.mkdirSync(canary);
  // d1's catalogue says /data/docs/trap is a symlink to the canary folder.
  const db1 = new Database(path.join(disks.d1 as string, DISK_CATALOGUE));
  const src = db1.prepare('SELECT source_id FROM files LIMIT 1').pluck().get();
  db1
    .prepare(
      'INSERT INTO files (vpath, parent, source_id, kind, size, mtime_ns, mode, link_target) VALUES (?, ?, ?, 2, 0, 0, 511, ?)',
    )
    .run(Buffer.from('/data/docs/trap'), Buffer.from('/data/docs'), src, Buffer.from(canary));
  db1.close();
  // d2's catalogue says /data/docs/trap/evil.txt is a file.
  const db2 = new Database(path.join(disks.d2 as string, DISK_CATALOGUE));
  const one = db2.prepare('SELECT * FROM files WHERE kind = 0 AND size > 0 LIMIT 1').get() as Record<string, unknown>;
  db2
    .prepare(
      'INSERT INTO files (vpath, parent, source_id, kind, size, mtime_ns, mode, object_id) VALUES (?, ?, ?, 0, ?, 0, 420, ?)',
    )
    .run(
      Buffer.from('/data/docs/trap/evil.txt'),
      Buffer.from('/data/docs/trap'),
      one.source_id,
      one.size,
      one.object_id,
    );
  db2.close();
  fs.renameSync(home, `${home}.away`);
  const dest = path.join(base, 'out');
  await runRestore({ dest, vpaths: [], diskPath: disks.d1, dataDir: home, catalogue: 'disk' });
  assert.ok(fs.lstatSync(path.join(dest, 'data/docs/trap')).isSymbolicLink());
  const second = await runRestore({ dest, vpaths: [], diskPath: disks.d2, dataDir: home, catalogue: 'disk' });
  assert.deepEqual(fs.readdirSync(canary), [], 'nothing written through the link');
  assert.ok(second.refused.some((r) => r.path === '/data/docs/trap/evil.txt' && /symlink/.test(r.error)));
  assert.ok(second.remaining >= 1);
});

test('a folder entry behind a symlink restored earlier gets no mode or time through the link', async (t) => {
  const { base, home, cat, c, disks } = setup(t, ['d1', 'd2']);
  putObjects(cat, c, 'd1');
  putObjects(cat, c, 'd2');
  writeDiskCatalogues(cat);
  cat.close();
  const outside = path.join(base, 'outside');
  fs.mkdirSync(path.join(outside, 'sub'), { recursive: true });
  fs.chmodSync(path.join(outside, 'sub'), 0o755);
  const before = fs.statSync(path.join(outside, 'sub'));
  const db1 = new Database(path.join(disks.d1 as string, DISK_CATALOGUE));
  const src = db1.prepare('SELECT source_id FROM files LIMIT 1').pluck().get();
  db1
    .prepare(
      'INSERT INTO files (vpath, parent, source_id, kind, size, mtime_ns, mode, link_target) VALUES (?, ?, ?, 2, 0, 0, 511, ?)',
    )
    .run(Buffer.from('/data/out'), Buffer.from('/data'), src, Buffer.from(outside));
  db1.close();
  const db2 = new Database(path.join(disks.d2 as string, DISK_CATALOGUE));
  db2
    .prepare('INSERT INTO files (vpath, parent, source_id, kind, size, mtime_ns, mode) VALUES (?, ?, ?, 1, 0, 0, ?)')
    .run(Buffer.from('/data/out/sub'), Buffer.from('/data/out'), src, 0o4777);
  db2.close();
  fs.renameSync(home, `${home}.away`);
  const dest = path.join(base, 'out');
  await runRestore({ dest, vpaths: [], diskPath: disks.d1, dataDir: home, catalogue: 'disk' });
  const second = await runRestore({ dest, vpaths: [], diskPath: disks.d2, dataDir: home, catalogue: 'disk' });
  const after = fs.statSync(path.join(outside, 'sub'));
  assert.equal(after.mode & 0o7777, 0o755);
  assert.equal(after.mtimeMs, before.mtimeMs);
  assert.ok(second.refused.some((r) => r.path === '/data/out/sub'));
});

test("a file restored earlier is brought up to a newer version, unless it was changed in DEST since: then it is the user's and stays", async (t) => {
  const base = tempDir(t);
  const src = path.join(base, 'src');
  const home = path.join(base, 'home');
  fs.mkdirSync(src);
  // Two files get a newer version, two become links, a link becomes a file and another one
  // gets a new target; one of the first two pairs is changed in DEST meanwhile.
  const names = ['kept.txt', 'edited.txt', 'to-link.txt', 'edited-to-link.txt'];
  const past = new Date('2021-03-04T05:06:07Z');
  for (const n of names) {
    fs.writeFileSync(path.join(src, n), `version 1 of ${n}\n`);
    fs.utimesSync(path.join(src, n), past, past);
  }
  fs.symlinkSync('kept.txt', path.join(src, 'link-to-file'));
  fs.symlinkSync('kept.txt', path.join(src, 'retargeted'));
  const cat = openCatalog(home);
  mapSource(cat, '/data', src);
  const d1 = path.join(base, 'd1');
  addPoolDisk(cat, 'd1', d1);
  const cycle = async (): Promise<void> => {
    assert.deepEqual((await runUpdate(cat, {})).errors, []);
    await runSync(cat, { name: 'd1' });
  };
  await cycle();
  const dest = path.join(base, 'out');
  const restore = () => runRestore({ dest, vpaths: [], diskPath: d1, dataDir: home, catalogue: 'home' });
  assert.equal((await restore()).remaining, 0);
  for (const n of ['edited.txt', 'edited-to-link.txt']) fs.writeFileSync(path.join(dest, 'data', n), 'my own edit\n');
  for (const n of ['kept.txt', 'edited.txt']) {
    fs.writeFileSync(path.join(src, n), `version 2 of ${n}\n`);
    fs.utimesSync(path.join(src, n), past, new Date('2021-03-05T05:06:07Z'));
  }
  for (const n of ['to-link.txt', 'edited-to-link.txt']) {
    fs.rmSync(path.join(src, n));
    fs.symlinkSync('kept.txt', path.join(src, n));
  }
  fs.rmSync(path.join(src, 'link-to-file'));
  fs.writeFileSync(path.join(src, 'link-to-file'), 'a file now\n');
  fs.rmSync(path.join(src, 'retargeted'));
  fs.symlinkSync('edited.txt', path.join(src, 'retargeted'));
  fs.utimesSync(path.join(src, 'link-to-file'), past, past);
  await cycle();
  // The dry run says the same as the run.
  const said = new Map<string, string>();
  await runRestore({
    dest,
    vpaths: [],
    diskPath: d1,
    dataDir: home,
    catalogue: 'home',
    dryRun: true,
    onDryRun: (e) => said.set(e.path, e.action),
  });
  assert.deepEqual(Object.fromEntries([...said].sort()), {
    '/data/edited-to-link.txt': 'exists',
    '/data/edited.txt': 'exists',
    '/data/kept.txt': 'overwrite',
    '/data/link-to-file': 'overwrite',
    '/data/retargeted': 'overwrite',
    '/data/to-link.txt': 'overwrite',
  });
  const doc = await restore();
  const out = (n: string): string => path.join(dest, 'data', n);
  assert.equal(fs.readFileSync(out('link-to-file'), 'utf8'), 'a file now\n');
  assert.equal(fs.readlinkSync(out('retargeted')), 'edited.txt', 'a link with a new target is brought up to date');
  assert.equal(fs.readFileSync(out('kept.txt'), 'utf8'), 'version 2 of kept.txt\n');
  assert.equal(fs.readlinkSync(out('to-link.txt')), 'kept.txt');
  for (const n of ['edited.txt', 'edited-to-link.txt']) {
    assert.ok(fs.lstatSync(out(n)).isFile(), n);
    assert.equal(fs.readFileSync(out(n), 'utf8'), 'my own edit\n', n);
  }
  assert.deepEqual(doc.existing.map((e) => e.path).sort(), ['/data/edited-to-link.txt', '/data/edited.txt']);
  cat.close();
});

test("a folder that is the restore state folder under another name (a bind mount here, FAT's DISTBA~1 alias there) is never written into", async (t) => {
  const { spawnSync } = await import('node:child_process');
  if (process.getuid?.() !== 0) return t.skip('bind mounts need root');
  const base = tempDir(t);
  const src = path.join(base, 'src');
  const home = path.join(base, 'home');
  fs.mkdirSync(src);
  fs.writeFileSync(path.join(src, 'restored-000999.log'), 'forged\n');
  const cat = openCatalog(home);
  const c = catalogueSource(cat, '/alias', src);
  const d1 = path.join(base, 'd1');
  addPoolDisk(cat, 'd1', d1);
  putObjects(cat, c, 'd1');
  cat.close();
  const dest = path.join(base, 'out');
  const state = path.join(dest, '.distbackup-restore');
  const alias = path.join(dest, 'alias');
  fs.mkdirSync(state, { recursive: true, mode: 0o700 });
  fs.mkdirSync(alias);
  if (spawnSync('mount', ['--bind', state, alias]).status !== 0) return t.skip('mount --bind failed');
  let doc: Awaited<ReturnType<typeof runRestore>>;
  try {
    doc = await runRestore({ dest, vpaths: [], diskPath: d1, dataDir: home, catalogue: 'home' });
  } finally {
    // Before the temp folder goes (its removal would meet the mount).
    spawnSync('umount', [alias]);
  }
  assert.deepEqual(
    doc.refused.map((r) => r.path),
    ['/alias/restored-000999.log'],
  );
  assert.match(doc.refused[0]?.error ?? '', /restore state's folder under another name/);
  assert.ok(!fs.readdirSync(state).includes('restored-000999.log'), 'nothing written into the state folder');
});

test('with no home catalogue, a disk whose catalogue copy is older never puts older versions back: the newest copy seen is used', async (t) => {
  // x changes and y is added; only disk a is synced after that: b's copy is the older one.
  const { base, home, a, b } = await aAheadOfB(t, { 'y.txt': 'new' });
  fs.renameSync(home, `${home}.away`);
  const dest = path.join(base, 'out');
  const first = await runRestore({ dest, vpaths: [], diskPath: a, dataDir: home, catalogue: 'auto' });
  assert.equal(first.remaining, 0, JSON.stringify(first));
  assert.equal(fs.readFileSync(path.join(dest, 'data/x.txt'), 'utf8'), 'version 2, longer');
  const second = await runRestore({ dest, vpaths: [], diskPath: b, dataDir: home, catalogue: 'auto' });
  assert.equal(fs.readFileSync(path.join(dest, 'data/x.txt'), 'utf8'), 'version 2, longer', 'never rolled back');
  assert.equal(fs.readFileSync(path.join(dest, 'data/y.txt'), 'utf8'), 'new');
  assert.equal(second.remaining, 0);
  assert.ok(second.warnings.some((w) => /this disk's catalogue copy is older than the one an earlier run/.test(w)));
});

test("an object on the disk that the disk's catalogue copy lists on no disk (a copy written before the sync that copied it) is restored", async (t) => {
  const { writeDiskCatalogue } = await import('../../src/disks/disk-catalogue.js');
  const { base, src, home, cat, later } = await oneFileWorld(t, 'old.txt', 'backed up long ago');
  const d = path.join(base, 'd');
  addPoolDisk(cat, 'd', d);
  await runSync(cat, { name: 'd' });
  // A new file, catalogued: a copy written now (as a long sync writes one every few minutes)
  // lists it on no disk; then the sync copies it and dies before writing the copy again.
  fs.writeFileSync(path.join(src, 'new.txt'), 'copied in the last sync');
  await runUpdate(cat, later);
  writeDiskCatalogue(cat, d);
  const early = fs.readFileSync(path.join(d, DISK_CATALOGUE));
  await runSync(cat, { name: 'd' });
  cat.close();
  fs.chmodSync(path.join(d, DISK_CATALOGUE), 0o600);
  fs.writeFileSync(path.join(d, DISK_CATALOGUE), early);
  fs.renameSync(home, `${home}.away`);
  const dest = path.join(base, 'out');
  const doc = await runRestore({ dest, vpaths: [], diskPath: d, dataDir: home, catalogue: 'auto' });
  assert.equal(doc.remaining, 0, JSON.stringify(doc));
  assert.equal(fs.readFileSync(path.join(dest, 'data', 'new.txt'), 'utf8'), 'copied in the last sync');
});

test('the newer catalogue copy is told by its disks generations, not by sync times (a clock that was ahead on the home machine)', async (t) => {
  const { base, home, a, b } = await aAheadOfB(t, { 'y.txt': 'new' });
  // b's copy, the older one, says a sync happened far in the future (the clock was ahead then).
  editDiskCopy(b, (bc) => bc.prepare('UPDATE disks SET last_sync_ms = ?').run(Date.UTC(2040, 0, 1)));
  fs.renameSync(home, `${home}.away`);
  const dest = path.join(base, 'out');
  await runRestore({ dest, vpaths: [], diskPath: b, dataDir: home, catalogue: 'auto' });
  assert.equal(fs.readFileSync(path.join(dest, 'data/x.txt'), 'utf8'), 'version 1');
  const second = await runRestore({ dest, vpaths: [], diskPath: a, dataDir: home, catalogue: 'auto' });
  assert.equal(second.remaining, 0, JSON.stringify(second));
  assert.equal(fs.readFileSync(path.join(dest, 'data/x.txt'), 'utf8'), 'version 2, longer', "a's newer copy is used");
  assert.equal(fs.readFileSync(path.join(dest, 'data/y.txt'), 'utf8'), 'new');
});

test("a disk's catalogue copy whose generation of a disk is not a number does not pass for as new as the kept one", async (t) => {
  const { base, home, a, b } = await aAheadOfB(t);
  // b's copy, the older one, crafted: its disks table no longer STRICT, its generation of a text.
  editDiskCopy(b, (bc) => {
    bc.pragma('foreign_keys = OFF');
    bc.exec('CREATE TABLE loose AS SELECT * FROM disks; DROP TABLE disks; ALTER TABLE loose RENAME TO disks');
    bc.prepare("UPDATE disks SET generation = 'x' WHERE name = 'a'").run();
  });
  fs.renameSync(home, `${home}.away`);
  const dest = path.join(base, 'out');
  await runRestore({ dest, vpaths: [], diskPath: a, dataDir: home, catalogue: 'auto' });
  await runRestore({ dest, vpaths: [], diskPath: b, dataDir: home, catalogue: 'auto' });
  assert.equal(fs.readFileSync(path.join(dest, 'data/x.txt'), 'utf8'), 'version 2, longer');
});

test('a disk removed from the pool between two catalogue copies does not make the older copy win', async (t) => {
  const { dropDisk, removeDisk } = await import('../../src/disks/disks.js');
  const { base, src, home, cat, later } = await oneFileWorld(t, 'x.txt', 'version 1');
  const [a, b, c] = ['a', 'b', 'c'].map((n) => path.join(base, n)) as [string, string, string];
  addPoolDisk(cat, 'a', a);
  addPoolDisk(cat, 'b', b);
  addPoolDisk(cat, 'c', c);
  await runSync(cat, { name: 'a' });
  await runSync(cat, { name: 'b' });
  await runSync(cat, { name: 'c' });
  // c is lost and forgotten; then x changes and only a is synced: a's copy is the newer, and
  // does not know c; b's, older, does.
  dropDisk(cat, 'c');
  removeDisk(cat, 'c');
  fs.writeFileSync(path.join(src, 'x.txt'), 'version 2, longer');
  await runUpdate(cat, later);
  await runSync(cat, { name: 'a' });
  cat.close();
  fs.renameSync(home, `${home}.away`);
  const dest = path.join(base, 'out');
  await runRestore({ dest, vpaths: [], diskPath: a, dataDir: home, catalogue: 'auto' });
  await runRestore({ dest, vpaths: [], diskPath: b, dataDir: home, catalogue: 'auto' });
  assert.equal(fs.readFileSync(path.join(dest, 'data/x.txt'), 'utf8'), 'version 2, longer');
});

test("a dead disk replaced by a new one: the new disk's newer catalogue copy wins over an older disk's", async (t) => {
  const { dropDisk, removeDisk } = await import('../../src/disks/disks.js');
  const { base, src, home, cat, later } = await oneFileWorld(t, 'x.txt', 'version 1');
  const [a, b, c] = ['a', 'b', 'c'].map((n) => path.join(base, n)) as [string, string, string];
  addPoolDisk(cat, 'a', a);
  addPoolDisk(cat, 'b', b);
  await runSync(cat, { name: 'a' });
  await runSync(cat, { name: 'b' });
  // b dies and is forgotten; c takes its place, synced right after x changed.
  dropDisk(cat, 'b');
  removeDisk(cat, 'b');
  fs.writeFileSync(path.join(src, 'x.txt'), 'version 2, longer');
  await runUpdate(cat, later);
  addPoolDisk(cat, 'c', c);
  await runSync(cat, { name: 'c' });
  cat.close();
  fs.renameSync(home, `${home}.away`);
  const dest = path.join(base, 'out');
  await runRestore({ dest, vpaths: [], diskPath: c, dataDir: home, catalogue: 'auto' });
  await runRestore({ dest, vpaths: [], diskPath: a, dataDir: home, catalogue: 'auto' });
  assert.equal(fs.readFileSync(path.join(dest, 'data/x.txt'), 'utf8'), 'version 2, longer');
});

test('a disk removed from the pool but still readable can be restored from after a newer copy was kept, and puts no older version back', async (t) => {
  const { dropDisk, removeDisk } = await import('../../src/disks/disks.js');
  const { base, src, home, cat, later } = await oneFileWorld(t, 'x.txt', 'version 1');
  fs.writeFileSync(path.join(src, 'gone.txt'), 'deleted since');
  fs.symlinkSync('x.txt', path.join(src, 'l'));
  fs.mkdirSync(path.join(src, 'sub'), { mode: 0o755 });
  fs.writeFileSync(path.join(src, 'sub', 'z.txt'), 'zulu');
  await runUpdate(cat, later);
  const [a, b] = ['a', 'b'].map((n) => path.join(base, n)) as [string, string];
  addPoolDisk(cat, 'b', b);
  await runSync(cat, { name: 'b' });
  dropDisk(cat, 'b');
  removeDisk(cat, 'b');
  // Since b's copy: x and the link changed, gone.txt was deleted, y.txt is new.
  fs.writeFileSync(path.join(src, 'x.txt'), 'version 2, longer');
  fs.rmSync(path.join(src, 'l'));
  fs.symlinkSync('y.txt', path.join(src, 'l'));
  fs.rmSync(path.join(src, 'gone.txt'));
  fs.writeFileSync(path.join(src, 'y.txt'), 'on the new disk');
  fs.chmodSync(path.join(src, 'sub'), 0o700);
  await runUpdate(cat, { now: () => Date.now() + 20_000 });
  addPoolDisk(cat, 'a', a);
  await runSync(cat, { name: 'a' });
  cat.close();
  fs.renameSync(home, `${home}.away`);
  const dest = path.join(base, 'out');
  await runRestore({ dest, vpaths: [], diskPath: a, dataDir: home, catalogue: 'auto' });
  const entries: { path: string; action: string }[] = [];
  const dry = await runRestore({
    dest,
    vpaths: [],
    diskPath: b,
    dataDir: home,
    catalogue: 'auto',
    dryRun: true,
    onDryRun: (e) => entries.push({ path: e.path, action: e.action }),
  });
  assert.deepEqual(entries, [{ path: '/data/gone.txt', action: 'restore' }], JSON.stringify(dry));
  const old = await runRestore({ dest, vpaths: [], diskPath: b, dataDir: home, catalogue: 'auto' });
  assert.equal(old.disk, 'b');
  assert.equal(old.errors.length + old.existing.length, 0, JSON.stringify(old));
  assert.ok(
    old.warnings.some((w) => w.includes('removed from the pool')),
    JSON.stringify(old.warnings),
  );
  assert.equal(
    fs.readFileSync(path.join(dest, 'data/x.txt'), 'utf8'),
    'version 2, longer',
    'no older version put back',
  );
  assert.equal(fs.readlinkSync(path.join(dest, 'data/l')), 'y.txt');
  assert.equal(fs.readFileSync(path.join(dest, 'data/y.txt'), 'utf8'), 'on the new disk');
  // What only b's copy lists is added (a restore never deletes).
  assert.equal(fs.readFileSync(path.join(dest, 'data/gone.txt'), 'utf8'), 'deleted since');
  assert.equal(fs.statSync(path.join(dest, 'data/sub')).mode & 0o777, 0o700, "a folder keeps the newer copy's mode");
  // Nothing is left to restore, and the plan says so: the kept files are not missing.
  assert.equal(old.remaining, 0, JSON.stringify(old));
  const plan = await runRestore({ dest, vpaths: [], diskPath: b, dataDir: home, catalogue: 'auto', planOnly: true });
  assert.equal(plan.remaining, 0, JSON.stringify(plan));
  assert.deepEqual(plan.plan, []);
});
