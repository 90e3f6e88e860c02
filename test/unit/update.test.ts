/**
 * Change detection of `update`, in process (hashing on the test's thread, `jobs: 0`), on real
 * temp trees and a real catalogue.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { type TestContext, test } from 'node:test';
import { type Catalog, openCatalog } from '../../src/catalog/db.js';
import { FilesWriter } from '../../src/catalog/files.js';
import { acquireLock } from '../../src/catalog/lock.js';
import { RefusedError } from '../../src/core/errors.js';
import { setPathSettings } from '../../src/sources/settings.js';
import { mapSource } from '../../src/sources/sources.js';
import { runUpdate, type UpdateOptions } from '../../src/update/update.js';
import { ageTree, PAST, tempDir, writeTree } from '../helpers/tmp.js';

const sha = (s: string | Buffer): string => createHash('sha256').update(s).digest('hex');

interface Env {
  root: string;
  cat: Catalog;
  update(opts?: UpdateOptions): ReturnType<typeof runUpdate>;
  /** vpath → hash (null when unhashed / not a file) */
  rows(): Map<string, string | null>;
  objects(): string[];
}

/**
 * Wait (no timer: a condition on the file system) until the kernel's coarse timestamp clock has
 * moved past the ctime `p` has now, so that the next change of `p` gets a different ctime.
 */
function nextCtimeTick(p: string): void {
  const c0 = fs.statSync(p, { bigint: true }).ctimeNs;
  const mode = fs.statSync(p).mode & 0o7777;
  while (fs.statSync(p, { bigint: true }).ctimeNs === c0) fs.chmodSync(p, mode);
}

function setup(t: TestContext, files: Record<string, string>, opts: { exclude?: string[] } = {}): Env {
  const base = tempDir(t);
  const root = path.join(base, 'src');
  fs.mkdirSync(root);
  writeTree(root, files);
  ageTree(root);
  const cat = openCatalog(path.join(base, 'data'));
  t.after(() => cat.close());
  mapSource(cat, '/v', root, opts.exclude === undefined ? {} : { exclude: opts.exclude });
  return {
    root,
    cat,
    // The clock says the scan runs 10 s after the files were written (clear of the racy window).
    update: (o = {}) => runUpdate(cat, { jobs: 0, now: () => Date.now() + 10_000, ...o }),
    rows: () => {
      const m = new Map<string, string | null>();
      for (const r of cat.db
        .prepare('SELECT f.vpath, o.hash FROM files f LEFT JOIN objects o ON o.id = f.object_id ORDER BY f.vpath')
        .all() as { vpath: Buffer; hash: string | null }[]) {
        m.set(r.vpath.toString(), r.hash);
      }
      return m;
    },
    objects: () => cat.db.prepare('SELECT hash FROM objects ORDER BY hash').pluck().all() as string[],
  };
}

test('a second run over an unchanged tree reads nothing and writes nothing', async (t) => {
  const env = setup(t, { a: 'alpha', 'd/b': 'beta', 'd/c': 'alpha' });
  const first = await env.update();
  assert.deepEqual(
    { s: first.scanned, n: first.new, c: first.changed, r: first.removed, u: first.unchanged, e: first.errors },
    { s: 4, n: 4, c: 0, r: 0, u: 0, e: [] },
  );
  assert.equal(first.bytesHashed, 14);
  assert.deepEqual(env.objects(), [sha('alpha'), sha('beta')].sort());
  const changesBefore = env.cat.db.prepare('SELECT total_changes()').pluck().get() as number;
  const second = await env.update();
  assert.deepEqual(
    { n: second.new, c: second.changed, r: second.removed, u: second.unchanged, b: second.bytesHashed },
    { n: 0, c: 0, r: 0, u: 4, b: 0 },
  );
  // The run that finds a folder as catalogued stores its signature (update/dir-sig.ts): one
  // row per folder (/v and /v/d), no file row.
  const changesAfter = env.cat.db.prepare('SELECT total_changes()').pluck().get() as number;
  assert.equal(changesAfter - changesBefore, 2, 'no file row written');
  const third = await env.update();
  assert.equal(third.unchanged, 4);
  const changesThird = env.cat.db.prepare('SELECT total_changes()').pluck().get() as number;
  assert.equal(changesThird, changesAfter, 'nothing written');
  assert.equal(env.cat.db.pragma('synchronous', { simple: true }), 2, 'synchronous=FULL again for sync');
});

