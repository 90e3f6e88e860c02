/**
 * `update` end to end in process with the real worker pool, a real catalogue and a real tree of
 * hundreds of files with duplicates, names that are not UTF-8 or hold newlines, symlinks, empty
 * folders and a FIFO. The catalogue is checked against an independent walk of the tree.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { openCatalog } from '../../src/catalog/db.js';
import { mapSource } from '../../src/sources/sources.js';
import { runUpdate } from '../../src/update/update.js';
import { tempDir } from '../helpers/tmp.js';

const B = (s: string): Buffer => Buffer.from(s, 'utf8');
const join = (...parts: Buffer[]): Buffer => Buffer.concat(parts.flatMap((p, i) => (i === 0 ? [p] : [B('/'), p])));

/** Build the awkward tree; returns nothing (the expected state comes from `expected`). */
function buildTree(root: Buffer): void {
  const names = [B('plain'), Buffer.from([0x62, 0x61, 0x64, 0xff]), Buffer.from([0xfe, 0xfe]), B('new\nline'), B('ü')];
  for (let d = 0; d < 8; d++) {
    const dir = join(root, B(`dir${d}`), names[d % names.length] as Buffer);
    fs.mkdirSync(dir, { recursive: true });
    for (let i = 0; i < 50; i++) {
      // 20 distinct contents over 400 files: duplicates across folders; sizes from 0 up.
      const content = Buffer.alloc((i % 20) * 3001, `c${i % 20}`);
      fs.writeFileSync(join(dir, Buffer.concat([B(`f${i}-`), names[i % names.length] as Buffer])), content);
    }
  }
  fs.writeFileSync(join(root, B('big')), Buffer.alloc(3 * 1024 * 1024 + 5, 'big'));
  fs.mkdirSync(join(root, B('empty')));
  fs.mkdirSync(join(root, B('nested/empty/deeper')), { recursive: true });
  fs.symlinkSync('big', join(root, B('link-to-big')));
  fs.symlinkSync(Buffer.from([0x2f, 0x6e, 0x6f, 0xff]), join(root, B('dangling-bad-target')));
  execFileSync('mkfifo', [join(root, B('fifo')).toString()]);
}

/** vpath(latin1) → "kind size hash-or-target", from an independent walk. */
function expected(root: Buffer, vroot: string): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (real: Buffer, v: Buffer): void => {
    for (const name of fs.readdirSync(real, { encoding: 'buffer' })) {
      const rp = join(real, name);
      const vp = join(v, name);
      const st = fs.lstatSync(rp);
      if (st.isDirectory()) {
        out.set(vp.toString('latin1'), 'dir');
        walk(rp, vp);
      } else if (st.isSymbolicLink()) {
        out.set(vp.toString('latin1'), `link ${fs.readlinkSync(rp, { encoding: 'buffer' }).toString('hex')}`);
      } else if (st.isFile()) {
        const h = createHash('sha256').update(fs.readFileSync(rp)).digest('hex');
        out.set(vp.toString('latin1'), `file ${st.size} ${h}`);
      }
    }
  };
  walk(root, B(vroot));
  return out;
}

