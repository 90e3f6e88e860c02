/**
 * A pool of real temp "disks" for recovery tests: a source tree with awkward content (modes,
 * mtimes, symlinks, non-UTF-8 names, empty folders and files), catalogued the way `update`
 * catalogues it, and disks registered with `disk add` whose objects are real files at
 * objectPath(root, hash), counted in `copies`, with the catalogue copy written on each disk.
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import Database from 'better-sqlite3';
import { addCopies } from '../../src/catalog/copies.js';
import { type Catalog, openCatalog } from '../../src/catalog/db.js';
import { getDiskByName } from '../../src/catalog/disks.js';
import { FileKind } from '../../src/catalog/schema.js';
import { getSource } from '../../src/catalog/sources.js';
import { vpathJoin, vpathParent } from '../../src/core/vpath.js';
import { type CompareOptions, compareTrees as compareTreesFull } from '../../src/demo/compare.js';
import { DISK_CATALOGUE, objectPath } from '../../src/disk/layout.js';
import { addDisk } from '../../src/disks/disks.js';
import { mapSource } from '../../src/sources/sources.js';

const B = (s: string): Buffer => Buffer.from(s, 'utf8');

/** Write a varied source tree under `root` (which must exist). Returns nothing; compare with compareTrees. */
export function makeSourceTree(root: string, opts: { files?: number; seed?: number } = {}): void {
  const n = opts.files ?? 12;
  const seed = opts.seed ?? 1;
  const r = Buffer.from(root);
  const mk = (rel: Buffer): Buffer => Buffer.concat([r, B('/'), rel]);
  fs.mkdirSync(mk(B('docs/deep/er')), { recursive: true });
  fs.mkdirSync(mk(B('empty-dir')), { recursive: true });
  fs.mkdirSync(mk(B('photos')), { recursive: true });
  for (let i = 0; i < n; i++) {
    const content = Buffer.alloc(1000 + ((i * 7919 + seed * 104729) % 70_000), `file ${i} seed ${seed} `);
    fs.writeFileSync(mk(B(`photos/img-${String(i).padStart(3, '0')}.jpg`)), content);
  }
  fs.writeFileSync(mk(B('docs/readme.txt')), 'hello\n');
  fs.writeFileSync(mk(B('docs/same-as-readme.txt')), 'hello\n'); // same object twice
  fs.writeFileSync(mk(B('docs/empty.txt')), '');
  fs.writeFileSync(mk(B('docs/deep/er/script.sh')), '#!/bin/sh\necho hi\n');
  fs.chmodSync(mk(B('docs/deep/er/script.sh')), 0o755);
  fs.writeFileSync(mk(B('docs/private.txt')), 'secret');
  fs.chmodSync(mk(B('docs/private.txt')), 0o600);
  fs.writeFileSync(mk(B('docs/readonly.txt')), 'frozen');
  fs.chmodSync(mk(B('docs/readonly.txt')), 0o444);
  // Names that are not UTF-8, and the one real U+FFFD they must never collapse into.
  fs.writeFileSync(mk(Buffer.concat([B('docs/bad-'), Buffer.from([0xff]), B('.txt')])), 'ff');
  fs.writeFileSync(mk(Buffer.concat([B('docs/bad-'), Buffer.from([0xfe]), B('.txt')])), 'fe');
  fs.writeFileSync(mk(B('docs/bad-\ufffd.txt')), 'fffd');
  fs.writeFileSync(mk(B('docs/tab\tand\nnewline %41.txt')), 'odd');
  fs.symlinkSync('readme.txt', mk(B('docs/link-to-readme')));
  fs.symlinkSync('../../etc/passwd', mk(B('docs/escaping-link')));
  fs.symlinkSync('/nonexistent/dangling', mk(B('docs/dangling')));
  // Distinct mtimes, set last (writing inside a folder changes its mtime).
  let t = 1_600_000_000;
  const walk = (dir: Buffer): void => {
    for (const e of fs.readdirSync(dir, { withFileTypes: true, encoding: 'buffer' })) {
      const p = Buffer.concat([dir, B('/'), e.name]);
      if (e.isDirectory()) walk(p);
      t += 3601;
      fs.lutimesSync(p, t + 0.123456, t + 0.123456);
    }
  };
  walk(r);
  fs.chmodSync(mk(B('docs/deep')), 0o750);
}

/** What cataloguing a source returns: where each object's bytes can be read. */
export interface Catalogued {
  sourceOf: Map<string, Buffer>;
}

/**
 * Map `realRoot` at `vpath` and catalogue every entry under it as `update` would (files with
 * hash, dirs, symlinks with verbatim targets).
 */