test('same size, mtime put back, new bytes: the ctime change makes it hashed again', async (t) => {
  const env = setup(t, { f: 'one!' });
  await env.update();
  const p = path.join(env.root, 'f');
  nextCtimeTick(p);
  fs.writeFileSync(p, 'two!');
  fs.utimesSync(p, PAST, PAST);
  const r = await env.update();
  assert.deepEqual({ c: r.changed, b: r.bytesHashed, u: r.unchanged }, { c: 1, b: 4, u: 0 });
  assert.equal(env.rows().get('/v/f'), sha('two!'));
  assert.deepEqual(env.objects(), [sha('two!')], 'the old object had no copies: forgotten');
  assert.equal(r.objectsForgotten, 1);
});

test('size and mtime changes are detected', async (t) => {
  const env = setup(t, { a: 'short', b: 'same' });
  await env.update();
  fs.writeFileSync(path.join(env.root, 'a'), 'much longer');
  fs.utimesSync(path.join(env.root, 'a'), PAST, PAST);
  fs.utimesSync(path.join(env.root, 'b'), PAST, new Date('2022-01-01T00:00:00Z'));
  const r = await env.update();
  assert.equal(r.bytesHashed, 'much longer'.length + 'same'.length);
  assert.equal(r.changed, 1, 'b was read again and found the same: unchanged');
  assert.equal(r.unchanged, 1 + 0);
});

test('a renamed file is read again (a rename moves its ctime), whichever folder is scanned first', async (t) => {
  const env = setup(t, { 'a/early': 'moved down', 'z/late': 'moved up' });
  await env.update();
  fs.renameSync(path.join(env.root, 'a/early'), path.join(env.root, 'z/early'));
  fs.renameSync(path.join(env.root, 'z/late'), path.join(env.root, 'a/late'));
  const r = await env.update();
  assert.equal(r.bytesHashed, 'moved down'.length + 'moved up'.length);
  assert.equal(r.new, 2);
  assert.equal(r.removed, 2);
  assert.equal(env.rows().get('/v/z/early'), sha('moved down'));
  assert.equal(env.rows().get('/v/a/late'), sha('moved up'));
  assert.equal(env.rows().has('/v/a/early'), false);
});

test('a file rewritten in place with its mtime put back, then moved, gets the hash of its new bytes', async (t) => {
  const env = setup(t, { 'in/song': 'tag v1 + audio' });
  ageTree(env.root);
  await env.update();
  const p = path.join(env.root, 'in/song');
  const before = fs.statSync(p);
  // A tagger: the same size, written in place, its times put back; then the file is moved.
  fs.writeFileSync(p, 'tag v2 + audio', { flag: 'r+' });
  fs.utimesSync(p, before.atime, before.mtime);
  fs.mkdirSync(path.join(env.root, 'out'));
  fs.renameSync(p, path.join(env.root, 'out/song'));
  const r = await env.update();
  assert.equal(r.bytesHashed, 'tag v2 + audio'.length);
  assert.equal(env.rows().get('/v/out/song'), sha('tag v2 + audio'));
});

test('a lone file never takes the hash of another row with its inode, size and times (inode numbers handed out anew, as on exfat)', async (t) => {
  const env = setup(t, { p: 'content of p', q: 'content of q' });
  await env.update();
  fs.renameSync(path.join(env.root, 'p'), path.join(env.root, 'p2'));
  // q's row now says what p2's stat says: the state a remount of an exfat source can leave,
  // where inode numbers are new and the ctime is a copy of the mtime.
  const st = fs.statSync(path.join(env.root, 'p2'), { bigint: true });
  env.cat.db
    .prepare('UPDATE files SET dev = ?, ino = ?, mtime_ns = ?, ctime_ns = ? WHERE vpath = ?')
    .run(BigInt.asIntN(64, st.dev), BigInt.asIntN(64, st.ino), st.mtimeNs, st.ctimeNs, Buffer.from('/v/q'));
  await env.update();
  assert.equal(env.rows().get('/v/p2'), sha('content of p'));
  assert.equal(env.rows().get('/v/q'), sha('content of q'));
});

test('hard links: one object, read once, every path recorded', async (t) => {
  const env = setup(t, { a: 'linked content' });
  fs.linkSync(path.join(env.root, 'a'), path.join(env.root, 'b'));
  fs.mkdirSync(path.join(env.root, 'sub'));
  fs.linkSync(path.join(env.root, 'a'), path.join(env.root, 'sub', 'c'));
  ageTree(env.root);
  const r = await env.update();
  assert.equal(r.bytesHashed, 'linked content'.length);
  const rows = env.rows();
  for (const p of ['/v/a', '/v/b', '/v/sub/c']) assert.equal(rows.get(p), sha('linked content'), p);
  assert.equal(env.objects().length, 1);
});