test('update catalogues an awkward tree exactly, with the real worker pool', async (t) => {
  const base = tempDir(t);
  const root = Buffer.from(path.join(base, 'src'));
  fs.mkdirSync(root);
  buildTree(root);
  const cat = openCatalog(path.join(base, 'data'));
  t.after(() => cat.close());
  mapSource(cat, '/v', root.toString());
  const notes: string[] = [];
  const progress = {
    update: () => {},
    setTotals: () => {},
    note: (line: string) => notes.push(line),
    stop: () => {},
  };
  const r = await runUpdate(cat, { jobs: 2, progress, now: () => Date.now() + 10_000 });

  const want = expected(root, '/v');
  const got = new Map<string, string>();
  const rows = cat.db
    .prepare(
      'SELECT f.vpath, f.kind, f.size, f.link_target, o.hash FROM files f LEFT JOIN objects o ON o.id = f.object_id',
    )
    .all() as { vpath: Buffer; kind: number; size: number; link_target: Buffer | null; hash: string | null }[];
  for (const row of rows) {
    const v = row.vpath.toString('latin1');
    got.set(
      v,
      row.kind === 1
        ? 'dir'
        : row.kind === 2
          ? `link ${row.link_target?.toString('hex')}`
          : `file ${row.size} ${row.hash}`,
    );
  }
  assert.deepEqual(got, want);
  assert.equal(r.scanned, want.size);
  assert.equal(r.new, want.size);
  assert.deepEqual(r.errors, []);
  assert.deepEqual(
    r.skipped.map((s) => s.error),
    ['a FIFO; not read'],
  );
  assert.ok(notes.some((n) => n.includes('fifo')));
  // 20 small contents (one of them empty) and the big file: duplicates stored once.
  assert.equal(cat.db.prepare('SELECT count(*) FROM objects').pluck().get(), 21);
  const parentsOk = cat.db
    .prepare(`SELECT count(*) FROM files WHERE parent != substr(vpath, 1, length(parent))`)
    .pluck()
    .get();
  assert.equal(parentsOk, 0);

  // Nothing changed: nothing read again, nothing written.
  const again = await runUpdate(cat, { jobs: 2, now: () => Date.now() + 10_000 });
  assert.deepEqual(
    { n: again.new, c: again.changed, r: again.removed, u: again.unchanged, b: again.bytesHashed },
    { n: 0, c: 0, r: 0, u: want.size, b: 0 },
  );
  assert.equal(cat.db.pragma('integrity_check', { simple: true }), 'ok');
});

test('--follow-symlinks: a followed folder whose target goes missing (unmounted) keeps what was catalogued below it', async (t) => {
  const base = tempDir(t);
  const tree = path.join(base, 'tree');
  const share = path.join(base, 'share');
  fs.mkdirSync(tree);
  fs.mkdirSync(share);
  fs.writeFileSync(path.join(share, 'a.jpg'), 'photo a');
  fs.writeFileSync(path.join(share, 'b.jpg'), 'photo b');
  fs.symlinkSync(share, path.join(tree, 'nas'));
  fs.symlinkSync(path.join(share, 'a.jpg'), path.join(tree, 'pic'));
  fs.symlinkSync(path.join(base, 'never-there'), path.join(tree, 'dangling'));
  const cat = openCatalog(path.join(base, 'home'));
  t.after(() => cat.close());
  mapSource(cat, '/s', tree, { followSymlinks: true });
  const under = (): string[] =>
    (cat.db.prepare('SELECT vpath FROM files ORDER BY vpath').pluck().all() as Buffer[])
      .map((v) => v.toString())
      .filter((v) => v.startsWith('/s/nas/'));
  const first = await runUpdate(cat, {});
  assert.deepEqual(first.errors, []);
  assert.deepEqual(under(), ['/s/nas/a.jpg', '/s/nas/b.jpg']);
  const dangling = cat.db.prepare("SELECT kind FROM files WHERE vpath = CAST('/s/dangling' AS BLOB)").pluck().get();
  assert.ok(dangling !== undefined, 'a link to nothing is recorded as the link it is');
  // The share is unmounted: its link now points at nothing.
  fs.renameSync(share, `${share}.away`);
  const gone = await runUpdate(cat, {});
  assert.equal(gone.removed, 0);
  assert.equal(gone.errors.length, 2, JSON.stringify(gone.errors));
  for (const e of gone.errors)
    assert.match(e.error, /target is missing \(unmounted\?\); what was catalogued there is kept/);
  assert.deepEqual(under(), ['/s/nas/a.jpg', '/s/nas/b.jpg']);
  const pic = cat.db.prepare("SELECT kind, object_id FROM files WHERE vpath = CAST('/s/pic' AS BLOB)").get() as
    | { kind: number; object_id: number | null }
    | undefined;
  assert.ok(pic?.object_id != null, 'the followed link to a file keeps its file row and object');
  // Back: nothing to do. The link removed: its folder's files go.
  fs.renameSync(`${share}.away`, share);
  const back = await runUpdate(cat, {});
  assert.deepEqual(back.errors, []);
  // (The folder itself may count as changed: moving it back changed its ctime.)
  assert.equal(back.removed + back.new, 0);
  assert.deepEqual(under(), ['/s/nas/a.jpg', '/s/nas/b.jpg']);
  fs.rmSync(path.join(tree, 'nas'));
  const removed = await runUpdate(cat, {});
  assert.equal(removed.removed, 3);
  assert.deepEqual(under(), []);
});