export function catalogueSource(cat: Catalog, vpath: string, realRoot: string): Catalogued {
  mapSource(cat, vpath, realRoot);
  const src = getSource(cat.db, vpath);
  if (src === undefined) throw new Error('source not mapped');
  const sourceOf = new Map<string, Buffer>();
  const insObj = cat.db.prepare('INSERT OR IGNORE INTO objects (hash, size) VALUES (?, ?)');
  const objId = cat.db.prepare('SELECT id FROM objects WHERE hash = ?').pluck();
  const insFile = cat.db.prepare(
    `INSERT INTO files (vpath, parent, source_id, kind, size, mtime_ns, ctime_ns, mode, uid, gid, dev, ino, link_target, object_id)
     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
  );
  const walk = (real: Buffer, v: Buffer): void => {
    for (const name of fs.readdirSync(real, { encoding: 'buffer' }).sort(Buffer.compare)) {
      const rp = Buffer.concat([real, B('/'), name]);
      const vp = vpathJoin(v, name);
      const st = fs.lstatSync(rp, { bigint: true });
      let kind: number = FileKind.file;
      let link: Buffer | null = null;
      let object: number | null = null;
      if (st.isDirectory()) kind = FileKind.dir;
      else if (st.isSymbolicLink()) {
        kind = FileKind.symlink;
        link = fs.readlinkSync(rp, { encoding: 'buffer' });
      } else if (st.isFile()) {
        const hash = createHash('sha256').update(fs.readFileSync(rp)).digest('hex');
        insObj.run(hash, Number(st.size));
        object = objId.get(hash) as number;
        if (!sourceOf.has(hash)) sourceOf.set(hash, rp);
      } else continue;
      insFile.run(
        vp,
        vpathParent(vp),
        src.id,
        kind,
        kind === FileKind.file ? Number(st.size) : 0,
        st.mtimeNs,
        st.ctimeNs,
        Number(st.mode & 0o7777n),
        Number(st.uid),
        Number(st.gid),
        st.dev,
        st.ino,
        link,
        object,
      );
      if (kind === FileKind.dir) walk(rp, vp);
    }
  };
  cat.db.transaction(() => walk(Buffer.from(realRoot), Buffer.from(vpath)))();
  return { sourceOf };
}

/** Register `root` as disk `name` (size 1 GB unless given). */
export function addPoolDisk(cat: Catalog, name: string, root: string, sizeBytes = 1e9): void {
  addDisk(cat, name, root, { sizeBytes });
}

/**
 * Put the objects chosen by `pick(hash, index)` on disk `name` (real files, durable enough for
 * tests), count them, and write the disk's catalogue copy. Returns the hashes written.
 */
export function putObjects(
  cat: Catalog,
  c: Catalogued,
  name: string,
  pick: (hash: string, index: number) => boolean = () => true,
): string[] {
  const d = getDiskByName(cat.db, name);
  if (d === undefined || d.mountPath === null) throw new Error(`no disk ${name}`);
  const root = d.mountPath;
  const rows = cat.db.prepare('SELECT id, hash FROM objects ORDER BY hash').all() as { id: number; hash: string }[];
  const ids: number[] = [];
  const written: string[] = [];
  rows.forEach((o, i) => {
    if (!pick(o.hash, i)) return;
    const srcFile = c.sourceOf.get(o.hash);
    if (srcFile === undefined) return;
    const p = objectPath(root, o.hash);
    fs.mkdirSync(path.dirname(p), { recursive: true });
    fs.copyFileSync(srcFile, p);
    fs.chmodSync(p, 0o444); // as sync leaves an object
    ids.push(o.id);
    written.push(o.hash);
  });
  addCopies(cat.db, d.id, ids, Date.now());
  cat.db.prepare('UPDATE disks SET last_sync_ms = ?, last_seen_ms = ? WHERE id = ?').run(Date.now(), Date.now(), d.id);
  return written;
}

/** `base/src` made and filled by makeSourceTree; returns its path. */
export function sourceTreeIn(base: string, files?: number): string {
  const src = path.join(base, 'src');
  fs.mkdirSync(src);
  makeSourceTree(src, files === undefined ? {} : { files });
  return src;
}

/**
 * `src` catalogued as `/data` in `cat`, and every object of it on the new disk `d1` at `disk`:
 * the one-disk pool most recovery tests start from. Returns the hashes written.
 */
export function onePoolDisk(cat: Catalog, src: string, disk: string): string[] {
  const c = catalogueSource(cat, '/data', src);
  addPoolDisk(cat, 'd1', disk);
  return putObjects(cat, c, 'd1');
}

/**
 * A home catalogue at `home` holding `src` at /data, with disk d1 at `disk` holding every object
 * and its catalogue copy; closed again, for tests that run the CLI on it. Returns the hashes.
 */
export function cliPool(home: string, src: string, disk: string): string[] {
  const cat = openCatalog(home);
  try {
    const c = catalogueSource(cat, '/data', src);
    addPoolDisk(cat, 'd1', disk);
    const hashes = putObjects(cat, c, 'd1');
    writeDiskCatalogues(cat);
    return hashes;
  } finally {
    cat.close();
  }
}

/** Write the catalogue copy on every registered disk (as sync does at its end). */
export function writeDiskCatalogues(cat: Catalog): void {
  for (const r of cat.db.prepare('SELECT mount_path FROM disks').pluck().all() as string[]) {
    const target = path.join(r, DISK_CATALOGUE);
    fs.rmSync(target, { force: true });
    cat.db.prepare('VACUUM INTO ?').run(target);
    const copy = new Database(target);
    copy.pragma('journal_mode = DELETE');
    copy.close();
  }
}

/**
 * Compare trees `a` and `b` (see src/demo/compare.ts): returns the differences (empty = equal).
 */
export function compareTrees(a: string, b: string, opts: CompareOptions = {}): string[] {
  return compareTreesFull(a, b, opts).diffs;
}

/**
 * Turn the closed catalogue `file` back into schema 3 (before verify_passes), as a catalogue left
 * by an older distbackup: the WAL is checkpointed into the file, so its bytes are all there is.
 */
export function downgradeToSchema3(file: string): void {
  const db = new Database(file);
  try {
    // What migrations 4 to 6 made, in reverse.
    db.exec(`ALTER TABLE copies DROP COLUMN written_ms;
             DROP TRIGGER files_sig_insert; DROP TRIGGER files_sig_update; DROP TRIGGER files_sig_delete;
             DROP TRIGGER sources_sig_delete; DROP TRIGGER sources_sig_insert; DROP TABLE dir_sigs; DROP TABLE verify_passes;`);
    db.pragma('user_version = 3');
    db.pragma('wal_checkpoint(TRUNCATE)');
  } finally {
    db.close();
  }
}