test('racy rule: a file modified within the timestamp granularity of the scan is read again next time', async (t) => {
  const env = setup(t, { fresh: 'just written', old: 'old' });
  // The test clock puts the scan start 10 s from now: an mtime a minute ahead is at or after it
  // (a write during the scan, or a clock that disagrees).
  const ahead = new Date(Date.now() + 60_000);
  fs.utimesSync(path.join(env.root, 'fresh'), ahead, ahead);
  const first = await env.update();
  assert.equal(first.new, 2);
  const ctime = env.cat.db.prepare(`SELECT ctime_ns FROM files WHERE vpath = ?`).safeIntegers().pluck();
  assert.equal(ctime.get(Buffer.from('/v/fresh')), 0n, 'stored racily clean');
  assert.notEqual(ctime.get(Buffer.from('/v/old')), 0n);
  const second = await env.update();
  assert.equal(second.bytesHashed, 'just written'.length, 'the racy file is read again');
  assert.equal(second.unchanged, 2, 'and found the same');
});

test('removed files and folders go, below folders that were read', async (t) => {
  const env = setup(t, { keep: 'k', gone: 'g', 'dir/x': 'x', 'dir/sub/y': 'y' });
  await env.update();
  fs.rmSync(path.join(env.root, 'gone'));
  fs.rmSync(path.join(env.root, 'dir'), { recursive: true });
  const r = await env.update();
  assert.equal(r.removed, 5, 'gone, dir, dir/x, dir/sub, dir/sub/y');
  assert.deepEqual([...env.rows().keys()], ['/v/keep']);
  assert.deepEqual(env.objects(), [sha('k')]);
});

test('a folder replaced by a file, and a file by a symlink', async (t) => {
  const env = setup(t, { 'x/inner': 'i', y: 'file' });
  await env.update();
  fs.rmSync(path.join(env.root, 'x'), { recursive: true });
  fs.writeFileSync(path.join(env.root, 'x'), 'now a file');
  fs.rmSync(path.join(env.root, 'y'));
  fs.symlinkSync('x', path.join(env.root, 'y'));
  const r = await env.update();
  assert.equal(r.removed, 1, 'x/inner');
  assert.equal(r.changed, 2);
  const kinds = env.cat.db
    .prepare('SELECT vpath, kind, link_target FROM files ORDER BY vpath')
    .all()
    .map((row) => {
      const x = row as { vpath: Buffer; kind: number; link_target: Buffer | null };
      return `${x.vpath.toString()} ${x.kind} ${x.link_target?.toString() ?? ''}`;
    });
  assert.deepEqual(kinds, ['/v/x 0 ', '/v/y 2 x']);
});

test('objects still held by a disk stay when no file references them any more', async (t) => {
  const env = setup(t, { held: 'on a disk', loose: 'nowhere' });
  await env.update();
  env.cat.db
    .prepare(`INSERT INTO disks (uuid, name, size, created) VALUES ('u-1', 'd1', 1000000, '2024-01-01T00:00:00Z')`)
    .run();
  env.cat.db
    .prepare(`INSERT INTO copies (object_id, disk_id) SELECT id, (SELECT id FROM disks) FROM objects WHERE hash = ?`)
    .run(sha('on a disk'));
  fs.rmSync(path.join(env.root, 'held'));
  fs.rmSync(path.join(env.root, 'loose'));
  fs.writeFileSync(path.join(env.root, 'other'), 'x');
  const r = await env.update();
  assert.equal(r.objectsForgotten, 1);
  assert.deepEqual(env.objects(), [sha('on a disk'), sha('x')].sort());
});

test('a source unmounted after the run began, before its turn, is skipped with its rows kept', async (t) => {
  const env = setup(t, { a: 'a', b: 'b' });
  const second = path.join(path.dirname(env.root), 'second');
  writeTree(second, { x: 'x', 'd/y': 'y' });
  ageTree(second);
  mapSource(env.cat, '/w', second);
  await env.update();
  const before = env.rows();
  assert.equal(before.get('/w/d/y'), sha('y'));
  // The second source's disk goes while the first is scanned: an empty mount point is left.
  let pulled = false;
  const progress = {
    setTotals: () => {},
    note: () => {},
    stop: () => {},
    update: () => {
      if (pulled) return;
      pulled = true;
      fs.renameSync(second, `${second}.away`);
      fs.mkdirSync(second);
    },
  };
  const r = await env.update({ progress });
  assert.ok(pulled);
  assert.equal(r.removed, 0);
  assert.ok(r.errors.some((e) => /source \/w is empty since the run began; not scanned, its files kept/.test(e.error)));
  assert.deepEqual(env.rows(), before);
});

test("a folder's own follow setting (source set --follow / --nofollow) decides whether its links are followed", async (t) => {
  const env = setup(t, { 'plain/keep': 'k' });
  const outside = path.join(path.dirname(env.root), 'outside.txt');
  fs.writeFileSync(outside, 'behind the link');
  fs.mkdirSync(path.join(env.root, 'linked'));
  fs.symlinkSync(outside, path.join(env.root, 'linked/l'));
  fs.symlinkSync(outside, path.join(env.root, 'plain/l'));
  ageTree(env.root);
  setPathSettings(env.cat, ['/v/linked'], { follow_symlinks: true });
  await env.update();
  const kind = env.cat.db.prepare('SELECT kind FROM files WHERE vpath = ?').pluck();
  assert.equal(kind.get(Buffer.from('/v/linked/l')), 0, 'followed: the file behind it');
  assert.equal(env.rows().get('/v/linked/l'), sha('behind the link'));
  assert.equal(kind.get(Buffer.from('/v/plain/l')), 2, 'not followed: a link');
  // And back: --nofollow records it as the link it is.
  setPathSettings(env.cat, ['/v/linked'], { follow_symlinks: false });
  await env.update();
  assert.equal(kind.get(Buffer.from('/v/linked/l')), 2);
});

test('a mount point inside a source whose disk is not mounted any more keeps its files; removed, they go', async (t) => {
  const env = setup(t, { top: 't' });
  const mnt = path.join(env.root, 'mnt');
  fs.mkdirSync(mnt);
  const m = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', mnt], { encoding: 'utf8' });
  if (m.status !== 0) {
    t.skip(`SKIPPED: a mount inside a source (mount failed: ${m.stderr.trim() || `exit ${m.status}`})`);
    return;
  }
  try {
    writeTree(mnt, { 'photo.jpg': 'pixels', 'sub/raw.nef': 'raw' });
    ageTree(env.root);
    await env.update();
    assert.equal(env.rows().get('/v/mnt/sub/raw.nef'), sha('raw'));
  } finally {
    if (spawnSync('umount', [mnt]).status !== 0) spawnSync('umount', ['-l', mnt]);
  }
  // Unmounted: an empty folder on the source's own device is left.
  const before = env.rows();
  const r = await env.update();
  assert.equal(r.removed, 0);
  assert.ok(r.errors.some((e) => /on another device than when it was catalogued, and most of its files/.test(e.error)));
  assert.deepEqual(env.rows(), before);
  // A stray file written into the mount point meanwhile changes nothing of that.
  fs.writeFileSync(path.join(mnt, 'stray.txt'), 'written while unmounted');
  const stray = await env.update();
  assert.equal(stray.removed, 0);
  assert.equal(env.rows().get('/v/mnt/sub/raw.nef'), sha('raw'));
  fs.rmSync(path.join(mnt, 'stray.txt'));
  // The folder removed: its files are gone for good.
  fs.rmdirSync(mnt);
  const gone = await env.update();
  assert.equal(gone.removed, 4, 'mnt, mnt/photo.jpg, mnt/sub, mnt/sub/raw.nef');
});

test('a mapping whose root is gone, or empty, is refused and nothing is removed', async (t) => {
  const env = setup(t, { a: 'a', 'd/b': 'b' });
  await env.update();
  const before = env.rows();
  const moved = `${env.root}.away`;
  fs.renameSync(env.root, moved);
  await assert.rejects(env.update(), (err: unknown) => {
    assert.ok(err instanceof RefusedError);
    assert.equal(err.exitCode, 2);
    assert.match(err.message, /\/v -> .*src is missing/);
    return true;
  });
  assert.deepEqual(env.rows(), before);
  fs.mkdirSync(env.root);
  await assert.rejects(env.update(), /src is empty/);
  assert.deepEqual(env.rows(), before);
  fs.rmdirSync(env.root);
  fs.renameSync(moved, env.root);
  const r = await env.update();
  assert.equal(r.unchanged, 3);
});

test('a missing root with nothing catalogued is an error, not a refusal', async (t) => {
  const env = setup(t, {});
  fs.rmdirSync(env.root);
  const r = await env.update();
  assert.equal(r.errors.length, 1);
  assert.match(r.errors[0]?.error ?? '', /source \/v is missing/);
});

test('a second process is refused while the catalogue lock is held', async (t) => {
  const env = setup(t, { a: 'a' });
  const lock = acquireLock(path.join(env.cat.dataDir, 'lock'), 'the catalogue');
  try {
    await assert.rejects(env.update(), (err: unknown) => err instanceof RefusedError && /in use/.test(err.message));
  } finally {
    lock.release();
  }
});

test('an exclude added later removes what it now excludes', async (t) => {
  const env = setup(t, { 'a.jpg': 'j', 'b.part': 'p', 'cache/x': 'x' });
  await env.update();
  env.cat.db.prepare(`UPDATE sources SET exclude_json = ?`).run(JSON.stringify(['*.part', 'cache/**']));
  const r = await env.update();
  assert.equal(r.removed, 3);
  assert.deepEqual([...env.rows().keys()], ['/v/a.jpg']);
});

test('nested mappings: each path belongs to exactly one source', async (t) => {
  const env = setup(t, { top: 't', 'stream/in': 'i' });
  await env.update();
  mapSource(env.cat, '/v/stream', path.join(env.root, 'stream'));
  const r = await env.update();
  assert.equal(r.errors.length, 0);
  const owners = env.cat.db
    .prepare('SELECT f.vpath, s.vpath AS src FROM files f JOIN sources s ON s.id = f.source_id ORDER BY f.vpath')
    .all()
    .map((row) => {
      const x = row as { vpath: Buffer; src: string };
      return `${x.vpath.toString()} ${x.src}`;
    });
  assert.deepEqual(owners, ['/v/stream/in /v/stream', '/v/top /v']);
});

test('the copy target of a file is its source min_copies', async (t) => {
  const env = setup(t, {});
  const other = path.join(path.dirname(env.root), 'two');
  writeTree(other, { f: 'x' });
  mapSource(env.cat, '/two', other, { minCopies: 2 });
  await env.update();
  const row = env.cat.db
    .prepare(`SELECT priority, min_copies, max_copies FROM files WHERE vpath = ?`)
    .get(Buffer.from('/two/f'));
  assert.deepEqual(row, { priority: 1, min_copies: 2, max_copies: 1_000_000 });
});

test('an aborted run keeps what it hashed; folders not reached keep their rows', async (t) => {
  const files: Record<string, string> = { 'zz/gone': 'will be deleted' };
  for (let i = 0; i < 300; i++) files[`d${i % 10}/f${i}`] = `content ${i}`;
  const env = setup(t, files);
  await env.update();
  fs.rmSync(path.join(env.root, 'zz/gone'));
  for (let i = 0; i < 300; i++) fs.writeFileSync(path.join(env.root, `d${i % 10}/f${i}`), `changed ${i}!`);
  const ac = new AbortController();
  const progress = {
    // Abort as soon as the first hashes are in.
    update: (doneBytes: number) => {
      if (doneBytes > 0) ac.abort();
    },
    setTotals: () => {},
    note: () => {},
    stop: () => {},
  };
  const stopped = await env.update({ signal: ac.signal, progress });
  assert.equal(stopped.interrupted, true);
  assert.ok(env.rows().has('/v/zz/gone'), 'a folder not reached keeps its rows');
  const rows = env.rows();
  const done = Array.from({ length: 300 }, (_, i) => i).filter(
    (i) => rows.get(`/v/d${i % 10}/f${i}`) === sha(`changed ${i}!`),
  ).length;
  assert.ok(done > 0 && done < 300, `${done} of 300 hashed before the abort`);
  assert.equal(env.cat.db.pragma('integrity_check', { simple: true }), 'ok');
  const r = await env.update();
  assert.equal(r.removed, 1);
  const rest = Array.from({ length: 300 }, (_, i) => i).filter(
    (i) => rows.get(`/v/d${i % 10}/f${i}`) !== sha(`changed ${i}!`),
  );
  assert.equal(
    r.bytesHashed,
    rest.reduce((n, i) => n + `changed ${i}!`.length, 0),
    'the second run reads only the rest',
  );
  for (let i = 0; i < 300; i++) assert.equal(env.rows().get(`/v/d${i % 10}/f${i}`), sha(`changed ${i}!`));
});

test('the writer commits by rows and by age (injected clock), and a commit is durable in another connection', (t) => {
  const base = tempDir(t);
  const cat = openCatalog(path.join(base, 'data'));
  t.after(() => cat.close());
  let now = 0;
  const w = new FilesWriter(cat.db, { commitRows: 3, commitMs: 2000, now: () => now });
  const ids = ['a', 'b', 'c', 'd'].map((h) => w.object(h.repeat(64), 1));
  assert.equal(w.commits, 1, 'three rows: one commit');
  const reader = openCatalog(path.join(base, 'data'), { readonly: true });
  t.after(() => reader.close());
  const seen = (): number => reader.db.prepare('SELECT count(*) FROM objects').pluck().get() as number;
  assert.equal(seen(), 3, 'the fourth row is not committed yet');
  w.maybeCommit();
  assert.equal(w.commits, 1, 'young and small: no commit');
  now = 2000;
  w.maybeCommit();
  assert.equal(w.commits, 2, 'two seconds old: committed');
  assert.equal(seen(), 4);
  assert.equal(new Set(ids).size, 4);
  assert.equal(w.object('a'.repeat(64), 1), ids[0], 'an object is found by hash, not inserted twice');
  w.close();
});

test('path rules plug into the scan: a .distbackup.skip folder is left out, a .meta-inf hash is trusted', async (t) => {
  const trusted = sha('what the sidecar says');
  const env = setup(t, {
    'keep/a': 'a',
    'skipped/.distbackup.skip': '',
    'skipped/b': 'b',
    'big.iso': 'pretend this is 4 GB',
    'big.iso.meta-inf': JSON.stringify({ hash: trusted, priority: 3 }),
  });
  const r = await env.update();
  assert.deepEqual(r.errors, []);
  const rows = env.rows();
  assert.equal(rows.has('/v/skipped'), false);
  assert.equal(rows.has('/v/skipped/b'), false);
  assert.equal(rows.has('/v/big.iso.meta-inf'), false, 'sidecars are never backed up');
  assert.equal(rows.get('/v/big.iso'), trusted, 'the sidecar hash is recorded');
  assert.equal(r.bytesHashed, 1, 'only keep/a was read');
  const priority = env.cat.db
    .prepare(`SELECT priority FROM files WHERE vpath = ?`)
    .pluck()
    .get(Buffer.from('/v/big.iso'));
  assert.equal(priority, 3);
});

test('a dry run on a read-only catalogue counts what would change, and reads and writes nothing', async (t) => {
  const env = setup(t, { keep: 'k', change: 'c1', gone: 'g', 'dir/x': 'x', 'dir/sub/y': 'y' });
  await env.update();
  fs.writeFileSync(path.join(env.root, 'change'), 'changed content');
  fs.writeFileSync(path.join(env.root, 'new'), 'new!');
  fs.rmSync(path.join(env.root, 'gone'));
  fs.rmSync(path.join(env.root, 'dir'), { recursive: true });
  const before = env.rows();
  // Read-only: any write through it would throw SQLITE_READONLY. A dry run takes no lock either.
  const ro = openCatalog(env.cat.dataDir, { mode: 'read-only' });
  t.after(() => ro.close());
  const lock = acquireLock(path.join(env.cat.dataDir, 'lock'), 'the catalogue');
  let dry: Awaited<ReturnType<typeof runUpdate>>;
  try {
    dry = await runUpdate(ro, { jobs: 0, now: () => Date.now() + 10_000, dryRun: true });
  } finally {
    lock.release();
  }
  assert.equal(dry.dryRun, true);
  assert.deepEqual(
    { new: dry.new, changed: dry.changed, removed: dry.removed, unchanged: dry.unchanged, hashed: dry.bytesHashed },
    { new: 1, changed: 1, removed: 5, unchanged: 1, hashed: 0 },
  );
  assert.deepEqual({ files: dry.toHash, bytes: dry.bytesToHash }, { files: 2, bytes: 'changed content'.length + 4 });
  assert.deepEqual(env.rows(), before, 'the catalogue is as it was');
  // The real run then does what the dry run said.
  const real = await env.update();
  assert.deepEqual(
    { new: real.new, changed: real.changed, removed: real.removed, unchanged: real.unchanged },
    { new: 1, changed: 1, removed: 5, unchanged: 1 },
  );
  assert.equal(real.bytesHashed, dry.bytesToHash);
  assert.equal(real.dryRun, false);
});
